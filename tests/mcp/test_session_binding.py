"""Session binding (issue #5 item 2; MCP RS-13, best practices "Session Hijacking")."""

from __future__ import annotations

import pytest
from aiohttp import web
from multidict import CIMultiDict

from gateway.accounts import add_user
from gateway.oauth.token_values import hash_token
from tests.conftest import route
from tests.support.mcp_wire import legacy_initialize
from tests.support.oauth_client import register
from tests.support.token_flow import PASSWORD, obtain_tokens, refresh
from tests.support.tokens import issue

ACCEPT = {"Accept": "application/json, text/event-stream"}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


async def start_session(client, token: str) -> str:
    response = await client.post(
        "/alpha/mcp", json=legacy_initialize(), headers={**ACCEPT, "Authorization": f"Bearer {token}"}
    )
    assert response.status == 200
    await response.read()
    return response.headers["Mcp-Session-Id"]


async def notify(client, token: str, session_id: str) -> int:
    response = await client.post(
        "/alpha/mcp",
        json=INITIALIZED,
        headers={
            **ACCEPT,
            "Authorization": f"Bearer {token}",
            "Mcp-Session-Id": session_id,
            "MCP-Protocol-Version": "2025-11-25",
        },
    )
    await response.read()
    return response.status


async def test_session_id_the_gateway_never_saw_created_is_not_found(gateway, aiohttp_client, store):
    """Our choice: only sessions minted through the gateway are usable (no first-come binding of unknown ids)."""
    client = await aiohttp_client(gateway)
    token = await issue(store, gateway, "alpha")
    assert await notify(client, token, "0123456789abcdef0123456789abcdef") == 404


async def test_session_survives_refresh_and_ends_with_delete(gateway, aiohttp_client, store, clock):
    """Same user and client after a refresh keep the session; after DELETE the id is gone for everyone."""
    await add_user(store, "alice", PASSWORD, now=clock.now)
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    session_id = await start_session(client, tokens["access_token"])
    refreshed = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert await notify(client, refreshed.body["access_token"], session_id) == 202
    other_client = await register(client)  # same user, another client: not the session's owner
    theirs = await obtain_tokens(client, gateway, other_client["client_id"])
    assert await notify(client, theirs["access_token"], session_id) == 404
    ended = await client.delete(
        "/alpha/mcp",
        headers={"Authorization": f"Bearer {refreshed.body['access_token']}", "Mcp-Session-Id": session_id},
    )
    assert ended.status == 200
    assert await notify(client, refreshed.body["access_token"], session_id) == 404


async def test_with_the_token_cache_on_a_session_stays_bound_to_its_owner(
    start_gateway, upstream, aiohttp_client, store, redis_url, key_prefix
):
    """The per-process cache also keeps session owners (a binding never changes): the owner's next requests
    read no Redis, someone else's token still gets 404, and DELETE ends the session here at once."""
    import asyncio

    from gateway.app_state import TOKEN_CACHE_KEY
    from tests.conftest import route

    server = await start_gateway(
        [route("alpha", upstream.url)], store={"url": redis_url, "key_prefix": key_prefix, "token_cache_seconds": 30}
    )
    cache = server.app[TOKEN_CACHE_KEY]
    async with asyncio.timeout(5):
        while not cache.connected:
            await asyncio.sleep(0.01)
    client = await aiohttp_client(server)
    mine, theirs = await issue(store, server, "alpha"), await issue(store, server, "alpha", user="mallory")
    session_id = await start_session(client, mine)
    assert await notify(client, mine, session_id) == 202
    assert cache.get_owner(session_id) is not None  # the next request is answered from memory
    assert await notify(client, mine, session_id) == 202
    assert await notify(client, theirs, session_id) == 404
    ended = await client.delete("/alpha/mcp", headers={"Authorization": f"Bearer {mine}", "Mcp-Session-Id": session_id})
    assert ended.status == 200
    assert cache.get_owner(session_id) is None
    assert await notify(client, mine, session_id) == 404


@pytest.mark.parametrize("value", ["has space", "caf\xe9", "x" * 600])
async def test_a_client_session_id_that_is_not_visible_ascii_or_is_too_long_is_a_400(
    gateway, aiohttp_client, store, value
):
    """Security review 2, R4c (MCP 2025-11-25 "Session Management": visible ASCII 0x21-0x7E): a JSON-RPC error,
    before the token lookup reads it and before the upstream sees it."""
    client = await aiohttp_client(gateway)
    token = await issue(store, gateway, "alpha")
    response = await client.post(
        "/alpha/mcp",
        json=INITIALIZED,
        headers={**ACCEPT, "Authorization": f"Bearer {token}", "Mcp-Session-Id": value},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == -32020


@pytest.mark.parametrize(
    "minted",
    [
        pytest.param([("Mcp-Session-Id", "has space")], id="space"),
        pytest.param([("Mcp-Session-Id", "x" * 600)], id="too-long"),
        pytest.param([("Mcp-Session-Id", "s-1"), ("Mcp-Session-Id", "s-2")], id="two-values"),
    ],
)
async def test_an_invalid_session_id_minted_upstream_is_neither_bound_nor_forwarded(
    start_gateway, aiohttp_server, aiohttp_client, store, minted
):
    """Security review 2, R4c: fail closed; the client gets the answer without a session it could not use."""

    async def handle(request: web.Request) -> web.Response:
        message = await request.json()
        body = {"jsonrpc": "2.0", "id": message.get("id"), "result": {"protocolVersion": "2025-11-25"}}
        return web.json_response(body, headers=CIMultiDict(minted))

    app = web.Application()
    app.router.add_post("/mcp", handle)
    upstream = await aiohttp_server(app)
    server = await start_gateway([route("alpha", str(upstream.make_url("/mcp")))])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha")
    response = await client.post(
        "/alpha/mcp", json=legacy_initialize(), headers={**ACCEPT, "Authorization": f"Bearer {token}"}
    )
    assert response.status == 200 and "result" in await response.json()
    assert "Mcp-Session-Id" not in response.headers
    for _, value in minted:
        _, owner = await store.load_access_token_with_session(hash_token(token), value)
        assert owner is None
