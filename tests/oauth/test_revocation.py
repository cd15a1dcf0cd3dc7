"""gateway.oauth.revocation without HTTP (RFC 7009 §2.1, §2.2), on a real store; the endpoint's answers are pinned
in tests/web/test_token.py."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.oauth.errors import InvalidRequestError
from gateway.oauth.revocation import revoke
from gateway.oauth.token_values import hash_token
from gateway.store.records import AccessTokenRecord, ClientRecord, Principal, RefreshTokenRecord
from gateway.store.redis import RedisStore

NOW = 1_800_000_000.0
RESOURCE = "http://127.0.0.1:8080/alpha/mcp"
OWNER = ClientRecord(client_id="client-1", kind="dcr", redirect_uris=("http://127.0.0.1/cb",))
OTHER = ClientRecord(client_id="client-2", kind="dcr", redirect_uris=("http://127.0.0.1/cb",))


def access(**extra: Any) -> AccessTokenRecord:
    fields: dict[str, Any] = {
        "user_id": "local:alice",
        "client_id": OWNER.client_id,
        "route": "alpha",
        "resource": RESOURCE,
        "issued_at": NOW,
        "expires_at": NOW + 3600,
        "grant_id": "grant-1",
    }
    return AccessTokenRecord(**(fields | extra))


def refresh() -> RefreshTokenRecord:
    return RefreshTokenRecord(
        grant_id="grant-1",
        client_id=OWNER.client_id,
        route="alpha",
        resource=RESOURCE,
        scopes=("alpha:read",),
        principal=Principal(user_id="local:alice"),
        issued_at=NOW,
        expires_at=NOW + 86400,
    )


@pytest.mark.parametrize("token", [None, ""])
async def test_a_missing_token_is_invalid_request(store: RedisStore, token: str | None) -> None:
    """RFC 7009 §2.1: `token` is REQUIRED."""
    with pytest.raises(InvalidRequestError):
        await revoke(store, OWNER, token)


@pytest.mark.parametrize(
    ("client", "kind", "revoked"),
    [(OWNER, "access_token", True), (OTHER, "unknown", False)],
    ids=["owner", "another-client"],
)
async def test_an_access_token_is_revoked_only_for_its_client(
    store: RedisStore, client: ClientRecord, kind: str, revoked: bool
) -> None:
    """RFC 7009 §2.1: the server verifies the token was issued to the client; another client's token does not
    exist for it (style guide: pretend it doesn't exist)."""
    await store.save_access_token(hash_token("at-value"), access(), now=NOW)
    assert await revoke(store, client, "at-value") == kind
    record = await store.load_access_token(hash_token("at-value"))
    assert record is not None and record.revoked is revoked


async def test_a_refresh_token_takes_its_grants_access_tokens_with_it(store: RedisStore) -> None:
    """RFC 7009 §2.1: revoking a refresh token SHOULD also invalidate the access tokens of the same grant."""
    await store.save_refresh_token(hash_token("rt-value"), refresh(), now=NOW)
    await store.save_access_token(hash_token("at-value"), access(), now=NOW)
    assert await revoke(store, OWNER, "rt-value") == "refresh_token"
    record = await store.load_access_token(hash_token("at-value"))
    assert record is not None and not record.usable(NOW)


async def test_an_unknown_token_is_no_error(store: RedisStore) -> None:
    """RFC 7009 §2.2: an invalid token is not an error (the endpoint answers 200 either way)."""
    assert await revoke(store, OWNER, "never-issued") == "unknown"
