"""A token's open streams end when it is revoked, wherever that happens (issue 10 #16, overriding our checklist's
RS-17: a stream no longer inherits its token for as long as it stays open). Expiry: tests/proxy/test_forwarding.py.

Each stream ends cleanly for the client (the chunked response is terminated, no reset): `read_sse_event` raises
EOFError on a clean end and aiohttp's ClientPayloadError on a broken one."""

from __future__ import annotations

import asyncio

import pytest

from gateway.accounts import add_user
from gateway.app import create_app
from gateway.app_state import TOKEN_CACHE_KEY
from gateway.oauth.token_values import hash_token
from gateway.ports import free_port
from tests.conftest import make_settings, route
from tests.support.mcp_wire import legacy_initialize, modern_call, read_sse_event, tool_result_text
from tests.support.oauth_client import register
from tests.support.paused_store import open_pausing_store
from tests.support.token_flow import PASSWORD, mcp_status, obtain_tokens, post_form
from tests.support.tokens import issue

ACCEPT = {"Accept": "application/json, text/event-stream"}


async def feed_subscribed(server) -> None:
    """The revocation feed runs whatever token_cache_seconds says (0 here: the fixtures' default)."""
    async with asyncio.timeout(5):
        while not server.app[TOKEN_CACHE_KEY].connected:
            await asyncio.sleep(0.01)


async def open_slow_call(client, token: str, delay: float):
    headers, body = modern_call(9, "slow_progress", {"steps": 2, "delay": delay}, progress_token="p")
    stream = await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})
    assert stream.status == 200 and stream.content_type == "text/event-stream"
    return stream


async def ends_without_a_result(stream) -> None:
    async with asyncio.timeout(5):
        with pytest.raises(EOFError):
            while True:
                assert "result" not in await read_sse_event(stream)


async def test_a_token_revoked_on_another_instance_loses_its_open_stream_and_no_other_token_does(
    gateway, aiohttp_client, store
):
    """The revocation comes through the feed (the test's store is another client of the same Redis, like the CLI
    or another gateway); the token cache is off (token_cache_seconds: 0), the feed still runs."""
    await feed_subscribed(gateway)
    client = await aiohttp_client(gateway)
    revoked, other = await issue(store, gateway, "alpha"), await issue(store, gateway, "alpha")
    doomed = await open_slow_call(client, revoked, delay=30)
    assert (await read_sse_event(doomed))["method"] == "notifications/progress"
    kept = await open_slow_call(client, other, delay=0.5)
    assert await store.revoke_access_token(hash_token(revoked))
    await ends_without_a_result(doomed)
    async with asyncio.timeout(10):
        assert await tool_result_text(kept) == "done"
    assert await mcp_status(client, "/alpha/mcp", revoked) == 401  # the client signs in again / refreshes


async def test_revoking_a_grant_at_this_gateway_ends_its_get_stream(gateway, aiohttp_client, store, clock):
    """RFC 7009 at /revoke (a refresh token: its whole grant) ends the access token's standalone GET stream
    (2025-11-25 sessions) at once, through this process's own revocation listeners."""
    await add_user(store, "alice", PASSWORD, now=clock.now)
    client = await aiohttp_client(gateway)
    registered = await register(client)
    tokens = await obtain_tokens(client, gateway, registered["client_id"])
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    init = await client.post("/alpha/mcp", json=legacy_initialize(), headers={**ACCEPT, **bearer})
    assert init.status == 200
    session = {"Mcp-Session-Id": init.headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
    await init.read()
    done = await client.post(
        "/alpha/mcp",
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers={**ACCEPT, **bearer, **session},
    )
    assert done.status == 202
    stream = await client.get("/alpha/mcp", headers={"Accept": "text/event-stream", **bearer, **session})
    assert stream.status == 200 and stream.content_type == "text/event-stream"
    revoked = await post_form(
        client, "/revoke", {"token": tokens["refresh_token"], "client_id": registered["client_id"]}
    )
    assert revoked.status == 200
    async with asyncio.timeout(5):
        with pytest.raises(EOFError):
            while True:
                await read_sse_event(stream)


async def test_a_revocation_while_the_token_lookup_is_in_flight_still_ends_the_stream(
    aiohttp_server, aiohttp_client, upstream, redis_url, key_prefix, clock, store
):
    """The request is watched from before its store lookup: a revocation landing between Redis's answer (valid)
    and the stream's start is not missed."""
    port = free_port()
    own = await open_pausing_store(redis_url, key_prefix)
    try:
        server = await aiohttp_server(
            create_app(
                make_settings(port, redis_url, key_prefix, [route("alpha", upstream.url)]), clock=clock, store=own
            ),
            port=port,
        )
        client = await aiohttp_client(server)
        token = await issue(store, server, "alpha")
        own.pause_next_lookup()
        opening = asyncio.ensure_future(open_slow_call(client, token, delay=30))
        async with asyncio.timeout(5):
            await own.answered.wait()
        assert await own.revoke_access_token(hash_token(token))
        own.resume.set()
        async with asyncio.timeout(5):
            stream = await opening
        await ends_without_a_result(stream)
    finally:
        await own.close()
