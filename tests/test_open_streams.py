"""Open streams by token (gateway/open_streams.py, issue 10 #16), with the real store: what the revocation feed
could not deliver (published while it was not subscribed) is caught when it (re)subscribes."""

from __future__ import annotations

import asyncio

from gateway.accounts import add_user, issue_service_token
from gateway.config import Settings
from gateway.oauth.token_values import hash_token
from gateway.open_streams import OpenStreams
from gateway.routing import RouteTable
from gateway.token_cache import TokenCache, follow_revocations

SETTINGS = Settings(
    public_url="https://gw.example.com",
    routes=[{"name": "alpha", "path": "/alpha/mcp", "upstream": "http://127.0.0.1:9/mcp"}],
)


async def a_token(store, clock, ttl: int = 3600) -> str:
    if await store.load_user("alice") is None:
        await add_user(store, "alice", "correct-horse-battery", now=clock.now)
    info = RouteTable(SETTINGS).by_name("alpha")
    return hash_token((await issue_service_token(store, "alice", info, (), ttl, now=clock.now)).token)


async def test_a_revocation_published_before_the_feed_subscribed_still_ends_the_stream(store, clock):
    """The token is revoked while nothing listens (no listener, no subscription): the feed's first subscription
    re-reads the open streams' tokens and ends this one; the other token's watch stays."""
    streams, cache, stop = OpenStreams(), TokenCache(0), asyncio.Event()
    revoked, live = await a_token(store, clock), await a_token(store, clock)
    doomed, kept = streams.watch(revoked), streams.watch(live)
    assert await store.revoke_access_token(revoked)
    follower = asyncio.ensure_future(follow_revocations(store, stop, cache, streams, clock))
    try:
        async with asyncio.timeout(5):
            await doomed.ended.wait()
        assert doomed.reason == "revoked" and not kept.ended.is_set()
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await follower
    doomed.release()
    kept.release()
    assert len(streams) == 0


async def test_an_expiry_timer_ends_the_watch_and_release_cancels_it(clock):
    streams = OpenStreams()
    first, second = streams.watch("a" * 64), streams.watch("a" * 64)
    first.expire_in(0)
    second.expire_in(3600)
    async with asyncio.timeout(5):
        await first.ended.wait()
    assert first.reason == "expired" and not second.ended.is_set()
    second.release()
    first.release()
    assert len(streams) == 0 and streams.token_hashes() == []
