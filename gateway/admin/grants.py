"""Grants and tokens: list them by user or by client, revoke one grant or token, revoke all of a user's access,
and the service tokens of `tokens issue`.

A grant is one authorization (a refresh-token family) with the access tokens issued under it; a token issued
outside any grant (`tokens issue`) is listed as a grant of its own without a `grant_id`.
"""

from __future__ import annotations

import re

from gateway import accounts
from gateway.accounts import AccountError, IssuedToken
from gateway.admin.errors import bad_request, conflict, not_found
from gateway.admin.users import resolve_user_id
from gateway.admin.views import MAX_LISTED, GrantList, GrantView, Revocation, TokenState, TokenView, UserRevocation
from gateway.config import Settings
from gateway.oauth.token_values import hash_token, token_id
from gateway.routing import RouteTable
from gateway.store.base import Store
from gateway.store.records import AccessTokenRecord, GrantTokens, RefreshTokenRecord

TOKEN_ID = re.compile(r"^[0-9a-f]{1,64}$")  # (a prefix; more than one match is refused)
GRANT_ID = re.compile(r"^[0-9a-f]{32}$")
EVERY_GRANT = 1_000_000  # revoking all of a user's access reads every grant of theirs, not a page


def _access_state(record: AccessTokenRecord, now: float) -> TokenState:
    return "revoked" if record.revoked else "active" if record.usable(now) else "expired"


def access_view(token_hash: str, record: AccessTokenRecord, now: float) -> TokenView:
    state = _access_state(record, now)
    return TokenView(
        token_id(token_hash),
        "access",
        record.grant_id,
        record.user_id,
        record.client_id,
        record.route,
        list(record.scopes),
        state,
        record.issued_at,
        record.expires_at,
    )


def _refresh_view(token_hash: str, record: RefreshTokenRecord, revoked: bool, now: float) -> TokenView:
    state: TokenState = "revoked" if revoked else "active" if now < record.expires_at else "expired"
    return TokenView(
        token_id(token_hash),
        "refresh",
        record.grant_id,
        record.principal.user_id,
        record.client_id,
        record.route,
        list(record.scopes),
        state,
        record.issued_at,
        record.expires_at,
    )


def grant_view(grant: GrantTokens, now: float) -> GrantView:
    tokens = [_refresh_view(h, r, grant.revoked, now) for h, r in grant.refresh]
    tokens += [access_view(h, r, now) for h, r in sorted(grant.access, key=lambda item: item[1].issued_at)]
    if grant.refresh:
        head = grant.refresh[0][1]
        user_id, resource, expires_at = head.principal.user_id, head.resource, head.expires_at
        client_id, route, scopes = head.client_id, head.route, head.scopes
    else:
        last = max((r for _, r in grant.access), key=lambda r: r.issued_at)
        user_id, resource, expires_at = last.user_id, last.resource, last.expires_at
        client_id, route, scopes = last.client_id, last.route, last.scopes
    states = {t.state for t in tokens}
    state: TokenState = "revoked" if grant.revoked or states == {"revoked"} else "active"
    if state == "active" and "active" not in states:
        state = "expired"
    issued_at = min(t.issued_at for t in tokens)
    return GrantView(
        grant.grant_id, user_id, client_id, route, resource, list(scopes), state, issued_at, expires_at, tokens
    )


async def _user_grants(store: Store, user_id: str, limit: int) -> tuple[list[GrantTokens], bool]:
    """The user's grants from their index, those only their access tokens name (older than the index), and their
    tokens outside any grant."""
    indexed, more = await store.list_user_grants(user_id, limit)
    known = {g.grant_id for g in indexed}
    tokens = await store.list_access_tokens(user_id)
    extra = list(dict.fromkeys(r.grant_id for _, r in tokens if r.grant_id and r.grant_id not in known))
    grants = indexed + await store.load_grants(extra[: max(0, limit - len(indexed))])
    loose = [GrantTokens(None, False, ((h, r),)) for h, r in tokens if r.grant_id is None]
    room = max(0, limit - len(grants))
    truncated = more or len(indexed) + len(extra) > limit or len(loose) > room
    return grants + loose[:room], truncated


async def list_grants(store: Store, *, user: str | None, client: str | None, now: float) -> GrantList:
    """One user's grants (a local name or a user id) or one client's. Raises: AdminError 400, 404."""
    if (user is None) == (client is None):
        raise bad_request("name exactly one of user and client")
    if user is not None:
        grants, truncated = await _user_grants(store, await resolve_user_id(store, user), MAX_LISTED)
    else:
        assert client is not None
        grants, truncated = await store.list_client_tokens(client, MAX_LISTED)
    views = sorted((grant_view(g, now) for g in grants), key=lambda g: g.issued_at)
    return GrantList(views, truncated)


