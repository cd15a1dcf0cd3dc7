"""RedisStore beyond the seams' contract (tests/store/test_contract.py): key layout and TTLs, listings, what never
reaches Redis, an unreachable Redis, the embedded server's persistence; on every store kind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.accounts import issue_service_token
from gateway.oauth.token_values import hash_token, new_access_token, token_id
from gateway.passwords import hash_password
from gateway.routing import RouteTable
from gateway.store.embedded import start_embedded
from gateway.store.errors import StoreUnavailableError
from gateway.store.records import AccessTokenRecord, SessionOwnerRecord, UserRecord
from gateway.store.redis import RedisStore
from gateway.store.redis_base import GC_GRACE_SECONDS
from tests.conftest import make_settings
from tests.support.processes import free_port
from tests.support.redis_cluster import raw_client as cluster_aware_client

NOW = 1_800_000_000.0


def access_token(user_id: str = "local:alice", **extra: Any) -> AccessTokenRecord:
    fields: dict[str, Any] = {
        "user_id": user_id,
        "email": "alice@example.com",
        "preferred_username": "alice",
        "groups": ("dev",),
        "client_id": "client-1",
        "route": "alpha",
        "resource": "http://127.0.0.1:8080/alpha/mcp",
        "scopes": ("alpha:read",),
        "issued_at": NOW,
        "expires_at": NOW + 3600,
    }
    return AccessTokenRecord(**(fields | extra))


def user(name: str, **extra: Any) -> UserRecord:
    return UserRecord(**({"name": name, "password_hash": "$argon2id$placeholder", "created_at": NOW} | extra))


async def raw_client(redis_url: str) -> Any:
    return cluster_aware_client(redis_url)


# -- access tokens ------------------------------------------------------------------------------------------


async def test_token_keys_get_a_redis_ttl_past_expiry(store: RedisStore, redis_url: str) -> None:
    """Style guide: Redis TTL is garbage collection only, set a grace period past the token's expiry."""
    token_hash = hash_token(new_access_token())
    now = time.time()
    await store.save_access_token(token_hash, access_token(issued_at=now, expires_at=now + 600), now=now)
    await store.revoke_access_token(token_hash)  # keepttl: revocation does not make it immortal
    client = await raw_client(redis_url)
    try:
        ttl = await client.ttl(store.key("at", token_hash))
    finally:
        await client.aclose()
    assert 600 < ttl <= 600 + GC_GRACE_SECONDS + 1


async def test_list_access_tokens_returns_only_that_users_tokens(store: RedisStore) -> None:
    """Contract: `tokens list --user` sees the user's tokens (hash, record) and nobody else's."""
    alice = sorted(hash_token(new_access_token()) for _ in range(3))
    bob = hash_token(new_access_token())
    for token_hash in alice:
        await store.save_access_token(token_hash, access_token("local:alice"), now=NOW)
    await store.save_access_token(bob, access_token("local:bob"), now=NOW)
    listed = await store.list_access_tokens("local:alice")
    assert sorted(h for h, _ in listed) == alice
    assert all(record.user_id == "local:alice" for _, record in listed)
    assert [h for h, _ in await store.list_access_tokens("local:bob")] == [bob]
    assert await store.list_access_tokens("local:nobody") == []


async def test_list_access_tokens_drops_index_entries_whose_token_is_gone(store: RedisStore, redis_url: str) -> None:
    """Our choice: a token key expired by TTL also leaves the per-user index on the next listing."""
    kept, gone = hash_token(new_access_token()), hash_token(new_access_token())
    await store.save_access_token(kept, access_token(), now=NOW)
    await store.save_access_token(gone, access_token(), now=NOW)
    client = await raw_client(redis_url)
    try:
        await client.delete(store.key("at", gone))  # what TTL expiry does
        assert [h for h, _ in await store.list_access_tokens("local:alice")] == [kept]
        assert await client.smembers(store.key("user-at", "local:alice")) == {kept}
    finally:
        await client.aclose()


