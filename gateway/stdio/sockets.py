"""Where each command route's process host listens: a Unix socket in a directory only the gateway's user may
enter (0700), made once per gateway process."""

from __future__ import annotations

import atexit
import hashlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

BRIDGE_HEADER = "X-Mcpgw-Bridge"  # the gateway's secret on every request to a host (a local process has none)
BRIDGE_SECRET = secrets.token_urlsafe(32)  # this process's; never written anywhere
_runtime: Path | None = None


def runtime_dir() -> Path:
    """This process's private directory for the hosts' sockets (removed with the process's temporary files)."""
    global _runtime  # noqa: PLW0603 (one directory per process, made on first use)
    if _runtime is None:
        _runtime = Path(tempfile.mkdtemp(prefix="mcpgw-stdio-"))  # (mkdtemp: mode 0700)
        os.chmod(_runtime, 0o700)
        atexit.register(shutil.rmtree, _runtime, True)
    return _runtime


def socket_path(route: str) -> str:
    """The socket of `route`'s host; named by digest (a socket path is at most 107 bytes, a route name is not)."""
    return str(runtime_dir() / (hashlib.sha256(route.encode()).hexdigest()[:24] + ".sock"))
