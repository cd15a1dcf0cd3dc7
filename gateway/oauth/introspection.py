"""Token introspection (RFC 7662 §2), without HTTP: gateway.web.oauth authenticates the caller (HTTP Basic,
`oauth.introspection`) and renders the answer.

One answer, `{"active": false}`, for unknown, expired, revoked and rotated tokens (§2.2: say nothing more about
an inactive token)."""

from __future__ import annotations

from typing import Any

from gateway.oauth.errors import InvalidRequestError
from gateway.oauth.token_values import hash_token
from gateway.store.base import TokenStore
from gateway.store.records import AccessTokenRecord, RefreshTokenRecord

INACTIVE: dict[str, Any] = {"active": False}


async def introspect(store: TokenStore, token: str | None, *, now: float) -> dict[str, Any]:
    """The RFC 7662 §2.2 response for `token`: its claims while it is usable, else INACTIVE.

    Raises:
        InvalidRequestError: no token given.
    """
    if not token:
        raise InvalidRequestError("token is required")
    token_hash = hash_token(token)
    access = await store.load_access_token(token_hash)
    if access is not None and access.usable(now):
        return describe(access)
    refresh = await store.load_refresh_token(token_hash)
    if refresh is not None and refresh.rotated_at is None and now < refresh.expires_at:
        return describe(refresh)
    return dict(INACTIVE)


def describe(record: AccessTokenRecord | RefreshTokenRecord) -> dict[str, Any]:
    """An active token's claims (RFC 7662 §2.2); `aud` is the one resource it is bound to (RFC 8707); a DPoP-bound
    one says so (RFC 9449 §6.2: `token_type` DPoP, `cnf.jkt`)."""
    user_id = record.user_id if isinstance(record, AccessTokenRecord) else record.principal.user_id
    kind = ("DPoP" if record.cnf_jkt else "Bearer") if isinstance(record, AccessTokenRecord) else "refresh_token"
    claims: dict[str, Any] = {"cnf": {"jkt": record.cnf_jkt}} if record.cnf_jkt else {}
    return {
        **claims,
        "active": True,
        "token_type": kind,
        "scope": " ".join(record.scopes),
        "client_id": record.client_id,
        "sub": user_id,
        "aud": record.resource,
        "iat": int(record.issued_at),
        "exp": int(record.expires_at),
    }