async def test_find_access_token_hashes_matches_an_id_prefix(store: RedisStore) -> None:
    """Contract: `tokens revoke --id` finds a token by the 8-hex id `tokens list` shows (or a longer prefix)."""
    hashes = [hash_token(new_access_token()) for _ in range(3)]
    for token_hash in hashes:
        await store.save_access_token(token_hash, access_token(), now=NOW)
    for token_hash in hashes:
        assert await store.find_access_token_hashes(token_id(token_hash)) == [token_hash]
        assert await store.find_access_token_hashes(token_hash) == [token_hash]
    assert await store.find_access_token_hashes(hash_token("never-issued")[:8]) == []


@pytest.mark.parametrize("query", ["", "*", "zzzzzzzz", "ab*", "a?", "[a-f]", "12 34", "..", "at:"])
async def test_find_access_token_hashes_rejects_non_hex_input(store: RedisStore, query: str) -> None:
    """Our choice: only lowercase hex reaches SCAN MATCH, so glob characters cannot select every token."""
    await store.save_access_token(hash_token(new_access_token()), access_token(), now=NOW)
    assert await store.find_access_token_hashes(query) == []


async def test_raw_token_and_session_id_never_appear_in_redis(
    store: RedisStore, redis_url: str, key_prefix: str
) -> None:
    """RFC 9700 §4.14 / style guide: never store raw tokens; Redis keys hold sha256 only."""
    settings = make_settings(
        8080,
        redis_url,
        key_prefix,
        [{"name": "alpha", "path": "/alpha/mcp", "upstream": "http://127.0.0.1:9/mcp", "scopes": ["alpha:read"]}],
    )
    info = RouteTable(settings).by_name("alpha")
    await store.save_user(user("alice", password_hash=hash_password("correct horse")))
    issued = await issue_service_token(store, "alice", info, (), 3600, now=time.time())
    session_id = "session-" + new_access_token()
    await store.save_session_owner(
        session_id, SessionOwnerRecord(user_id="local:alice", client_id="c", route="alpha"), ttl=60
    )
    client = await raw_client(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{key_prefix}:*", count=1000)]
        dump = []
        for key in keys:
            kind = await client.type(key)
            value = await client.smembers(key) if kind == "set" else await client.get(key)
            dump.append(f"{key} {value}")
    finally:
        await client.aclose()
    assert store.key("at", hash_token(issued.token)) in keys
    text = "\n".join(dump)
    for secret in (issued.token, issued.token[len("mcpgw_at_") :], session_id, "correct horse"):
        assert secret not in text


# -- availability -------------------------------------------------------------------------------------------


async def test_unreachable_redis_raises_store_unavailable_quickly() -> None:
    """Style guide: Redis down means 503 and fail closed, within the configured timeout."""
    store = RedisStore.from_url(f"redis://127.0.0.1:{free_port()}/0", "mcpgw-test-down", timeout=0.5)
    try:
        async with asyncio.timeout(5):
            with pytest.raises(StoreUnavailableError):
                await store.ping()
            with pytest.raises(StoreUnavailableError):
                await store.load_access_token(hash_token("x"))
    finally:
        await store.close()


async def test_embedded_store_persists_across_a_restart(tmp_path: Path) -> None:
    """docs/contract.md: omit store.url -> embedded Redis persisted under data_dir."""
    record = user("alice", email="alice@example.com")
    embedded = await asyncio.to_thread(start_embedded, tmp_path)
    try:
        store = RedisStore.from_url(embedded.url, "mcpgw", timeout=2.0)
        await store.save_user(record)
        await store.close()
    finally:
        await asyncio.to_thread(embedded.stop)

    embedded = await asyncio.to_thread(start_embedded, tmp_path)
    try:
        store = RedisStore.from_url(embedded.url, "mcpgw", timeout=2.0)
        try:
            assert await store.load_user("alice") == record
            assert await store.list_users() == [record]
        finally:
            await store.close()
    finally:
        await asyncio.to_thread(embedded.stop)
