"""Bearer token check for MCP routes (RFC 6750 §2.1, MCP authorization "Token Handling").

Header only (a token in the query string is never read); every request is checked: existence, revocation,
expiry, audience == this route's canonical resource, required scopes and the session's owner. Records come from
Redis or, for `store.token_cache_seconds`, from the per-process cache that revocations evict (token_cache).
"""

from __future__ import annotations

import re

from aiohttp import web

from gateway.access import allowed, rules_for
from gateway.app_state import CLOCK_KEY, SETTINGS_KEY, STORE_KEY, TOKEN_CACHE_KEY
from gateway.identity import RequestContext
from gateway.oauth.errors import InsufficientScopeError, InvalidTokenError
from gateway.oauth.resource import same_resource
from gateway.oauth.token_values import hash_token, token_id
from gateway.routing import RouteInfo
from gateway.store.records import SessionOwnerRecord

_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)  # RFC 6750 §2.1 b64token
SESSION_HEADER = "Mcp-Session-Id"


class PolicyDeniedError(Exception):
    """The route's access rules do not admit this principal (answered 403)."""


class SessionNotFoundError(Exception):
    """The request names an upstream session that belongs to another principal (answered 404)."""


def bearer_token(request: web.Request) -> str | None:
    """The presented bearer token; None when the request carries no Bearer credentials at all.

    Raises:
        InvalidTokenError: a Bearer header that is not a well-formed b64token.
    """
    header = request.headers.get("Authorization")
    if header is None or not header[:7].lower().startswith("bearer"):
        return None
    match = _BEARER.match(header)
    if match is None:
        raise InvalidTokenError("malformed bearer credentials")
    return match.group(1)


async def authenticate(request: web.Request, info: RouteInfo, token: str) -> RequestContext:
    """Check `token` for `info`'s route; on success return the principal.

    Raises:
        InvalidTokenError: unknown, expired, revoked, or issued for another resource (one answer for all).
        InsufficientScopeError: valid, but lacking a scope the route requires.
        PolicyDeniedError: the route's access rules do not admit this user.
        SessionNotFoundError: the Mcp-Session-Id belongs to someone else.
        StoreUnavailableError: Redis is unreachable (fail closed).
    """
    token_hash = hash_token(token)
    session_id = request.headers.get(SESSION_HEADER)
    now = request.app[CLOCK_KEY]()
    cache = request.app[TOKEN_CACHE_KEY]
    record = cache.get(token_hash)
    owner = cache.get_owner(session_id) if session_id is not None else None
    if record is None or (session_id is not None and owner is None):  # not cached: one Redis round trip
        ticket = cache.ticket()  # an eviction while the read is in flight wins over its put
        record, owner = await request.app[STORE_KEY].load_access_token_with_session(token_hash, session_id)
        if record is not None and record.usable(now):
            cache.put(token_hash, record, ticket)
        if owner is not None and session_id is not None:
            cache.put_owner(session_id, owner, ticket)
    if record is None or not record.usable(now) or not same_resource(record.resource, info.resource):
        raise InvalidTokenError("the access token is invalid, expired, revoked or for another resource")
    if not allowed(
        rules_for(request.app[SETTINGS_KEY], info.route),
        user_id=record.user_id,
        email=record.email,
        groups=record.groups,
    ):
        raise PolicyDeniedError()  # rules changed since the token was issued: effective on the next request
    missing = [s for s in info.route.required_scopes if s not in record.scopes]
    if missing:
        raise InsufficientScopeError(f"this resource needs scope {' '.join(info.route.required_scopes)}")
    if session_id is not None and (
        owner is None or not _same_owner(owner, record.user_id, record.client_id, info.route.name)
    ):
        raise SessionNotFoundError()  # another principal's session, or one the gateway never saw created
    context = RequestContext(token_id=token_id(token_hash), record=record)
    return context


def _same_owner(owner: SessionOwnerRecord, user_id: str, client_id: str, route: str) -> bool:
    return (owner.user_id, owner.client_id, owner.route) == (user_id, client_id, route)
