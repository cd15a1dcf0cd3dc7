"""The command line as a new user meets it (issue 15, deliverable 6): helpers shared by these tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import REPO

PUBLIC_URL = "https://gw.example.com"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mcp-auth-gateway ARGS` as users run it: a subprocess, none of the test run's MCP_GATEWAY_ variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MCP_GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=REPO,
        env=clean | (env or {}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def run_async(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`run` off the event loop, so servers the test runs on that loop answer meanwhile."""
    return await asyncio.to_thread(run, *args, env=env)


def write(path: Path, data: dict[str, Any] | str) -> str:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


def http_route(name: str, upstream: str = "http://127.0.0.1:9001/mcp", **extra: Any) -> dict[str, Any]:
    return {"name": name, "path": f"/{name}/mcp", "upstream": upstream, "scopes": [f"{name}:read"], **extra}
