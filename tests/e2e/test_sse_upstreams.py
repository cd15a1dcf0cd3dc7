"""HTTP+SSE upstreams (`upstream_transport: sse`, MCP 2024-11-05 transport): the real demo server speaking the legacy
transport as a subprocess, served through the bridged-server host (gateway.stdio.host) to the real SDK client of
both revisions; shared and per-user connections (route.bridge)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import route
from tests.support.mcp_wire import modern_call
from tests.support.processes import UpstreamProcess, free_port, start_upstream
from tests.support.tokens import issue

IDENTITY_META = "dev.mcp-auth-gateway/identity"


@pytest.fixture(scope="module")
def sse_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamProcess]:
    """The demo server speaking HTTP+SSE (GET /sse, POST /messages/?session_id=)."""
    process = start_upstream(tmp_path_factory.mktemp("sse-upstream"), "--sse")
    yield process
    process.stop()


def sse_route(upstream_port: int, name: str = "old", **extra: Any) -> dict[str, Any]:
    return route(name, f"http://127.0.0.1:{upstream_port}/sse", upstream_transport="sse", **extra)


@asynccontextmanager
async def connected(server, token: str, mode: str, path: str = "/old/mcp") -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(str(server.make_url(path)), http_client=http), mode=mode) as c:
        yield c


async def whoami(client: Client) -> dict[str, Any]:
    return json.loads((await client.call_tool("whoami", {})).content[0].text)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_both_client_revisions_list_and_call_tools_of_an_sse_server(start_gateway, sse_upstream, store, mode):
    """2025-11-25 (initialize) and 2026-07-28 (server/discover) clients; progress notifications before the result."""
    server = await start_gateway([sse_route(sse_upstream.port)])
    token = await issue(store, server, "old")
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with connected(server, token, mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        names = {t.name for t in (await client.list_tools()).tools}
        assert names >= {"echo_headers", "slow_progress", "add", "whoami"}
        assert (await client.call_tool("add", {"a": 40, "b": 2})).content[0].text == "42"
        result = await client.call_tool("slow_progress", {"steps": 3, "delay": 0.05}, progress_callback=on_progress)
        progress.append("result")
    assert result.content[0].text == "done"
    assert progress == ["step 1", "step 2", "step 3", "result"]


async def test_a_shared_connection_names_each_caller_in_meta_and_sends_no_identity_headers(
    start_gateway, sse_upstream, store
):
    """shared (the default): one connection for everyone, so its HTTP requests carry nobody's identity; each
    request's _meta says who asks."""
    server = await start_gateway([sse_route(sse_upstream.port)])
    alice = await issue(store, server, "old", user="alice")
    bob = await issue(store, server, "old", user="bob", groups=("sre",))
    async with connected(server, alice, "auto") as a, connected(server, bob, "legacy") as b:
        seen_a, seen_b = await whoami(a), await whoami(b)
    assert seen_a["meta"][IDENTITY_META] == {
        "user": "local:alice",
        "email": "alice@example.com",
        "groups": ["eng", "ops"],
    }
    assert seen_b["meta"][IDENTITY_META] == {"user": "local:bob", "email": "bob@example.com", "groups": ["sre"]}
    for seen in (seen_a, seen_b):
        assert not any(h.startswith("x-forwarded-") or h.startswith("x-mcp-") for h in seen["headers"]), seen
        assert "authorization" not in seen["headers"]


async def test_per_user_connections_carry_the_users_identity_headers(start_gateway, sse_upstream, store):
    """per_user: a connection per user, its HTTP requests with the gateway's identity headers; _meta names the
    caller too."""
    server = await start_gateway([sse_route(sse_upstream.port, bridge={"isolation": "per_user"})])
    alice = await issue(store, server, "old", user="alice")
    bob = await issue(store, server, "old", user="bob", groups=("sre",))
    async with connected(server, alice, "auto") as a, connected(server, bob, "legacy") as b:
        seen_a, seen_b = await whoami(a), await whoami(b)
    assert seen_a["headers"]["x-forwarded-user"] == "local:alice"
    assert seen_a["headers"]["x-forwarded-email"] == "alice@example.com"
    assert seen_a["headers"]["x-forwarded-groups"] == "eng,ops"
    assert seen_b["headers"]["x-forwarded-user"] == "local:bob" and seen_b["headers"]["x-forwarded-groups"] == "sre"
    assert seen_a["meta"][IDENTITY_META]["user"] == "local:alice"
    assert seen_b["meta"][IDENTITY_META]["user"] == "local:bob"
    for seen in (seen_a, seen_b):
        assert "authorization" not in seen["headers"]
    assert alice not in json.dumps(seen_a) and bob not in json.dumps(seen_b)


