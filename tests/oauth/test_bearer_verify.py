"""gateway.oauth.bearer.verify_token on a real store: what it keeps with a cached token (the route's verdict and
principal) never outlives an eviction, and what changes per request (expiry, the session's owner) is checked on
every request, cached or not."""

from __future__ import annotations

import time

import pytest

from gateway.access import rules_for
from gateway.accounts import add_user, issue_service_token
from gateway.oauth.bearer import SessionNotFoundError, bearer_token, verify_token
from gateway.oauth.errors import InvalidTokenError
from gateway.oauth.token_values import hash_token
from gateway.routing import RouteTable
from gateway.store.records import SessionOwnerRecord
from gateway.token_cache import TokenCache
from tests.conftest import make_settings, route


@pytest.fixture
async def table(redis_url: str, key_prefix: str, store) -> RouteTable:
    routes = [route("alpha", "http://127.0.0.1:9/mcp"), route("beta", "http://127.0.0.1:9/mcp")]
    settings = make_settings(8000, redis_url, key_prefix, routes)
    table = RouteTable(settings)
    table.settings = settings  # type: ignore[attr-defined]  (kept beside it for the rules)
    await add_user(store, "alice", "correct-horse-battery", email="alice@example.com", groups=(), now=time.time())
    return table


def live_cache(seconds: float = 30) -> TokenCache:
    cache = TokenCache(seconds)
    cache.connected = True  # (as while the revocation feed is subscribed)
    return cache


async def verify(table: RouteTable, store, cache: TokenCache, token: str, name: str = "alpha", **kwargs):
    info = table.by_name(name)
    options = {"session_id": None, "now": time.time(), **kwargs}
    rules = rules_for(table.settings, info.route)  # type: ignore[attr-defined]
    return await verify_token(hash_token(token), info, rules=rules, cache=cache, store=store, **options)


async def test_a_cached_tokens_grant_is_reused_until_the_token_is_evicted(table, store):
    token = (await issue_service_token(store, "alice", table.by_name("alpha"), (), 3600, now=time.time())).token
    cache = live_cache()
    first = await verify(table, store, cache, token)
    assert await verify(table, store, cache, token) is first  # worked out once
    await store.revoke_access_token(hash_token(token))
    assert await verify(table, store, cache, token) is first  # (until the feed's eviction arrives)
    cache.evict(hash_token(token))
    with pytest.raises(InvalidTokenError):
        await verify(table, store, cache, token)


async def test_expiry_is_checked_on_every_request_even_with_a_cached_grant(table, store):
    token = (await issue_service_token(store, "alice", table.by_name("alpha"), (), 60, now=time.time())).token
    cache = live_cache(3600)
    await verify(table, store, cache, token)
    with pytest.raises(InvalidTokenError):
        await verify(table, store, cache, token, now=time.time() + 61)


async def test_a_grant_is_per_route_and_another_routes_audience_is_refused(table, store):
    token = (await issue_service_token(store, "alice", table.by_name("alpha"), (), 3600, now=time.time())).token
    cache = live_cache()
    await verify(table, store, cache, token, "alpha")
    for _ in range(2):  # refused every time: a refusal is never kept as a grant
        with pytest.raises(InvalidTokenError):
            await verify(table, store, cache, token, "beta")


async def test_the_session_owner_is_checked_on_every_request_with_a_cached_grant(table, store):
    token = (await issue_service_token(store, "alice", table.by_name("alpha"), (), 3600, now=time.time())).token
    cache = live_cache()
    grant = await verify(table, store, cache, token)
    record = grant.context.record
    mine = SessionOwnerRecord(user_id=record.user_id, client_id=record.client_id, route="alpha")
    theirs = SessionOwnerRecord(user_id="local:mallory", client_id=record.client_id, route="alpha")
    await store.save_session_owner("session-mine", mine, 600)
    await store.save_session_owner("session-theirs", theirs, 600)
    assert await verify(table, store, cache, token, session_id="session-mine") is grant
    for _ in range(2):
        with pytest.raises(SessionNotFoundError):
            await verify(table, store, cache, token, session_id="session-theirs")
    with pytest.raises(SessionNotFoundError):
        await verify(table, store, cache, token, session_id="never-created")


async def test_without_the_cache_every_request_reads_the_store(table, store):
    token = (await issue_service_token(store, "alice", table.by_name("alpha"), (), 3600, now=time.time())).token
    cache = live_cache(0)
    first = await verify(table, store, cache, token)
    assert await verify(table, store, cache, token) is not first
    await store.revoke_access_token(hash_token(token))
    with pytest.raises(InvalidTokenError):
        await verify(table, store, cache, token)


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("Basic YTpi", None), ("Bearer abc.DEF-_~+/==", "abc.DEF-_~+/=="), ("bearer  tok ", "tok")],
)
def test_bearer_token_reads_the_header_form_only(header, expected):
    assert bearer_token(header) == expected


@pytest.mark.parametrize("header", ["Bearer ###", "Bearer", "Bearer a b", "Bearer \x00"])
def test_a_malformed_bearer_header_is_an_invalid_token(header):
    with pytest.raises(InvalidTokenError):
        bearer_token(header)
