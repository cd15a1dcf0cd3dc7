"""Bearer token validation at a protected resource (RFC 6750 §2.1, §3.1; RFC 8707 audience; MCP authorization
"Token Handling"), free of any web framework.

Header only (a token in the query string is never read); every request is checked: existence, revocation, expiry,
audience == the route's canonical resource, the route's access rules, required scopes and the session's owner.
Records come from the store or, for `store.token_cache_seconds`, from the per-process cache that revocations evict
(gateway.token_cache). What follows from a token for one route (the access rules' verdict, the scope check, the
principal and its identity header values, the SSE event-id binding) is worked out once and kept with the cached
token as a `Grant`: an eviction drops both, and expiry and the session owner are checked on every request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.access import allowed
from gateway.config import AllowRules
from gateway.identity import RequestContext
from gateway.mcp.event_ids import EventIdBinding
from gateway.oauth.errors import InsufficientScopeError, InvalidTokenError
from gateway.oauth.resource import same_resource
from gateway.oauth.token_values import token_id
from gateway.routing import RouteInfo
from gateway.store.base import TokenStore
from gateway.store.records import AccessTokenRecord, SessionOwnerRecord
from gateway.token_cache import TokenCache

_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)  # RFC 6750 §2.1 b64token
_DPOP = re.compile(r"^DPoP +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)  # RFC 9449 §7.1: the same token68


class PolicyDeniedError(Exception):
    """The route's access rules do not admit this principal (answered 403)."""


class SessionNotFoundError(Exception):
    """The request names an upstream session that belongs to another principal (answered 404)."""


@dataclass(slots=True)
class Grant:
    """What one valid token may do on one route; kept with the cached token (see the module docstring)."""

    context: RequestContext
    event_ids: EventIdBinding | None = None  # filled in by the first request that needs it


def bearer_token(authorization: str | None) -> str | None:
    """The token in an `Authorization` header value; None when it carries no Bearer credentials at all.

    Raises:
        InvalidTokenError: a Bearer header that is not a well-formed b64token.
    """
    if authorization is None or not authorization[:7].lower().startswith("bearer"):
        return None
    match = _BEARER.match(authorization)
    if match is None:
        raise InvalidTokenError("malformed bearer credentials")
    return match.group(1)


def access_token(authorization: str | None) -> tuple[str, bool] | None:
    """(token, whether it came with the DPoP scheme) from an `Authorization` header value; None without either
    scheme.

    Raises:
        InvalidTokenError: a Bearer or DPoP header that is not a well-formed token68.
    """
    if authorization is not None and authorization[:4].lower() == "dpop":
        match = _DPOP.match(authorization)
        if match is None:
            raise InvalidTokenError("malformed DPoP credentials")
        return match.group(1), True
    token = bearer_token(authorization)
    return (token, False) if token is not None else None


async def verify_token(
    token_hash: str,
    info: RouteInfo,
    *,
    session_id: str | None,
    now: float,
    rules: AllowRules,
    cache: TokenCache,
    store: TokenStore,
) -> Grant:
    """Check the token whose hash is `token_hash` for `info`'s route; on success its `Grant` there.

    Raises:
        InvalidTokenError: unknown, expired, revoked, or issued for another resource (one answer for all).
        InsufficientScopeError: valid, but lacking a scope the route requires.
        PolicyDeniedError: the route's access rules do not admit this user.
        SessionNotFoundError: the Mcp-Session-Id belongs to someone else.
        StoreUnavailableError: the store is unreachable (fail closed).
    """
    cached = cache.get(token_hash)
    owner = cache.get_owner(session_id) if session_id is not None else None
    record = cached.record if cached is not None else None
    if record is None or (session_id is not None and owner is None):  # not cached: one store round trip
        ticket = cache.ticket()  # an eviction while the read is in flight wins over its put
        record, owner = await store.load_access_token_with_session(token_hash, session_id)
        if cached is None and record is not None and record.usable(now):
            cached = cache.put(token_hash, record, ticket)
        if owner is not None and session_id is not None:
            cache.put_owner(session_id, owner, ticket)
    if record is None or not record.usable(now):  # (a fresh read saying revoked wins over the cached copy)
        raise InvalidTokenError("the access token is invalid, expired, revoked or for another resource")
    grant = cached.grants.get(info.route.name) if cached is not None else None
    if grant is None:
        grant = _grant(token_hash, record, info, rules)
        if cached is not None:  # (the same token: every field but `revoked` is fixed at issue)
            cached.grants[info.route.name] = grant
    if session_id is not None and (owner is None or not _owns(owner, record, info.route.name)):
        raise SessionNotFoundError()  # another principal's session, or one the gateway never saw created
    return grant


def _owns(owner: SessionOwnerRecord, record: AccessTokenRecord, route: str) -> bool:
    return (owner.user_id, owner.client_id, owner.route) == (record.user_id, record.client_id, route)


def _grant(token_hash: str, record: AccessTokenRecord, info: RouteInfo, rules: AllowRules) -> Grant:
    """The checks that depend only on the token and the route (the settings do not change while a process runs)."""
    if not same_resource(record.resource, info.resource):
        raise InvalidTokenError("the access token is invalid, expired, revoked or for another resource")
    if not allowed(rules, user_id=record.user_id, email=record.email, groups=record.groups):
        raise PolicyDeniedError()  # rules changed since the token was issued: effective on the next request
    if any(s not in record.scopes for s in info.route.required_scopes):
        raise InsufficientScopeError(f"this resource needs scope {' '.join(info.route.required_scopes)}")
    return Grant(RequestContext(token_id=token_id(token_hash), record=record))
