"""The signed-in user's own pages (`/account`, `/upstream/connections`): who is asking, from the browser session,
and on a form post its CSRF token; otherwise the page that says why not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.store.records import Principal
from gateway.web.forms import read_form
from gateway.web.render import html_error
from gateway.web.session import BrowserSession, csrf_ok, load_session, signed_in

NOT_SIGNED_IN = (
    "Not signed in",
    "Sign in to the gateway first: use your application's MCP server again (it signs you in), then open this page.",
)


@dataclass(frozen=True, slots=True)
class Visitor:
    session: BrowserSession
    principal: Principal
    form: Any = None  # the posted form (`own_form`)


async def own_page(request: web.Request) -> Visitor | web.Response:
    """The signed-in visitor of a page, or the 403 page saying they are not signed in."""
    session = await load_session(request)
    principal = await signed_in(request, session) if session is not None else None
    if session is None or principal is None:
        return html_error(*NOT_SIGNED_IN, status=403)
    return Visitor(session, principal)


async def own_form(request: web.Request) -> Visitor | web.Response:
    """The signed-in visitor of a form post carrying their session's CSRF token, or the 403 page."""
    session = await load_session(request)
    principal = await signed_in(request, session) if session is not None else None
    form = await read_form(request)
    token = form.get("csrf_token") if form is not None else None
    if session is None or principal is None or not csrf_ok(session, token if isinstance(token, str) else None):
        return html_error("Session expired", "Your session expired or the form was not ours.", status=403)
    return Visitor(session, principal, form)
