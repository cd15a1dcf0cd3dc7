"""Per-tool policy through the gateway to the real upstream (issue #5 item 1; MCP RS-10 step-up, RS-14)."""

from __future__ import annotations

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.accounts import add_user
from tests.conftest import route
from tests.support.challenge import parse_bearer
from tests.support.headless_oauth import Browser, MemoryStorage, oauth_provider
from tests.support.mcp_wire import modern_call, read_sse_event
from tests.support.tokens import issue

POLICY = {
    "tools": [
        {"match": "add", "scopes": ["alpha:write"]},
        {"match": "slow_*", "deny": True},
        {"match": "echo_headers", "groups": ["local:ops"]},
    ]
}


def policed(upstream_url: str, **extra):
    return route(
        "alpha",
        upstream_url,
        scopes=["alpha:read", "alpha:write"],
        required_scopes=["alpha:read"],
        policy=POLICY,
        **extra,
    )


def list_call(request_id: int = 1) -> tuple[dict[str, str], dict]:
    headers, body = modern_call(request_id, "x", {})
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/list", "params": {"_meta": body["params"]["_meta"]}}
    return {**headers, "Mcp-Method": "tools/list", "Mcp-Name": None}, body


async def listed(client, token: str) -> list[str]:
    headers, body = list_call()
    headers = {k: v for k, v in headers.items() if v is not None}
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 200
    if response.content_type == "text/event-stream":
        message = await read_sse_event(response)
    else:
        message = await response.json()
    return [tool["name"] for tool in message["result"]["tools"]]


@pytest.mark.parametrize("framing", ["sse", "json"])
async def test_tools_list_shows_only_tools_the_caller_may_call(
    start_gateway, upstream, json_upstream, store, aiohttp_client, framing
):
    """Hidden: a tool needing more scope (add), a denied one (slow_progress), one needing a group the user lacks."""
    server = await start_gateway([policed((upstream if framing == "sse" else json_upstream).url)])
    client = await aiohttp_client(server)
    reader = await issue(store, server, "alpha", user="reader", scopes=("alpha:read",), groups=())
    ops = await issue(store, server, "alpha", user="opsy", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    assert await listed(client, reader) == ["confirm_add"]
    assert await listed(client, ops) == ["echo_headers", "add", "confirm_add"]


async def test_call_needing_more_scope_gets_a_step_up_challenge(start_gateway, upstream, store, aiohttp_client):
    """RS-10: 403, error="insufficient_scope", every scope the call needs in one challenge; upstream not called."""
    server = await start_gateway([policed(upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read",))
    headers, body = modern_call(5, "add", {"a": 1, "b": 2})
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 403
    params = dict(parse_bearer(response.headers["WWW-Authenticate"]))
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "alpha:read alpha:write"
    assert (await response.json())["id"] == 5


async def test_denied_tool_is_a_json_rpc_error_echoing_the_id(start_gateway, upstream, store, aiohttp_client):
    server = await start_gateway([policed(upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    headers, body = modern_call("call-9", "slow_progress", {"steps": 1, "delay": 0})
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 403 and "WWW-Authenticate" not in response.headers
    reply = await response.json()
    assert reply["id"] == "call-9" and "slow_progress" in reply["error"]["message"]


async def test_batch_with_one_denied_call_is_refused_whole(start_gateway, upstream, store, aiohttp_client):
    server = await start_gateway([policed(upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    _, first = modern_call(1, "add", {"a": 1, "b": 2})
    _, second = modern_call(2, "slow_progress", {"steps": 1, "delay": 0})
    for message in (first, second):
        del message["params"]["_meta"]  # (a 2025-03-26 batch: later revisions have none)
    response = await client.post(
        "/alpha/mcp",
        json=[first, second],
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-03-26",
        },
    )
    assert response.status == 403 and (await response.json())["id"] == 2


async def test_mirrored_header_that_disagrees_with_the_body_is_400(start_gateway, upstream, store, aiohttp_client):
    """RS-14: never trust Mcp-Method/Mcp-Name alone; a mismatch is a 400 and reaches nobody."""
    server = await start_gateway([policed(upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read", "alpha:write"), groups=("ops",))
    headers, body = modern_call(3, "slow_progress", {"steps": 1, "delay": 0})
    headers["Mcp-Name"] = "echo_headers"  # claims an allowed tool, body calls a denied one
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 400 and (await response.json())["error"]["code"] == -32020


async def test_sdk_client_steps_up_and_succeeds_after_reauthorization(start_gateway, upstream, store, clock):
    """RS-10 / SCP-2 with the real client: the first grant has alpha:read; calling `add` yields the step-up
    challenge; the client re-authorizes (consent asked again: wider scopes) and the call then succeeds."""
    await add_user(store, "alice", "correct-horse-battery", groups=("ops",), now=clock.now)
    server = await start_gateway([policed(upstream.url)])
    url = str(server.make_url("/alpha/mcp"))
    browser, storage = Browser("alice", "correct-horse-battery"), MemoryStorage()
    async with (
        httpx2.AsyncClient(auth=oauth_provider(url, browser, storage), timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        assert storage.tokens.scope.split() == ["alpha:read"]
        tools = [t.name for t in (await client.list_tools()).tools]
        assert tools == ["echo_headers", "confirm_add"]
        result = await client.call_tool("add", {"a": 40, "b": 2})
        assert result.content[0].text == "42"
    assert set(storage.tokens.scope.split()) == {"alpha:read", "alpha:write"}
    assert sum('name="decision"' in page for page in browser.pages) == 2
