"""Token revocation (RFC 7009 §2.1), without HTTP: gateway.web.oauth authenticates the client and answers 200.

The endpoint says nothing about what it found (§2.2: 200 whether or not the token existed), and another client's
token does not exist for this client: only the owning client's tokens are revoked. `token_type_hint` is not
needed: a value is looked up as both kinds (§2.1 lets the server extend its search)."""

from __future__ import annotations

from typing import Literal

from gateway.oauth.errors import InvalidRequestError
from gateway.oauth.token_values import hash_token
from gateway.store.base import TokenStore
from gateway.store.records import ClientRecord

RevokedKind = Literal["refresh_token", "access_token", "unknown"]


async def revoke(store: TokenStore, client: ClientRecord, token: str | None) -> RevokedKind:
    """Revoke `token` if `client` owns it; which kind it was, for the audit log only (never for the answer).

    A refresh token takes every token of its grant with it (RFC 7009 §2.1); tokens are marked revoked, not
    deleted, so a replayed one is refused like an unknown one.

    Raises:
        InvalidRequestError: no token given.
    """
    if not token:
        raise InvalidRequestError("token is required")
    token_hash = hash_token(token)
    refresh = await store.load_refresh_token(token_hash)
    owns_refresh = refresh is not None and refresh.client_id == client.client_id
    if owns_refresh:
        await store.revoke_refresh_token(token_hash)  # and every token of its grant (RFC 7009 §2.1)
    access = await store.load_access_token(token_hash)
    owns_access = access is not None and access.client_id == client.client_id
    if owns_access:
        await store.revoke_access_token(token_hash)
    return "refresh_token" if owns_refresh else "access_token" if owns_access else "unknown"
