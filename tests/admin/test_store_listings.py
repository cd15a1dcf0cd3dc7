"""The store methods the admin listings added (gateway.store.grants, list_user_sessions, list_cimd_clients): bounded,
with a flag when cut, dropping index entries of what is gone, and the same on every store kind."""

from __future__ import annotations

import time

from gateway.oauth.token_values import hash_token
from gateway.store.records import (
    AccessTokenRecord,
    BrowserSessionRecord,
    ClientRecord,
    Principal,
    RefreshTokenRecord,
)
from gateway.store.redis import RedisStore


def refresh_record(grant_id: str, *, user: str = "local:alice", client: str = "app", now: float) -> RefreshTokenRecord:
    return RefreshTokenRecord(
        grant_id=grant_id,
        client_id=client,
        route="alpha",
        resource="https://gw.example/alpha/mcp",
        scopes=("alpha:read",),
        principal=Principal(user_id=user),
        issued_at=now,
        expires_at=now + 3600,
    )


def access_record(grant_id: str | None, *, client: str = "app", now: float) -> AccessTokenRecord:
    return AccessTokenRecord(
        user_id="local:alice",
        client_id=client,
        route="alpha",
        resource="https://gw.example/alpha/mcp",
        issued_at=now,
        expires_at=now + 600,
        grant_id=grant_id,
    )


async def test_a_users_grants_are_listed_up_to_a_limit_and_rotated_refresh_tokens_are_left_out(
    store: RedisStore,
) -> None:
    now = time.time()
    for i in range(3):
        await store.save_refresh_token(f"{i:064x}", refresh_record(f"g{i}", now=now), now=now)
    await store.save_access_token("a" * 64, access_record("g0", now=now), now=now)
    grants, truncated = await store.list_user_grants("local:alice", 10)
    assert ({g.grant_id for g in grants}, truncated) == ({"g0", "g1", "g2"}, False)
    (g0,) = [g for g in grants if g.grant_id == "g0"]
    assert [h for h, _ in g0.access] == ["a" * 64] and [h for h, _ in g0.refresh] == [f"{0:064x}"]
    assert (await store.list_user_grants("local:alice", 2))[1] is True

    await store.save_refresh_token(hash_token("rt-one"), refresh_record("g9", now=now), now=now)
    rotation = await store.rotate_refresh_token("rt-one", "rt-two", now=now, ttl=3600, grace=0)
    assert rotation.outcome == "rotated"
    (g9,) = await store.load_grants(["g9"])
    assert [h for h, _ in g9.refresh] == [hash_token("rt-two")]  # the rotated one is kept only to detect reuse
    await store.revoke_grant("g2")
    (g2,) = await store.load_grants(["g2"])
    assert g2.revoked and (await store.load_grants(["no-such-grant"])) == []


async def test_a_clients_tokens_are_found_by_scanning_and_bounded(store: RedisStore) -> None:
    now = time.time()
    await store.save_refresh_token("1" * 64, refresh_record("g1", now=now), now=now)
    await store.save_access_token("2" * 64, access_record("g1", now=now), now=now)
    await store.save_access_token("3" * 64, access_record(None, now=now), now=now)
    await store.save_access_token("4" * 64, access_record(None, client="other", now=now), now=now)
    grants, truncated = await store.list_client_tokens("app", 10)
    assert not truncated and sorted((g.grant_id or "-", len(g.access), len(g.refresh)) for g in grants) == [
        ("-", 1, 0),
        ("g1", 1, 1),
    ]
    assert (await store.list_client_tokens("app", 1))[1] is True
    assert await store.find_refresh_token_hashes("1111") == ["1" * 64]
    assert await store.find_refresh_token_hashes("not-hex") == []


async def test_login_sessions_and_cached_metadata_documents_are_listed(store: RedisStore) -> None:
    now = time.time()
    session = BrowserSessionRecord(csrf="c", principal=Principal(user_id="local:alice"), created_at=now)
    await store.save_browser_session("s1", session, 3600, max_age=86400)
    await store.save_browser_session("s2", session, 3600, max_age=86400)
    await store.delete_browser_session("s2")
    assert [h for h, _ in await store.list_user_sessions("local:alice")] == ["s1"]
    document = ClientRecord(client_id="https://app.example/client.json", kind="cimd", redirect_uris=("https://a/cb",))
    await store.save_cimd(document.client_id, document, 60)
    assert [c.client_id for c in await store.list_cimd_clients()] == [document.client_id]
