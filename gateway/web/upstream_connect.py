"""Connecting a user's account at the service behind a route (`upstream_auth: oauth`): the redirect to the
upstream's authorization server (after consent inside /authorize, or from the connect page), the connect page the
in-band answer of an MCP request names (`/upstream/connect/<route>`: a confirmation form, CSRF-checked, so no
other site can start a connection in the user's browser), the user's connections page (list, disconnect), and
the gateway's own Client ID Metadata Document per route. The way back in is gateway.web.upstream_callback.

Every page works on the browser's gateway session: a credential is always kept for the person signed in there,
never for one named in a URL (an attacker's link connects nobody's account to the attacker's)."""

from __future__ import annotations

import datetime
import logging
from urllib.parse import quote

from aiohttp import web

from gateway.app_state import CONNECTOR_KEY, ROUTES_KEY, SETTINGS_KEY
from gateway.config import OAuthUpstreamAuth
from gateway.routing import RouteInfo
from gateway.store.records import PendingAuthorizationRecord, Principal
from gateway.upstream_oauth.client import client_document
from gateway.upstream_oauth.http import UpstreamOAuthError
from gateway.vault import route_slot
from gateway.web.auditing import audit
from gateway.web.errors import NO_STORE
from gateway.web.forms import read_form
from gateway.web.own_pages import own_form, own_page
from gateway.web.render import html_error, render
from gateway.web.session import BrowserSession, csrf_ok

logger = logging.getLogger(__name__)
CONNECT_PATH = "/upstream/connect/{route}"


def connect_url(public_url: str, route: str) -> str:
    return public_url + CONNECT_PATH.format(route=quote(route, safe=""))


def connectable(info: RouteInfo) -> bool:
    return isinstance(info.route.upstream_auth, OAuthUpstreamAuth)


async def redirect_to_upstream(
    request: web.Request,
    info: RouteInfo,
    principal: Principal,
    session: BrowserSession,
    *,
    pending: PendingAuthorizationRecord | None = None,
    remember: bool = True,
) -> web.Response:
    """Send the browser to the route's upstream authorization server (a page naming the failure when it cannot)."""
    try:
        url = await request.app[CONNECTOR_KEY].start(
            info, principal.user_id, session.session_hash, pending=pending, remember=remember
        )
    except UpstreamOAuthError as exc:
        logger.warning("connecting route %s: %s", info.route.name, exc)
        audit(request, "upstream.connect", route=info.route.name, user=principal.user_id, outcome="unavailable")
        return html_error("The MCP server's sign-in is unavailable", str(exc), status=502)
    return web.Response(status=302, headers={"Location": url, **NO_STORE})


async def handle_connect(request: web.Request) -> web.StreamResponse:
    """GET: the confirmation page; POST (CSRF): on to the upstream's authorization server."""
    info = _route(request)
    if info is None or not connectable(info):
        return html_error("Unknown MCP server", "No MCP server of that name needs a connection.", status=404)
    visitor = await own_page(request)
    if isinstance(visitor, web.Response):
        return visitor
    session, principal = visitor.session, visitor.principal
    if request.method == "GET":
        action = CONNECT_PATH.format(route=quote(info.route.name, safe=""))
        context = {
            "route": info.route.name,
            "user": _who(principal),
            "action": action,
            "csrf_token": session.record.csrf,
        }
        return render("connect.html", context)
    form = await read_form(request)
    token = form.get("csrf_token") if form is not None else None
    if not csrf_ok(session, token if isinstance(token, str) else None):
        return html_error("Session expired", "Your session expired or the form was not ours.", status=403)
    return await redirect_to_upstream(request, info, principal, session)


async def handle_connections(request: web.Request) -> web.StreamResponse:
    """GET /upstream/connections: what the gateway holds for the signed-in user."""
    visitor = await own_page(request)
    if isinstance(visitor, web.Response):
        return visitor
    session, principal = visitor.session, visitor.principal
    held = await request.app[CONNECTOR_KEY].vault.all_of(principal.user_id)
    rows = [
        {
            "slot": slot,
            "name": slot.partition(":")[2],
            "kind": "sign-in provider" if slot.startswith("provider:") else "MCP server",
            "issued": _when(record.issued_at) if record else "unreadable",
            "expires": _when(record.expires_at) if record and record.expires_at else "-",
        }
        for slot, record in held.items()
        if not slot.startswith("provider:")  # (a sign-in's own tokens go with the sign-in)
    ]
    routes = request.app[ROUTES_KEY].routes
    missing = [i.route.name for i in routes if connectable(i) and route_slot(i.route.name) not in held]
    context = {"user": _who(principal), "rows": rows, "connectable": missing, "csrf_token": session.record.csrf}
    return render("connections.html", context)


async def handle_disconnect(request: web.Request) -> web.StreamResponse:
    """POST /upstream/connections/disconnect (CSRF): drop one credential, revoked at its server where it can be."""
    visitor = await own_form(request)
    if isinstance(visitor, web.Response):
        return visitor
    principal, slot = visitor.principal, visitor.form.get("slot")
    table = request.app[ROUTES_KEY]
    names = {route_slot(i.route.name): i for i in table.routes if connectable(i)}
    if not isinstance(slot, str) or (slot not in names and not slot.startswith("provider:")):
        return html_error("Unknown connection", "That connection does not exist.", status=404)
    info = names.get(slot)
    await request.app[CONNECTOR_KEY].disconnect(principal.user_id, slot, info.route.upstream_auth if info else None)
    audit(request, "upstream.disconnect", route=slot.partition(":")[2], user=principal.user_id, outcome="ok")
    return web.Response(status=303, headers={"Location": "/upstream/connections", **NO_STORE})


async def handle_client_document(request: web.Request) -> web.StreamResponse:
    """The gateway's Client ID Metadata Document for a route (its client_id at CIMD-capable upstream servers)."""
    info = _route(request)
    if info is None or not connectable(info):
        return web.json_response({"error": "not_found"}, status=404)
    document = client_document(request.app[SETTINGS_KEY].public_url, info.route.name)
    return web.json_response(document, headers={"Cache-Control": "public, max-age=3600"})


def _route(request: web.Request) -> RouteInfo | None:
    try:
        return request.app[ROUTES_KEY].by_name(request.match_info["route"])
    except KeyError:
        return None


def _who(principal: Principal) -> str:
    return principal.email or principal.preferred_username or principal.user_id


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
