"""Subprocess helpers: the upstream MCP server, free ports, readiness polling with a deadline."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.ports import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
__all__ = ["UpstreamProcess", "free_port", "start_upstream", "wait_for_port"]


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
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process)
    except Exception:
        process.kill()
        raise RuntimeError(f"upstream MCP server did not start; log:\n{log.read_text()}") from None
    return UpstreamProcess(process, port, log)
