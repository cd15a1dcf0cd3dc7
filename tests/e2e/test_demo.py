"""`mcp-auth-gateway demo` as a new user runs it: the SDK client logs in at the URL it prints (issue #3 item 7)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

from tests.e2e.test_oauth_flow import call_echo
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider
from tests.support.processes import free_port, wait_for_port


async def test_demo_prints_a_url_and_login_that_the_sdk_client_can_use(tmp_path):
    port, upstream_port = free_port(), free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "demo",
            "--port",
            str(port),
            "--upstream-port",
            str(upstream_port),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not any("[4/4]" in line for line in lines):
                line = await asyncio.to_thread(demo.stdout.readline)  # type: ignore[union-attr]
                assert line, "demo exited early:\n" + "".join(lines)
                lines.append(line)
        output = "".join(lines)
        url = re.search(r"MCP URL:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
        user, password = re.search(r"login:\s+(\S+) / (\S+)", output).groups()  # type: ignore[union-attr]
        assert url == f"http://127.0.0.1:{port}/demo/mcp"
        await asyncio.to_thread(wait_for_port, port, demo)  # the socket opens just after the banner
        seen = await call_echo(url, oauth_provider(url, Browser(user, password), MemoryStorage()))
        assert seen["x-forwarded-user"] == "local:demo"
    finally:
        demo.terminate()
        demo.wait(timeout=30)
        demo.stdout.close()  # type: ignore[union-attr]
