"""stdio upstreams (`routes[].command`, MCP basic/transports stdio): real server processes behind the gateway, the
real SDK client in front; hostile servers from tests.support.bad_stdio_server (gateway.stdio)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.config import ConfigError, Settings
from gateway.config.stdio import StdioCommand
from gateway.stdio.servers import parameters
from tests.support.mcp_wire import modern_call, read_sse_event, tool_result_text
from tests.support.processes import REPO
from tests.support.tokens import issue

DEMO = [sys.executable, "-m", "gateway.demo_upstream", "--stdio"]
IDENTITY_META = "dev.mcp-auth-gateway/identity"


def bad(mode: str) -> list[str]:
    return [sys.executable, "-m", "tests.support.bad_stdio_server", mode]


def stdio_route(argv: list[str] = DEMO, name: str = "files", **command: Any) -> dict[str, Any]:
    """A command route; keys of `command` that are Route fields (policy, timeout, upstream_auth …) go to the route."""
    route_keys = {"policy", "timeout", "upstream_auth", "identity_headers"}
    extra = {k: command.pop(k) for k in list(command) if k in route_keys}
    return {
        "name": name,
        "path": f"/{name}/mcp",
        "scopes": [f"{name}:read"],
        "command": {"argv": argv, "cwd": str(REPO), **command},
        **extra,
    }


@asynccontextmanager
async def connected(server: TestServer, token: str, mode: str = "auto") -> AsyncIterator[Client]:
    """The SDK client on /files/mcp with a bearer (mode legacy = 2025-11-25, auto = 2026-07-28)."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with (
        http,
        Client(streamable_http_client(str(server.make_url("/files/mcp")), http_client=http), mode=mode) as c,
    ):
        yield c


async def whoami(client: Client) -> dict[str, Any]:
    return json.loads((await client.call_tool("whoami", {})).content[0].text)


async def call(
    client: TestClient, token: str, tool: str, arguments: dict[str, Any] | None = None, request_id: int = 1
) -> ClientResponse:
    """A raw 2026-07-28 tools/call on /files/mcp."""
    headers, body = modern_call(request_id, tool, arguments or {})
    return await client.post("/files/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})


async def pid_of(client: TestClient, token: str) -> int:
    response = await call(client, token, "pid")
    assert response.status == 200, await response.text()
    return int(await tool_result_text(response))


async def gone(pid: int) -> None:
    """Until the process `pid` has ended (bounded)."""
    async with asyncio.timeout(5):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.05)


# -- both revisions, identity, credentials ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_both_revisions_list_and_call_tools_of_a_stdio_server(start_gateway, store, mode):
    """initialize (2025-11-25) or server/discover (2026-07-28) answered by the gateway, the rest by the process;
    progress notifications arrive before the result."""
    server = await start_gateway([stdio_route(env={"DEMO_FLAG": "1"})])
    token = await issue(store, server, "files")
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with connected(server, token, mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} >= {"echo_headers", "slow_progress", "add", "whoami"}
        assert (await client.call_tool("add", {"a": 40, "b": 2})).content[0].text == "42"
        result = await client.call_tool("slow_progress", {"steps": 3, "delay": 0.05}, progress_callback=on_progress)
        progress.append("result")
        env = (await whoami(client))["env"]
    assert result.content[0].text == "done"
    assert progress == ["step 1", "step 2", "step 3", "result"]
    assert env == {"DEMO_FLAG": "1"}  # shared: no identity variables; nothing of the gateway's environment


async def test_a_shared_process_serves_every_user_with_their_own_identity_in_meta(start_gateway, store):
    server = await start_gateway([stdio_route()])
    alice = await issue(store, server, "files", user="alice")
    bob = await issue(store, server, "files", user="bob", groups=("sre",))
    async with connected(server, alice) as a, connected(server, bob, "legacy") as b:
        seen_a, seen_b = await whoami(a), await whoami(b)
    assert seen_a["pid"] == seen_b["pid"]
    assert seen_a["meta"][IDENTITY_META] == {
        "user": "local:alice",
        "email": "alice@example.com",
        "groups": ["eng", "ops"],
    }
    assert seen_b["meta"][IDENTITY_META] == {"user": "local:bob", "email": "bob@example.com", "groups": ["sre"]}


