"""Legacy HTTP+SSE clients (MCP 2024-11-05 transport) on a route in front of the real Streamable HTTP upstream: the
SDK's own `sse_client` + `ClientSession`, and raw HTTP where statuses and the stream itself are the point
(gateway.web.legacy_sse, gateway.web.legacy_sessions)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from aiohttp import ClientResponse
from mcp import ClientSession, MCPError
from mcp.client.sse import sse_client

from gateway.app_state import TOKEN_CACHE_KEY
from gateway.oauth.token_values import hash_token
from tests.conftest import route
from tests.oauth.test_dpop import dpop_gateway, machine_token, public
from tests.support.challenge import parse_bearer
from tests.support.dpop_client import DpopKey, parse_challenge
from tests.support.mcp_wire import legacy_initialize
from tests.support.oauth_client import register
from tests.support.token_flow import obtain_tokens
from tests.support.tokens import issue

POLICY = {"tools": [{"match": "slow_*", "deny": True}]}


@asynccontextmanager
async def sse_session(server, token: str, path: str = "/alpha/mcp") -> AsyncIterator[ClientSession]:
    """The SDK's HTTP+SSE client on `<path>/sse`, initialized."""
    url = str(server.make_url(f"{path}/sse"))
    async with (
        sse_client(url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def next_event(response: ClientResponse) -> tuple[str, str]:
    """(event name, data) of the next SSE event (comments skipped); EOFError when the stream ends."""
    name, data = "message", []
    while True:
        line = (await response.content.readline()).decode()
        if line == "":
            raise EOFError("stream ended")
        line = line.rstrip("\r\n")
        if line == "":
            if data:
                return name, "\n".join(data)
            name = "message"
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


async def open_stream(client, token: str, path: str = "/alpha/mcp") -> tuple[ClientResponse, str]:
    """A raw GET <path>/sse: the response and the endpoint its first event names."""
    response = await client.get(f"{path}/sse", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    assert response.content_type == "text/event-stream"
    async with asyncio.timeout(5):
        name, endpoint = await next_event(response)
    assert name == "endpoint"
    return response, endpoint


async def next_message(response: ClientResponse) -> dict[str, Any]:
    async with asyncio.timeout(5):
        name, data = await next_event(response)
    assert name == "message"
    return json.loads(data)


# -- the SDK's client ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["sse", "json"])
async def test_sdk_sse_client_initializes_lists_and_calls_tools_with_progress(
    start_gateway, upstream, json_upstream, store, framing
):
    """2024-11-05: answers (progress notifications first) arrive on the GET stream, whether the upstream answers
    the POSTs as SSE streams or JSON bodies; the identity headers reach the upstream as for any request on the
    route."""
    server = await start_gateway([route("alpha", (upstream if framing == "sse" else json_upstream).url)])
    token = await issue(store, server, "alpha", user="carol", groups=("sre",))
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with sse_session(server, token) as session:
        tools = await session.list_tools()
        assert {t.name for t in tools.tools} >= {"echo_headers", "slow_progress", "add"}
        assert (await session.call_tool("add", {"a": 40, "b": 2})).content[0].text == "42"
        result = await session.call_tool("slow_progress", {"steps": 3, "delay": 0.05}, progress_callback=on_progress)
        progress.append("result")
        seen = json.loads((await session.call_tool("echo_headers", {})).content[0].text)
    assert result.content[0].text == "done"
    if framing == "sse":  # (a JSON answer has no room for notifications)
        assert progress == ["step 1", "step 2", "step 3", "result"]
    assert seen["x-forwarded-user"] == "local:carol" and seen["x-forwarded-groups"] == "sre"
    assert "authorization" not in seen


async def test_sdk_sse_client_sees_the_policy_filtered_list_and_a_denied_call_as_a_json_rpc_error(
    start_gateway, upstream, store
):
    """The route's tool policy applies to an HTTP+SSE client's POSTs: the denied tool is hidden, and calling it is
    a JSON-RPC error on the stream (MCPError for the SDK), after which the session goes on working."""
    server = await start_gateway([route("alpha", upstream.url, policy=POLICY)])
    token = await issue(store, server, "alpha")
    async with sse_session(server, token) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert "slow_progress" not in names and {"echo_headers", "add"} <= names
        with pytest.raises(MCPError) as refused:
            await session.call_tool("slow_progress", {"steps": 1, "delay": 0})
        assert "slow_progress" in str(refused.value)
        assert (await session.call_tool("add", {"a": 1, "b": 2})).content[0].text == "3"


# -- raw HTTP: statuses, ownership, the stream's end --------------------------------------------------------------


async def test_a_denied_call_is_accepted_and_its_error_arrives_on_the_stream_echoing_the_id(
    start_gateway, upstream, store, aiohttp_client
):
    server = await start_gateway([route("alpha", upstream.url, policy=POLICY)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    stream, endpoint = await open_stream(client, token)
    assert endpoint.startswith("/alpha/mcp/messages?session_id=")
    bearer = {"Authorization": f"Bearer {token}"}
    posted = await client.post(endpoint, json=legacy_initialize(1), headers=bearer)
    assert posted.status == 202
    assert (await next_message(stream))["id"] == 1
    call = {"jsonrpc": "2.0", "id": "x-7", "method": "tools/call", "params": {"name": "slow_progress"}}
    posted = await client.post(endpoint, json=call, headers=bearer)
    assert posted.status == 202
    answer = await next_message(stream)
    assert answer["id"] == "x-7" and "slow_progress" in answer["error"]["message"] and "result" not in answer
    stream.close()


async def test_a_post_to_an_unknown_session_is_404(start_gateway, upstream, store, aiohttp_client):
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    response = await client.post(
        "/alpha/mcp/messages?session_id=no-such-session",
        json=legacy_initialize(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 404
    assert (await response.json())["error"]["code"] < 0


async def test_another_users_token_on_a_session_is_404_and_the_session_still_works(
    start_gateway, upstream, store, aiohttp_client
):
    """A session id alone is nothing: Bob's valid token on Alice's session is told it does not exist."""
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    alice = await issue(store, server, "alpha", user="alice")
    bob = await issue(store, server, "alpha", user="bob")
    stream, endpoint = await open_stream(client, alice)
    stolen = await client.post(endpoint, json=legacy_initialize(1), headers={"Authorization": f"Bearer {bob}"})
    assert stolen.status == 404
    own = await client.post(endpoint, json=legacy_initialize(2), headers={"Authorization": f"Bearer {alice}"})
    assert own.status == 202
    assert (await next_message(stream))["id"] == 2  # (nothing of Bob's POST reached the stream)
    stream.close()


async def test_a_token_of_another_client_of_the_same_user_on_a_session_is_404(
    start_gateway, upstream, store, aiohttp_client, clock
):
    """The session is bound to the user *and* the client that opened it: Alice's token from an OAuth client of hers
    is refused on the session her service token opened."""
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    service = await issue(store, server, "alpha", user="alice")  # (also creates alice, password PASSWORD)
    registered = await register(client)
    oauth = (await obtain_tokens(client, server, registered["client_id"]))["access_token"]
    stream, endpoint = await open_stream(client, service)
    other = await client.post(endpoint, json=legacy_initialize(1), headers={"Authorization": f"Bearer {oauth}"})
    assert other.status == 404
    stream.close()


async def test_a_get_without_a_token_is_401_with_a_challenge(start_gateway, upstream, aiohttp_client):
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    response = await client.get("/alpha/mcp/sse")
    assert response.status == 401
    params = dict(parse_bearer(response.headers["WWW-Authenticate"]))
    assert params["resource_metadata"].endswith("/.well-known/oauth-protected-resource/alpha/mcp")


async def test_a_post_with_an_unknown_token_is_401_not_an_event(start_gateway, upstream, store, aiohttp_client):
    """A refusal of the token itself stays the POST's answer (the client must sign in again)."""
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    stream, endpoint = await open_stream(client, token)
    response = await client.post(endpoint, json=legacy_initialize(), headers={"Authorization": "Bearer not-a-token"})
    assert response.status == 401
    assert dict(parse_bearer(response.headers["WWW-Authenticate"]))["error"] == "invalid_token"
    stream.close()


async def test_revoking_the_token_ends_the_stream_and_forgets_the_session(
    start_gateway, upstream, store, aiohttp_client
):
    """Revoked through the store (another instance, the CLI): the feed ends the stream; the session id is gone."""
    server = await start_gateway([route("alpha", upstream.url)])
    async with asyncio.timeout(5):
        while not server.app[TOKEN_CACHE_KEY].connected:
            await asyncio.sleep(0.01)
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    stream, endpoint = await open_stream(client, token)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.post(endpoint, json=legacy_initialize(1), headers=bearer)).status == 202
    assert (await next_message(stream))["id"] == 1
    assert await store.revoke_access_token(hash_token(token))
    async with asyncio.timeout(5):
        with pytest.raises(EOFError):
            while True:
                await next_event(stream)
    fresh = await issue(store, server, "alpha")
    after = await client.post(endpoint, json=legacy_initialize(2), headers={"Authorization": f"Bearer {fresh}"})
    assert after.status == 404


async def test_seventeen_sessions_of_one_user_are_refused_with_429(start_gateway, upstream, store, aiohttp_client):
    """MAX_PER_USER = 16 open sessions; another user is not affected."""
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", user="alice")
    streams = [(await open_stream(client, token))[0] for _ in range(16)]
    refused = await client.get("/alpha/mcp/sse", headers={"Authorization": f"Bearer {token}"})
    assert refused.status == 429
    bob = await issue(store, server, "alpha", user="bob")
    kept, _ = await open_stream(client, bob)
    for stream in [*streams, kept]:
        stream.close()


async def test_a_get_with_a_token_lacking_the_routes_required_scope_is_403_step_up(
    start_gateway, upstream, store, aiohttp_client
):
    server = await start_gateway(
        [route("alpha", upstream.url, scopes=["alpha:read", "alpha:write"], required_scopes=["alpha:write"])]
    )
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read",))
    response = await client.get("/alpha/mcp/sse", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 403
    params = dict(parse_bearer(response.headers["WWW-Authenticate"]))
    assert params["error"] == "insufficient_scope" and "alpha:write" in params["scope"]


async def test_a_rate_limited_post_is_accepted_and_its_error_arrives_on_the_stream(
    start_gateway, upstream, store, aiohttp_client
):
    """Limits apply to a session's POSTs as to any request of the route; the refusal answers its request id."""
    limits = {"mcp_per_user": None, "tool_calls_per_user": {"limit": 1, "period": 3600}}
    server = await start_gateway([route("alpha", upstream.url, rate_limits=limits)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    stream, endpoint = await open_stream(client, token)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.post(endpoint, json=legacy_initialize(1), headers=bearer)).status == 202
    assert (await next_message(stream))["id"] == 1
    for request_id in (2, 3):
        call = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "add"}}
        call["params"]["arguments"] = {"a": 1, "b": request_id}
        assert (await client.post(endpoint, json=call, headers=bearer)).status == 202
    answers = {m["id"]: m for m in (await next_message(stream), await next_message(stream))}  # (in either order)
    first, second = answers[2], answers[3]
    assert first["id"] == 2 and first["result"]["content"][0]["text"] == "3"
    assert second["id"] == 3 and "error" in second and "result" not in second
    stream.close()


async def test_a_malformed_post_on_a_session_is_a_400_answer(start_gateway, upstream, store, aiohttp_client):
    """No request id to answer on the stream: the POST itself is refused."""
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    stream, endpoint = await open_stream(client, token)
    response = await client.post(
        endpoint, data=b"{not json", headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    assert response.status == 400 and (await response.json())["error"]["code"] == -32700
    stream.close()


async def test_a_token_that_expires_ends_the_stream(start_gateway, upstream, store, aiohttp_client):
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", ttl=1)
    stream, _ = await open_stream(client, token)
    async with asyncio.timeout(5):
        with pytest.raises(EOFError):
            while True:
                await next_event(stream)


async def test_a_client_that_leaves_frees_its_sessions_place(start_gateway, upstream, store, aiohttp_client):
    """Of 16 open sessions one is closed by its client: a new one may open at once (bounded wait), and the closed
    one's id is gone."""
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    opened = [await open_stream(client, token) for _ in range(16)]
    (first, endpoint), rest = opened[0], opened[1:]
    first.close()
    bearer = {"Authorization": f"Bearer {token}"}
    async with asyncio.timeout(3):
        while (again := await client.get("/alpha/mcp/sse", headers=bearer)).status == 429:
            await asyncio.sleep(0.05)
    assert again.status == 200
    assert (await client.post(endpoint, json=legacy_initialize(), headers=bearer)).status == 404
    for stream, _ in rest:
        stream.close()
    again.close()


async def test_ending_a_session_ends_its_upstream_session(start_gateway, upstream, store, aiohttp_client):
    """The gateway is the Streamable HTTP client of the upstream session its HTTP+SSE session opened; when the
    session ends (its client left), that client no longer needs it and SHOULD end it with DELETE (MCP 2025-11-25
    basic/transports "Session Management"), as the virtual server does for its members' sessions. Otherwise every
    reconnect of a legacy client leaves a session behind on the upstream."""
    server = await start_gateway([route("alpha", upstream.url)])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    stream, endpoint = await open_stream(client, token)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.post(endpoint, json=legacy_initialize(1), headers=bearer)).status == 202
    assert (await next_message(stream))["id"] == 1
    echo = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo_headers", "arguments": {}}}
    assert (await client.post(endpoint, json=echo, headers=bearer)).status == 202
    upstream_session = json.loads((await next_message(stream))["result"]["content"][0]["text"])["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}
    direct = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
        "Mcp-Session-Id": upstream_session,
    }
    async with httpx2.AsyncClient(timeout=5) as raw:
        assert (await raw.post(upstream.url, json=listing, headers=direct)).status_code == 200
        stream.close()
        for _ in range(30):  # (3 s at most for the gateway to notice and end it)
            try:
                status = (await raw.post(upstream.url, json=listing, headers=direct)).status_code
            except httpx2.TransportError:  # (a request in flight while the session ends is cut off: ask again)
                status = 200
            if status != 200:
                break
            await asyncio.sleep(0.1)
    assert status == 404, "the upstream session outlived the HTTP+SSE session that opened it"


async def test_a_dpop_bound_token_posts_on_its_session_with_a_proof_for_the_messages_url(
    start_gateway, upstream, aiohttp_client, clock
):
    """RFC 9449 §4.2/§4.3: `htu` is the URI of the request the proof travels with, without query: here
    `<path>/messages`. The route's other endpoints (its /sse GET) take proofs for their own URLs."""
    server = await dpop_gateway(start_gateway, upstream)  # (alpha: require_dpop)
    client = await aiohttp_client(server)
    key = DpopKey(clock)
    token = await machine_token(client, server, key)
    proof = key.proof("GET", public(server, "/alpha/mcp/sse"), token)
    stream = await client.get("/alpha/mcp/sse", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert stream.status == 200
    async with asyncio.timeout(5):
        name, endpoint = await next_event(stream)
    assert name == "endpoint"
    body = json.dumps(legacy_initialize(1)).encode()
    proof = key.proof("POST", public(server, "/alpha/mcp/messages"), token, body)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof, "Content-Type": "application/json"}
    posted = await client.post(endpoint, data=body, headers=headers)
    assert posted.status == 202, parse_challenge(posted.headers.get("WWW-Authenticate", "DPoP "))[1].get(
        "error_description"
    )
    assert (await next_message(stream))["id"] == 1
    stream.close()
