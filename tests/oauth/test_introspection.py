"""gateway.oauth.introspection without HTTP (RFC 7662 §2.2), on a real store; the endpoint (caller credentials,
404 when not configured) is pinned in tests/web/test_token.py."""

from __future__ import annotations

import pytest

from gateway.oauth.errors import InvalidRequestError
from gateway.oauth.introspection import introspect
from gateway.oauth.token_values import hash_token
from gateway.store.redis import RedisStore
from tests.oauth.test_revocation import NOW, RESOURCE, access, refresh


@pytest.mark.parametrize("token", [None, ""])
async def test_a_missing_token_is_invalid_request(store: RedisStore, token: str | None) -> None:
    """RFC 7662 §2.1: `token` is REQUIRED."""
    with pytest.raises(InvalidRequestError):
        await introspect(store, token, now=NOW)


async def test_an_active_access_token_is_described(store: RedisStore) -> None:
    """RFC 7662 §2.2; `aud` is the token's one resource (RFC 8707)."""
    await store.save_access_token(hash_token("at-value"), access(scopes=("alpha:read",)), now=NOW)
    assert await introspect(store, "at-value", now=NOW + 1) == {
        "active": True,
        "token_type": "Bearer",
        "scope": "alpha:read",
        "client_id": "client-1",
        "sub": "local:alice",
        "aud": RESOURCE,
        "iat": int(NOW),
        "exp": int(NOW + 3600),
    }


async def test_an_active_refresh_token_is_described(store: RedisStore) -> None:
    await store.save_refresh_token(hash_token("rt-value"), refresh(), now=NOW)
    described = await introspect(store, "rt-value", now=NOW + 1)
    assert described["active"] is True
    assert (described["token_type"], described["sub"], described["aud"]) == ("refresh_token", "local:alice", RESOURCE)


@pytest.mark.parametrize("case", ["unknown", "expired", "revoked"])
async def test_an_unusable_token_is_only_inactive(store: RedisStore, case: str) -> None:
    """RFC 7662 §2.2: nothing but `active: false` for a token that is not active, whatever the reason."""
    if case != "unknown":
        await store.save_access_token(hash_token("at-value"), access(), now=NOW)
    if case == "revoked":
        await store.revoke_access_token(hash_token("at-value"))
    now = NOW + 7200 if case == "expired" else NOW + 1
    assert await introspect(store, "at-value", now=now) == {"active": False}
