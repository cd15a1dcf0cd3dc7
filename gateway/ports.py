"""Local ports: find a free one, wait for a child process to listen (used by the demo, tests and benchmarks)."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | subprocess.Popen[str] | None = None,
                  deadline: float = 15.0) -> None:
    """Poll until something accepts on 127.0.0.1:port.

    Raises:
        RuntimeError: the process exited first.
        TimeoutError: nothing listened before the deadline.
    """
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {deadline}s")
