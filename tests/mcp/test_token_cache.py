"""Validated tokens are cached per process; a revocation reaches every instance within a second (pub/sub)."""

from __future__ import annotations

import asyncio

from gateway.app import create_app
from gateway.keys import TOKEN_CACHE_KEY
from gateway.oauth.tokens import hash_token
from gateway.ports import free_port
from tests.conftest import make_settings, route
from tests.support.token_flow import mcp_status
from tests.support.tokens import issue


async def test_revocation_on_one_instance_reaches_the_others_cache_within_a_second(
        aiohttp_server, aiohttp_client, upstream, redis_url, key_prefix, clock, store):
    port = free_port()
    settings = make_settings(port, redis_url, key_prefix, [route("alpha", upstream.url)],
                             store={"url": redis_url, "key_prefix": key_prefix, "token_cache_seconds": 30})
    first = await aiohttp_server(create_app(settings, clock=clock), port=port)
    second = await aiohttp_server(create_app(settings, clock=clock), port=free_port())
    token = await issue(store, first, "alpha")
    client = await aiohttp_client(second)
    async with asyncio.timeout(5):  # the revocation feed is subscribed shortly after start
        while not second.app[TOKEN_CACHE_KEY].connected:
            await asyncio.sleep(0.01)
    assert await mcp_status(client, "/alpha/mcp", token) == 200
    assert second.app[TOKEN_CACHE_KEY].get(hash_token(token)) is not None  # now served from memory

    assert await store.revoke_access_token(hash_token(token))  # revoked elsewhere (another process)
    async with asyncio.timeout(1):  # the issue's bound: all instances within 1 s
        while await mcp_status(client, "/alpha/mcp", token) != 401:
            await asyncio.sleep(0.01)