async def test_a_client_supplied_identity_in_meta_is_replaced(start_gateway, store, aiohttp_client):
    """The gateway's identity replaces a client's copy; the 2026-07-28 envelope does not reach the process."""
    server = await start_gateway([stdio_route()])
    client = await aiohttp_client(server)
    token = await issue(store, server, "files", user="alice")
    headers, body = modern_call(4, "whoami", {})
    body["params"]["_meta"][IDENTITY_META] = {"user": "local:root", "email": "root@example.com", "groups": ["admin"]}
    response = await client.post("/files/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 200
    meta = json.loads(await tool_result_text(response))["meta"]
    assert meta[IDENTITY_META]["user"] == "local:alice" and meta[IDENTITY_META]["groups"] == ["eng", "ops"]
    assert not any(key.startswith("io.modelcontextprotocol/") for key in meta), meta


async def test_per_user_isolation_gives_each_user_a_process_and_their_own_environment(start_gateway, store):
    server = await start_gateway([stdio_route(isolation="per_user", env={"DEMO_FLAG": "1"})])
    alice = await issue(store, server, "files", user="alice")
    bob = await issue(store, server, "files", user="bob", groups=("sre",))
    async with connected(server, alice) as a, connected(server, bob) as b:
        seen_a, seen_b, again_a = await whoami(a), await whoami(b), await whoami(a)
    assert seen_a["pid"] != seen_b["pid"] and again_a["pid"] == seen_a["pid"]
    assert seen_a["env"] == {
        "DEMO_FLAG": "1",
        "MCP_GATEWAY_USER": "local:alice",
        "MCP_GATEWAY_EMAIL": "alice@example.com",
        "MCP_GATEWAY_GROUPS": "eng,ops",
    }
    assert seen_b["env"]["MCP_GATEWAY_USER"] == "local:bob" and seen_b["env"]["MCP_GATEWAY_GROUPS"] == "sre"


async def test_a_static_upstream_credential_reaches_the_process_environment(start_gateway, store):
    """credential_env receives upstream_auth's value; a static value has no header format, so it is given whole."""
    secret = "Bearer stdio-key-0123456789"
    route = stdio_route(credential_env="DEMO_TOKEN", upstream_auth={"type": "static", "value": secret})
    server = await start_gateway([route])
    token = await issue(store, server, "files")
    async with connected(server, token) as client:
        seen = await whoami(client)
    assert seen["env"] == {"DEMO_TOKEN": secret}
    assert token not in json.dumps(seen)


async def test_a_command_with_a_user_runs_as_that_system_user_in_its_directory(start_gateway, store, caplog):
    """`command.user` (root only, via setpriv): the process has nobody's uid, gid, HOME and USER and the `cwd` given.
    A gateway not running as root cannot switch users: its start fails with a log line saying why, and the call is a
    502 JSON-RPC error. The server is the standard-library one: nobody cannot read the test venv."""
    nobody = pwd.getpwnam("nobody")
    argv = ["/usr/bin/python3", str(REPO / "tests" / "support" / "plain_stdio_server.py")]
    route = stdio_route(argv, user="nobody", cwd="/")
    server = await start_gateway([route])
    token = await issue(store, server, "files")
    if os.geteuid() != 0:
        async with TestClient(server) as client:
            refused = await call(client, token, "whoami")
        assert refused.status == 502 and "error" in await refused.json()
        assert any("needs the gateway to run as root" in r.getMessage() for r in caplog.records)
        return
    async with connected(server, token) as client:
        seen = json.loads((await client.call_tool("whoami", {})).content[0].text)
    assert seen == {"uid": nobody.pw_uid, "gid": nobody.pw_gid, "home": nobody.pw_dir, "user": "nobody", "cwd": "/"}


def test_running_as_a_user_goes_through_setpriv_with_that_users_ids_and_groups():
    """The spawn parameters: setpriv with the user's uid, gid and supplementary groups, then the argv unchanged."""
    command = StdioCommand(argv=["/usr/bin/env", "true"], user="nobody", cwd="/srv", env={"A": "1"})
    nobody = pwd.getpwnam("nobody")
    if os.geteuid() != 0:
        with pytest.raises(PermissionError, match="needs the gateway to run as root"):
            parameters(command, {})
        return
    spawned = parameters(command, {"MCP_GATEWAY_USER": "local:alice"})
    assert [spawned.command, *spawned.args] == [
        "setpriv",
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--init-groups",
        "--",
        "/usr/bin/env",
        "true",
    ]
    assert spawned.env == {
        "HOME": nobody.pw_dir,
        "USER": "nobody",
        "LOGNAME": "nobody",
        "A": "1",
        "MCP_GATEWAY_USER": "local:alice",
    }
    assert spawned.cwd == "/srv"


# -- the gateway's request path: policy, audit -------------------------------------------------------------------


async def test_policy_filters_the_list_and_refuses_a_denied_call_without_asking_the_process(
    start_gateway, store, aiohttp_client
):
    """A denied `die` is hidden and refused (403, the id echoed); the process never ran it (same pid after)."""
    route = stdio_route(bad("die"), policy={"tools": [{"match": "die", "deny": True}]})
    server = await start_gateway([route])
    client = await aiohttp_client(server)
    token = await issue(store, server, "files")
    async with connected(server, token) as sdk:
        assert sorted(t.name for t in (await sdk.list_tools()).tools) == ["add", "pid"]
    before = await pid_of(client, token)
    refused = await call(client, token, "die", request_id=9)
    assert refused.status == 403
    assert (await refused.json())["id"] == 9 and "die" in (await refused.json())["error"]["message"]
    assert await pid_of(client, token) == before


async def test_a_stdio_request_leaves_an_audit_line(start_gateway, store, aiohttp_client, tmp_path):
    log = tmp_path / "audit.jsonl"
    server = await start_gateway([stdio_route()], audit={"path": str(log)})
    client = await aiohttp_client(server)
    token = await issue(store, server, "files")
    response = await call(client, token, "add", {"a": 2, "b": 3}, request_id=7)
    assert response.status == 200 and await tool_result_text(response) == "5"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    records = [r for r in records if r["event"] == "mcp.request"]
    assert len(records) == 1
    line = records[0]
    assert line["route"] == "files" and line["user"] == "local:alice" and line["status"] == 200
    assert line["methods"] == ["tools/call"] and line["tools"] == ["add"]
    assert line["upstream_ms"] >= 0 and line["bytes"] > 0
    assert token not in log.read_text()


# -- the process pool: max_processes, idle shutdown, restarts ------------------------------------------------------


async def test_max_processes_refuses_a_new_user_while_busy_and_evicts_an_idle_one(start_gateway, store, aiohttp_client):
    """per_user, max_processes 1: Bob gets 503 + Retry-After while Alice's call runs; once she is idle, Bob's
    request stops her process for his."""
    server = await start_gateway([stdio_route(isolation="per_user", max_processes=1)])
    client = await aiohttp_client(server)
    alice = await issue(store, server, "files", user="alice")
    bob = await issue(store, server, "files", user="bob")
    async with connected(server, alice) as a:
        first = (await whoami(a))["pid"]
    headers, body = modern_call(1, "slow_progress", {"steps": 1, "delay": 0.8}, progress_token="p")
    busy = await client.post("/files/mcp", json=body, headers={**headers, "Authorization": f"Bearer {alice}"})
    assert busy.status == 200
    async with asyncio.timeout(5):
        assert (await read_sse_event(busy))["method"] == "notifications/progress"  # her call is in flight
        refused = await call(client, bob, "whoami", request_id=2)
        assert refused.status == 503 and int(refused.headers["Retry-After"]) >= 1
        assert (await refused.json())["id"] == 2 and "error" in await refused.json()
        assert (await read_sse_event(busy))["result"]["content"][0]["text"] == "done"
    async with connected(server, bob) as b:
        seen_b = await whoami(b)  # Alice idle: her process makes room
    assert seen_b["env"]["MCP_GATEWAY_USER"] == "local:bob" and seen_b["pid"] != first
    await gone(first)


async def test_an_idle_process_is_stopped_and_the_next_request_starts_another(start_gateway, store):
    server = await start_gateway([stdio_route(idle_timeout=0.5)])
    token = await issue(store, server, "files")
    async with connected(server, token) as client:
        first = (await whoami(client))["pid"]
        await gone(first)
        assert (await whoami(client))["pid"] != first


async def test_a_process_dying_mid_request_is_a_502_and_a_new_one_starts_after_backoff(
    start_gateway, store, aiohttp_client
):
    """Pending requests get a JSON-RPC error (502); a death within 10 s of the start means 1 s of backoff (503 with
    Retry-After), then a new process."""
    server = await start_gateway([stdio_route(bad("die"))])
    client = await aiohttp_client(server)
    token = await issue(store, server, "files")
    first = await pid_of(client, token)
    async with asyncio.timeout(5):
        died = await call(client, token, "die", request_id=3)
    assert died.status == 502
    answer = await died.json()
    assert answer["id"] == 3 and answer["jsonrpc"] == "2.0" and isinstance(answer["error"]["code"], int)
    waiting = await call(client, token, "pid")
    assert waiting.status == 503 and waiting.headers["Retry-After"] == "1"
    async with asyncio.timeout(8):
        while (retried := await call(client, token, "pid")).status == 503:
            await asyncio.sleep(float(retried.headers["Retry-After"]) / 4)
    assert retried.status == 200 and int(await tool_result_text(retried)) != first


async def test_a_server_that_exits_at_once_is_a_502_then_503_while_backing_off(start_gateway, store, aiohttp_client):
    """1 s after the first failed start, then 2 s (doubling)."""
    server = await start_gateway([stdio_route(bad("exit"), timeout=3.0)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "files")
    async with asyncio.timeout(5):
        failed = await call(client, token, "pid", request_id=1)
    assert failed.status == 502 and (await failed.json())["id"] == 1
    backing_off = await call(client, token, "pid", request_id=2)
    assert backing_off.status == 503 and backing_off.headers["Retry-After"] == "1"
    assert (await backing_off.json())["id"] == 2
    await asyncio.sleep(1.1)  # (the backoff itself is what is tested)
    async with asyncio.timeout(5):
        assert (await call(client, token, "pid")).status == 502
    longer = await call(client, token, "pid")
    assert longer.status == 503 and longer.headers["Retry-After"] == "2"


# -- hostile servers ----------------------------------------------------------------------------------------------


async def test_lines_that_are_not_json_rpc_are_skipped(start_gateway, store):
    server = await start_gateway([stdio_route(bad("garbage"))])
    token = await issue(store, server, "files")
    for mode in ("legacy", "auto"):
        async with connected(server, token, mode) as client:
            assert sorted(t.name for t in (await client.list_tools()).tools) == ["add", "pid"]
            assert (await client.call_tool("add", {"a": 40, "b": 2})).content[0].text == "42"


async def test_a_stderr_flood_is_rate_limited_and_the_gateway_stays_responsive(
    start_gateway, store, aiohttp_client, caplog
):
    caplog.set_level(logging.INFO, logger="gateway.stdio.stderr")
    server = await start_gateway([stdio_route(bad("flood"), idle_timeout=1.0)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "files")
    pid = await pid_of(client, token)
    for n in range(10):
        started = time.monotonic()
        response = await call(client, token, "add", {"a": n, "b": 1})
        assert response.status == 200 and await tool_result_text(response) == str(n + 1)
        assert time.monotonic() - started < 1.0
        assert (await client.get("/healthz")).status == 200  # (and answers other requests meanwhile)
    await gone(pid)  # idle: stopped; its last window's count is logged
    async with asyncio.timeout(5):
        while not any("dropped" in r.getMessage() for r in caplog.records if r.name == "gateway.stdio.stderr"):
            await asyncio.sleep(0.05)
    lines = [r for r in caplog.records if r.name == "gateway.stdio.stderr"]
    assert any(r.levelno == logging.WARNING and "stderr lines dropped" in r.getMessage() for r in lines)
    assert sum(1 for r in lines if "flood line" in r.getMessage()) <= 100 * 2  # at most MAX_LINES per window


async def test_a_server_that_never_answers_initialize_is_a_502_after_start_timeout(
    start_gateway, store, aiohttp_client
):
    server = await start_gateway([stdio_route(bad("silent"), start_timeout=0.5, timeout=3.0)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "files")
    started = time.monotonic()
    async with asyncio.timeout(5):
        response = await call(client, token, "pid", request_id=6)
    assert response.status == 502 and (await response.json())["id"] == 6
    assert time.monotonic() - started < 3


async def test_a_call_that_never_returns_is_a_504_and_the_process_serves_other_calls(
    start_gateway, store, aiohttp_client
):
    """The route timeout bounds one call; the process (same pid) still answers the next ones."""
    server = await start_gateway([stdio_route(bad("hang"), timeout=2.5)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "files")
    before = await pid_of(client, token)
    async with asyncio.timeout(5):
        hung = await call(client, token, "wait", request_id=8)
    assert hung.status == 504 and (await hung.json())["id"] == 8
    assert await pid_of(client, token) == before
    response = await call(client, token, "add", {"a": 1, "b": 2})
    assert response.status == 200 and await tool_result_text(response) == "3"


# -- configuration ------------------------------------------------------------------------------------------------


def settings(route: dict[str, Any]) -> Settings:
    return Settings(public_url="http://127.0.0.1:8080", routes=[route])


def problems(route: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings(route)
    return caught.value.problems


def test_a_command_route_is_served_by_its_process_host():
    route = settings(stdio_route(credential_env="DEMO_TOKEN", upstream_auth={"type": "static", "value": "k"})).routes[0]
    assert route.upstream == "stdio://files/mcp" and route.command is not None
    assert route.command.isolation == "shared" and route.command.max_processes == 32


COMMAND = {"argv": ["server"]}


@pytest.mark.parametrize(
    ("route", "where", "says"),
    [
        (
            {"name": "files", "upstream": "http://127.0.0.1:9/mcp", "command": COMMAND},
            "routes[0]",
            "`upstream` and `command` exclude each other",
        ),
        ({"name": "files"}, "routes[0]", "needs `upstream` (a URL) or `command` (a stdio server)"),
        (
            {"name": "files", "command": {**COMMAND, "env": {"MCP_GATEWAY_USER": "root"}}},
            "routes[0].command.env",
            "MCP_GATEWAY_USER is set by the gateway",
        ),
        (
            {"name": "files", "command": {**COMMAND, "env": {"MCP_GATEWAY_GROUPS": "admin"}}},
            "routes[0].command.env",
            "MCP_GATEWAY_GROUPS is set by the gateway",
        ),
        (
            {
                "name": "files",
                "command": {**COMMAND, "env": {"DEMO_TOKEN": "x"}, "credential_env": "DEMO_TOKEN"},
                "upstream_auth": {"type": "static", "value": "k"},
            },
            "routes[0].command.env",
            "DEMO_TOKEN is set by the gateway",
        ),
        (
            {"name": "files", "command": {**COMMAND, "env": {"1ST": "x"}}},
            "routes[0].command.env",
            "'1ST' is not an environment variable name",
        ),
        (
            {"name": "files", "command": {**COMMAND, "env": {"A-B": "x"}}},
            "routes[0].command.env",
            "'A-B' is not an environment variable name",
        ),
        (
            {"name": "files", "command": {**COMMAND, "env": {"A=B": "x"}}},
            "routes[0].command.env",
            "'A=B' is not an environment variable name",
        ),
        (
            {
                "name": "files",
                "command": {**COMMAND, "credential_env": "NOT-A-NAME"},
                "upstream_auth": {"type": "static", "value": "k"},
            },
            "routes[0].command.credential_env",
            "'NOT-A-NAME' is not an environment variable name",
        ),
        (
            {"name": "files", "command": {**COMMAND, "credential_env": "TOKEN"}, "upstream_auth": {"type": "oauth"}},
            "routes[0].command.isolation",
            "per-user credentials (oauth) need isolation: per_user",
        ),
        (
            {
                "name": "files",
                "command": {**COMMAND, "credential_env": "TOKEN"},
                "upstream_auth": {"type": "provider_token", "provider": "corp"},
            },
            "routes[0].command.isolation",
            "per-user credentials (provider_token) need isolation: per_user",
        ),
        (
            {"name": "files", "command": COMMAND, "upstream_auth": {"type": "static", "value": "k"}},
            "routes[0].command.credential_env",
            "names the variable that carries upstream_auth's credential",
        ),
        (
            {
                "name": "files",
                "command": {**COMMAND, "isolation": "per_user"},
                "identity_headers": {"X-Forwarded-Email": "email"},
            },
            "routes[0].identity_headers",
            "per_user isolation needs a header for the `user` claim",
        ),
    ],
)
def test_command_routes_that_cannot_work_are_refused(route, where, says):
    found = problems(route)
    assert any(p.startswith(where + ": ") and says in p for p in found), found


def test_per_user_credentials_are_accepted_with_per_user_isolation():
    route = {
        "name": "files",
        "command": {**COMMAND, "isolation": "per_user", "credential_env": "TOKEN"},
        "upstream_auth": {"type": "oauth"},
    }
    try:
        settings(route)
    except ConfigError as refused:
        assert not [p for p in refused.problems if p.startswith("routes[0].command")], refused.problems
