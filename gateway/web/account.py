"""The signed-in user's own page, `/account`: which applications (OAuth clients) they have granted access to which
MCP server, with a button that revokes one (as GitHub's "Authorized OAuth Apps"), and a link to the credentials
the gateway holds for them upstream (`/upstream/connections`).

The listing is the admin API's (gateway.admin.grants.list_grants), for this user only; a revocation names a grant
(or a token outside any grant) that must be in this user's own listing, so nobody can end another's.
"""

from __future__ import annotations

from aiohttp import web

from gateway.admin.grants import list_grants
from gateway.admin.views import GrantView
from gateway.app_state import CLOCK_KEY, STORE_KEY
from gateway.store.base import Store
from gateway.web.auditing import audit
from gateway.web.errors import NO_STORE
from gateway.web.own_pages import own_form, own_page
from gateway.web.render import html_error, render

DONE = {"revoked": "Access revoked: that application's tokens no longer work."}  # (never the query's own text)


async def handle_account(request: web.Request) -> web.StreamResponse:
    """GET /account: the signed-in user's active grants."""
    visitor = await own_page(request)
    if isinstance(visitor, web.Response):
        return visitor
    principal = visitor.principal
    store = request.app[STORE_KEY]
    grants = await _active(store, principal.user_id, request.app[CLOCK_KEY]())
    rows = [await _row(store, grant) for grant in grants]
    context = {
        "user": principal.email or principal.preferred_username or principal.user_id,
        "rows": rows,
        "csrf_token": visitor.session.record.csrf,
        "notice": DONE.get(request.query.get("done", "")),
    }
    return render("account.html", context)


async def handle_account_revoke(request: web.Request) -> web.StreamResponse:
    """POST /account/revoke (CSRF): end one of the user's own grants."""
    visitor = await own_form(request)
    if isinstance(visitor, web.Response):
        return visitor
    principal, ident = visitor.principal, visitor.form.get("grant")
    store = request.app[STORE_KEY]
    own = {_ident(g): g for g in await _active(store, principal.user_id, request.app[CLOCK_KEY]())}
    if not isinstance(ident, str) or ident not in own:
        return html_error("Unknown grant", "That access does not exist, or it has ended already.", status=404)
    grant = own[ident]
    await _revoke_own(store, grant, principal.user_id)
    audit(request, "account.revoke", user=principal.user_id, client_id=grant.client_id, route=grant.route)
    return web.Response(status=303, headers={"Location": "/account?done=revoked", **NO_STORE})


async def _revoke_own(store: Store, grant: GrantView, user_id: str) -> None:
    """End a grant of this user's; a token outside any grant is found by its id (the start of its hash) among
    this user's own tokens only: another's token that shares the prefix is never touched."""
    if grant.grant_id is not None:
        await store.revoke_grant(grant.grant_id)
        return
    for token_hash in await store.find_access_token_hashes(grant.tokens[0].token_id):
        record = await store.load_access_token(token_hash)
        if record is not None and record.user_id == user_id:
            await store.revoke_access_token(token_hash)


async def _active(store: Store, user_id: str, now: float) -> list[GrantView]:
    listed = await list_grants(store, user=user_id, client=None, now=now)
    return [g for g in listed.grants if g.state == "active" and g.expires_at > now]


def _ident(grant: GrantView) -> str:
    """What the revoke button names: the grant, or the one token a grant-less access is."""
    return grant.grant_id if grant.grant_id is not None else grant.tokens[0].token_id


async def _row(store: Store, grant: GrantView) -> dict[str, object]:
    client = await store.load_client(grant.client_id)
    name = client.client_name if client is not None and client.client_name else None
    return {
        "ident": _ident(grant),
        "name": name or grant.client_id,
        "client_id": grant.client_id,
        "route": grant.route,
        "scopes": grant.scopes,
        "granted": grant.issued_at,
        "expires": grant.expires_at,
    }
