"""Subprocess helpers: the upstream MCP server, free ports, readiness polling with a deadline."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, deadline: float = 15.0) -> None:
    """Poll until something accepts on 127.0.0.1:port; fail (never skip) when the deadline passes."""
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


@dataclass
class UpstreamProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_upstream(workdir: Path, *extra_args: str) -> UpstreamProcess:
    port = free_port()
    log = workdir / f"upstream-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.demo_upstream", "--port", str(port), *extra_args],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process)
    except Exception:
        process.kill()
        raise RuntimeError(f"upstream MCP server did not start; log:\n{log.read_text()}") from None
    return UpstreamProcess(process, port, log)