async def _find_token(store: Store, ident: str) -> tuple[str, str]:
    """("access" | "refresh", hash) of the one token whose hash starts with `ident`."""
    if not TOKEN_ID.match(ident):
        raise bad_request("a token id is hex digits, the start of the token's SHA-256 (listings show 8)")
    found = [("access", h) for h in await store.find_access_token_hashes(ident)]
    found += [("refresh", h) for h in await store.find_refresh_token_hashes(ident)]
    if len(found) > 1:
        raise conflict(f"token id {ident} is ambiguous ({len(found)} tokens); give more hex digits")
    if not found:
        raise not_found("no such token")
    return found[0]


async def _end_grant(store: Store, grant_id: str) -> Revocation:
    before = await store.load_grants([grant_id])
    await store.revoke_grant(grant_id)
    ids = [token_id(h) for g in before for h, _ in (*g.refresh, *g.access)]
    return Revocation(grant_id, ids)


async def revoke_grant(store: Store, ident: str) -> Revocation:
    """End a whole grant, named by its id or by the id of any of its tokens (a token outside any grant: that token).
    Raises: AdminError 400, 404, 409 (an ambiguous token id)."""
    ident = ident.lower()
    if GRANT_ID.match(ident) and await store.load_grants([ident]):
        return await _end_grant(store, ident)
    kind, token_hash = await _find_token(store, ident)
    if kind == "refresh":
        refresh = await store.load_refresh_token(token_hash)
        if refresh is not None:
            return await _end_grant(store, refresh.grant_id)
        record = await store.revoke_refresh_token(token_hash)  # (revoked or expired already: revoked again)
        return Revocation(record.grant_id if record else None, [token_id(token_hash)])
    access = await store.load_access_token(token_hash)
    if access is not None and access.grant_id is not None:
        return await _end_grant(store, access.grant_id)
    return await revoke_token_hash(store, token_hash)


async def revoke_token_hash(store: Store, token_hash: str) -> Revocation:
    """Revoke one access token; a refresh token ends its grant (RFC 7009 §2.1). Raises: AdminError 404."""
    if await store.revoke_access_token(token_hash):
        return Revocation(None, [token_id(token_hash)])
    record = await store.revoke_refresh_token(token_hash)
    if record is None:
        raise not_found("no such token")
    return Revocation(record.grant_id, [token_id(token_hash)])


async def revoke_token(store: Store, ident: str) -> Revocation:
    """Revoke one token by its id (`tokens revoke --id`). Raises: AdminError 400, 404, 409."""
    _, token_hash = await _find_token(store, ident.lower())
    return await revoke_token_hash(store, token_hash)


async def revoke_token_value(store: Store, value: str) -> Revocation:
    """Revoke one token by its value (`tokens revoke TOKEN`). Raises: AdminError 404."""
    return await revoke_token_hash(store, hash_token(value))


async def revoke_user(store: Store, user: str, *, now: float) -> UserRevocation:
    """End all of a user's access, keeping the account: their login sessions, every grant (refresh tokens and the
    access tokens issued under it) and every token outside a grant. Raises: AdminError 404."""
    user_id = await resolve_user_id(store, user)
    sessions = await store.end_user_sessions(user_id)
    grants, _ = await _user_grants(store, user_id, EVERY_GRANT)
    ended = tokens = 0
    for grant in grants:
        live = [h for h, r in grant.access if r.usable(now)]
        if grant.grant_id is None:
            for token_hash in live:
                tokens += int(await store.revoke_access_token(token_hash))
        elif not grant.revoked:
            await store.revoke_grant(grant.grant_id)
            ended, tokens = ended + 1, tokens + len(live)
    return UserRevocation(user_id, sessions, ended, tokens)


async def list_user_tokens(store: Store, user: str, *, now: float) -> list[TokenView]:
    """A user's access tokens (`tokens list`): a local name, or a user id; an unknown name lists nothing."""
    record = await store.load_user(user)
    user_id = record.user_id if record else user if ":" in user else f"local:{user}"
    return [access_view(h, r, now) for h, r in await store.list_access_tokens(user_id)]


async def issue_token(
    settings: Settings, store: Store, user: str, route: str, scopes: tuple[str, ...], ttl: int, *, now: float
) -> tuple[IssuedToken, str]:
    """A service token for a local user on one route (`tokens issue`), with the route's resource. Raises:
    AdminError 404 (no such route or user), 400 (a scope the route lacks)."""
    table = RouteTable(settings)
    try:
        info = table.by_name(route)
    except KeyError:
        known = ", ".join(r.route.name for r in table.routes)
        raise not_found(f"no route named {route!r} (known: {known})") from None
    if await store.load_user(user) is None:
        raise not_found(f"no user named {user!r} (create it with `users add {user}`)")
    try:
        issued = await accounts.issue_service_token(store, user, info, scopes, ttl, now=now)
    except AccountError as exc:
        raise bad_request(str(exc)) from None
    return issued, info.resource
