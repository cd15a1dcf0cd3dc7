"""The real `mcp` SDK client through the gateway with a token from `mcp-auth-gateway tokens issue`."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.app_state import SETTINGS_KEY
from tests.conftest import write_config


def cli(config, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args, "-c", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_lists_and_calls_tools_with_a_cli_issued_token(gateway, tmp_path, mode):
    """Issue #2 end to end, both protocol generations: legacy = initialize + session id + GET stream + DELETE
    (2025-06-18/2025-11-25 clients); auto = server/discover + stateless requests (2026-07-28, SDK 2.x default)."""
    config = write_config(tmp_path / "gateway.yaml", gateway.app[SETTINGS_KEY])
    cli(
        config,
        "users",
        "add",
        "carol",
        "--email",
        "carol@example.com",
        "--groups",
        "sre",
        "--password-stdin",
        stdin="correct-horse-battery\n",
    )
    token = cli(config, "tokens", "issue", "--user", "carol", "--route", "alpha", "--ttl", "10m")
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with (
        http,
        Client(streamable_http_client(str(gateway.make_url("/alpha/mcp")), http_client=http), mode=mode) as client,
    ):
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} >= {"echo_headers", "slow_progress", "add"}
        assert (await client.call_tool("add", {"a": 40, "b": 2})).content[0].text == "42"
        seen = json.loads((await client.call_tool("echo_headers", {})).content[0].text)
        result = await client.call_tool("slow_progress", {"steps": 3, "delay": 0.05}, progress_callback=on_progress)
        progress.append("result")
    assert result.content[0].text == "done"
    assert progress == ["step 1", "step 2", "step 3", "result"]  # notifications before the final result
    assert seen["x-forwarded-user"] == "local:carol"
    assert seen["x-forwarded-groups"] == "sre"
    assert "authorization" not in seen


async def test_sdk_client_with_token_for_another_route_is_refused(gateway, tmp_path):
    """MCP RS-8: the SDK client cannot use alpha's token on beta; the gateway answers 401 before any upstream call."""
    config = write_config(tmp_path / "gateway.yaml", gateway.app[SETTINGS_KEY])
    cli(config, "users", "add", "dave", "--password-stdin", stdin="correct-horse-battery\n")
    token = cli(config, "tokens", "issue", "--user", "dave", "--route", "alpha")
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.post(
            str(gateway.make_url("/beta/mcp")),
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
