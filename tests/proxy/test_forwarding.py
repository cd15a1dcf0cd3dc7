"""What crosses the gateway to the upstream and back (MCP RS-9, RS-13, RS-14, RS-17 as amended by issue 10 #16;
style "Upstream failures")."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import route
from tests.support.mcp_wire import legacy_initialize, modern_call, read_sse_event, tool_result_text
from tests.support.processes import free_port
from tests.support.stalled import stalled_server
from tests.support.tokens import issue


async def echo_headers_via_sdk(url: str, token: str, extra: dict[str, str], mode: str) -> dict[str, str]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", **extra}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        result = await client.call_tool("echo_headers", {})
    return json.loads(result.content[0].text)


async def test_upstream_sees_identity_headers_and_never_the_token(gateway, store):
    """MCP RS-9: Authorization stripped; identity injected from the token's record (contract defaults)."""
    token = await issue(store, gateway, "alpha")
    seen = await echo_headers_via_sdk(str(gateway.make_url("/alpha/mcp")), token, {}, "auto")
    assert "authorization" not in seen
    assert token not in json.dumps(seen)
    assert seen["x-forwarded-user"] == "local:alice"
    assert seen["x-forwarded-email"] == "alice@example.com"
    assert seen["x-forwarded-preferred-username"] == "alice"
    assert seen["x-forwarded-groups"] == "eng,ops"
    assert seen["x-mcp-client-id"] == "mcp-auth-gateway-cli"
    assert seen["x-mcp-scopes"] == "alpha:read"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"


async def test_spoofed_identity_headers_and_cookies_never_arrive(gateway, store, upstream):
    """MCP RS-9 (REC): inbound copies of identity headers are removed first; no cookie goes upstream unless the
    route names it in forward_cookies (issue 10 #9; tests/proxy/test_header_policy.py has the named case)."""
    token = await issue(store, gateway, "alpha")
    seen = await echo_headers_via_sdk(
        str(gateway.make_url("/alpha/mcp")),
        token,
        {
            "X-Forwarded-User": "local:mallory",
            "X-MCP-Scopes": "admin",
            "X-Forwarded-For": "10.6.6.6",
            "Cookie": "mcpgw_session=secret; theme=dark; __Host-mcpgw_csrf=x",
        },
        "legacy",
    )
    assert seen["x-forwarded-user"] == "local:alice"
    assert seen["x-mcp-scopes"] == "alpha:read"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert "cookie" not in seen
    assert seen["host"] == f"127.0.0.1:{upstream.port}"  # the SDK's servers refuse foreign Host headers


async def test_mirrored_protocol_headers_pass_through(gateway, store):
    """MCP RS-14: MCP-Protocol-Version, Mcp-Method, Mcp-Name are forwarded unchanged (2026-07-28)."""
    token = await issue(store, gateway, "alpha")
    seen = await echo_headers_via_sdk(str(gateway.make_url("/alpha/mcp")), token, {"Mcp-Param-Region": "eu"}, "auto")
    assert seen["mcp-protocol-version"] == "2026-07-28"
    assert seen["mcp-method"] == "tools/call"
    assert seen["mcp-name"] == "echo_headers"
    assert seen["mcp-param-region"] == "eu"


async def test_progress_event_arrives_while_the_upstream_is_still_working(gateway, store, aiohttp_client):
    """MCP RS-17: SSE is relayed unbuffered. The tool sleeps 30 s after its first progress event; buffering
    would hold that event back for 30 s, so the bounded read proves it arrived on its own. Leaving early also
    exercises the client-disconnect path."""
    token = await issue(store, gateway, "alpha")
    client = await aiohttp_client(gateway)
    headers, body = modern_call(9, "slow_progress", {"steps": 2, "delay": 30}, progress_token="p-9")
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert response.content_type == "text/event-stream"
    async with asyncio.timeout(5):
        event = await read_sse_event(response)
    assert event["method"] == "notifications/progress"
    assert event["params"]["progressToken"] == "p-9"
    response.close()


async def open_progress_streams(http: aiohttp.ClientSession, url: str, token: str, count: int) -> list:
    headers, body = modern_call(9, "slow_progress", {"steps": 2, "delay": 30}, progress_token="p")
    return list(
        await asyncio.gather(
            *(http.post(url, json=body, headers={**headers, "Authorization": f"Bearer {token}"}) for _ in range(count))
        )
    )


async def test_many_open_streams_are_not_capped_by_a_connection_pool(gateway, store):
    """Each open SSE stream holds an upstream connection: by default nothing caps them (a pool of 100 once
    turned stream 101 into a 504 after connect_timeout)."""
    token = await issue(store, gateway, "alpha")
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))  # (a test client stops at 100)
    streams = await open_progress_streams(http, str(gateway.make_url("/alpha/mcp")), token, 120)
    try:
        assert [r.status for r in streams] == [200] * 120
        async with asyncio.timeout(20):
            events = await asyncio.gather(*(read_sse_event(r) for r in streams))
        assert all(e["method"] == "notifications/progress" for e in events)
    finally:
        for response in streams:
            response.close()
        await http.close()


async def test_proxy_pool_size_caps_upstream_connections_then_504(start_gateway, upstream, store):
    server = await start_gateway([route("alpha", upstream.url)], proxy={"pool_size": 2, "connect_timeout": 0.5})
    token = await issue(store, server, "alpha")
    http = aiohttp.ClientSession()
    url = str(server.make_url("/alpha/mcp"))
    held = await open_progress_streams(http, url, token, 2)
    try:
        assert [r.status for r in held] == [200, 200]
        [extra] = await open_progress_streams(http, url, token, 1)
        assert extra.status == 504  # waited connect_timeout for a free connection
        assert (await extra.json())["id"] == 9
    finally:
        for response in held:
            response.close()
        await http.close()