async def test_a_static_credential_reaches_the_sse_server_as_its_header(start_gateway, sse_upstream, store):
    """upstream_auth on an HTTP+SSE route: the gateway's credential (never the client's token) on the connection."""
    secret = "sse-upstream-key-0123456789"
    auth = {"type": "static", "value": secret, "header": "X-Api-Key"}
    server = await start_gateway([sse_route(sse_upstream.port, upstream_auth=auth)])
    token = await issue(store, server, "old")
    async with connected(server, token, "auto") as client:
        seen = await whoami(client)
    assert seen["headers"]["x-api-key"] == secret
    assert token not in json.dumps(seen)


async def test_policy_hides_and_refuses_a_tool_of_an_sse_server(start_gateway, sse_upstream, store, aiohttp_client):
    server = await start_gateway([sse_route(sse_upstream.port, policy={"tools": [{"match": "add", "deny": True}]})])
    token = await issue(store, server, "old")
    async with connected(server, token, "auto") as sdk:
        assert "add" not in {t.name for t in (await sdk.list_tools()).tools}
    client = await aiohttp_client(server)
    headers, body = modern_call(4, "add", {"a": 1, "b": 2})
    refused = await client.post("/old/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert refused.status == 403 and (await refused.json())["id"] == 4


async def test_an_sse_server_that_is_down_is_a_502_json_rpc_error(start_gateway, store, aiohttp_client):
    server = await start_gateway([sse_route(free_port(), bridge={"start_timeout": 2.0})])
    client = await aiohttp_client(server)
    token = await issue(store, server, "old")
    headers, body = modern_call(6, "add", {"a": 1, "b": 2})
    response = await client.post("/old/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 502
    answer = await response.json()
    assert answer["jsonrpc"] == "2.0" and answer["id"] == 6 and isinstance(answer["error"]["code"], int)
    again = await client.post("/old/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert again.status == 503 and int(again.headers["Retry-After"]) >= 1  # (backing off before the next try)
    assert (await again.json())["id"] == 6


async def test_identity_headers_a_client_sends_never_reach_a_per_user_connection(start_gateway, sse_upstream, store):
    """The gateway's identity headers choose the connection: a client's own X-Forwarded-User is dropped first."""
    server = await start_gateway([sse_route(sse_upstream.port, bridge={"isolation": "per_user"})])
    token = await issue(store, server, "old", user="alice")
    forged = {"Authorization": f"Bearer {token}", "X-Forwarded-User": "local:root", "X-Forwarded-Groups": "admin"}
    http = httpx2.AsyncClient(headers=forged, timeout=30)
    url = str(server.make_url("/old/mcp"))
    async with http, Client(streamable_http_client(url, http_client=http), mode="auto") as client:
        seen = await whoami(client)
    assert seen["headers"]["x-forwarded-user"] == "local:alice"
    assert seen["headers"]["x-forwarded-groups"] == "eng,ops"
    assert seen["meta"][IDENTITY_META]["user"] == "local:alice"


async def test_an_http_sse_client_reaches_an_http_sse_server_through_the_gateway(start_gateway, sse_upstream, store):
    """Both legacy ends at once: the SDK's sse_client on the route's /sse, the route's upstream an HTTP+SSE server."""
    server = await start_gateway([sse_route(sse_upstream.port)])
    token = await issue(store, server, "old")
    url = str(server.make_url("/old/mcp/sse"))
    async with (
        sse_client(url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        assert "whoami" in {t.name for t in (await session.list_tools()).tools}
        seen = json.loads((await session.call_tool("whoami", {})).content[0].text)
        assert (await session.call_tool("add", {"a": 2, "b": 5})).content[0].text == "7"
    assert seen["meta"][IDENTITY_META]["user"] == "local:alice"