async def test_upstream_down_gives_502_json_rpc_error_echoing_the_id(start_gateway, aiohttp_client, store):
    """Style guide: aiohttp.ClientError -> 502, as a JSON-RPC error that echoes the request id."""
    server = await start_gateway([route("alpha", f"http://127.0.0.1:{free_port()}/mcp")])
    token = await issue(store, server, "alpha")
    client = await aiohttp_client(server)
    headers, body = modern_call(42, "add", {"a": 1, "b": 2})
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 502
    reply = await response.json()
    assert reply["id"] == 42 and reply["error"]["message"] == "Upstream MCP server unavailable"


async def test_upstream_timeout_gives_504_and_hangs_up_on_the_upstream(start_gateway, aiohttp_client, store):
    """Style guide: no response headers within the route timeout -> 504 JSON-RPC error; connection closed."""
    async with stalled_server() as stalled:
        server = await start_gateway([route("alpha", stalled.url, timeout=0.5)])
        token = await issue(store, server, "alpha")
        client = await aiohttp_client(server)
        headers, body = modern_call("req-7", "add", {"a": 1, "b": 2})
        response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
        assert response.status == 504
        assert (await response.json())["id"] == "req-7"
        async with asyncio.timeout(5):
            await stalled.closed_by_peer.wait()


async def test_client_disconnect_cancels_the_upstream_request(start_gateway, aiohttp_client, store):
    """Issue #2: a client that leaves while the upstream works makes the gateway close the upstream request."""
    async with stalled_server() as stalled:
        server = await start_gateway([route("alpha", stalled.url)])
        token = await issue(store, server, "alpha")
        client = await aiohttp_client(server)
        headers, body = modern_call(1, "add", {"a": 1, "b": 2})
        request = asyncio.ensure_future(
            client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
        )
        async with asyncio.timeout(5):
            await stalled.connected.wait()
        request.cancel()
        async with asyncio.timeout(5):
            await stalled.closed_by_peer.wait()


async def test_oversized_body_gets_413(start_gateway, upstream, aiohttp_client, store):
    """Issue #2: request bodies above proxy.max_body_bytes are refused before reaching the upstream."""
    server = await start_gateway([route("alpha", upstream.url)], proxy={"max_body_bytes": 1024})
    token = await issue(store, server, "alpha")
    client = await aiohttp_client(server)
    headers, body = modern_call(3, "add", {"a": 1, "b": 2})
    body["params"]["arguments"]["padding"] = "x" * 2000
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == -31413


async def test_session_of_another_user_is_not_found(gateway, aiohttp_client, store):
    """MCP RS-13 (BP "Session Hijacking"): a session id is bound to its creator; others get 404."""
    alice = await issue(store, gateway, "alpha", user="alice")
    bob = await issue(store, gateway, "alpha", user="bob")
    client = await aiohttp_client(gateway)
    accept = {"Accept": "application/json, text/event-stream"}
    init = await client.post(
        "/alpha/mcp", json=legacy_initialize(), headers={**accept, "Authorization": f"Bearer {alice}"}
    )
    assert init.status == 200
    session_id = init.headers["Mcp-Session-Id"]
    await init.read()
    stolen = await client.post(
        "/alpha/mcp",
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers={
            **accept,
            "Authorization": f"Bearer {bob}",
            "Mcp-Session-Id": session_id,
            "MCP-Protocol-Version": "2025-11-25",
        },
    )
    assert stolen.status == 404
    own = await client.post(
        "/alpha/mcp",
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers={
            **accept,
            "Authorization": f"Bearer {alice}",
            "Mcp-Session-Id": session_id,
            "MCP-Protocol-Version": "2025-11-25",
        },
    )
    assert own.status == 202
    ended = await client.delete(
        "/alpha/mcp", headers={"Authorization": f"Bearer {alice}", "Mcp-Session-Id": session_id}
    )
    assert ended.status == 200


async def test_json_response_bodies_pass_through_intact(gateway, aiohttp_client, store):
    """The relay copies whatever the upstream sends; here a tool result arrives whole."""
    token = await issue(store, gateway, "alpha")
    client = await aiohttp_client(gateway)
    headers, body = modern_call(11, "add", {"a": 20, "b": 22})
    response = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert await tool_result_text(response) == "42"


async def test_a_token_expiring_mid_stream_ends_the_stream_and_the_next_request_gets_401(
    gateway, aiohttp_client, store, clock
):
    """Issue 10 #16 overrides our checklist's RS-17 ("on token expiry mid-stream, do not cut the stream"): a stream
    that inherited its token for as long as it stays open would let a token issued for an hour keep a GET stream
    or a long tool call alive for days. Each stream now ends at its token's `expires_at` (by the gateway's clock),
    cleanly (EOFError, not a broken chunked body), and the client comes back with a fresh token."""
    token = await issue(store, gateway, "alpha", ttl=60, now=clock.now - 59.5)  # expires in half a second
    client = await aiohttp_client(gateway)
    headers, body = modern_call(4, "slow_progress", {"steps": 2, "delay": 30}, progress_token="p-4")
    headers["Authorization"] = f"Bearer {token}"
    stream = await client.post("/alpha/mcp", json=body, headers=headers)
    assert (await read_sse_event(stream))["method"] == "notifications/progress"
    async with asyncio.timeout(5):  # (the tool's result would take 30 s more)
        with pytest.raises(EOFError):
            while True:
                assert "result" not in await read_sse_event(stream)
    clock.now += 1
    again = await client.post("/alpha/mcp", json=body, headers=headers)
    assert again.status == 401
