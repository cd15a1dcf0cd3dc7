"""`/upstream/callback/<route>`: the way back from an upstream's authorization server (gateway.web.upstream_connect sent
the browser there). The `state` is single use and bound to the browser session and the user that started it; the
path must be the route's own (one redirect URI per route: RFC 9700 §4.4 mix-up), the
`iss` of the answer must be the server's (RFC 9207, when it says it sends one, or sends one anyway); the code is
redeemed with the PKCE verifier; the credential is kept for that user. Inside an authorization of our own, the
client's code is issued only now (gateway.web.approval.approve, which checks the person again)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from gateway.app_state import CONNECTOR_KEY, ROUTES_KEY, SETTINGS_KEY, STORE_KEY
from gateway.oauth.errors import AccessDeniedError
from gateway.store.records import UpstreamFlightRecord
from gateway.upstream_oauth.http import UpstreamOAuthError
from gateway.web.approval import approve
from gateway.web.auditing import audit
from gateway.web.errors import redirect_error
from gateway.web.render import html_error, render
from gateway.web.session import load_session, signed_in

logger = logging.getLogger(__name__)
EXPIRED = ("Connection expired", "This connection link was already used or has expired. Start again.")


async def handle_upstream_callback(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state", "")
    flight = await request.app[STORE_KEY].consume_upstream_flight(state) if 0 < len(state) <= 512 else None
    if flight is None:
        return html_error(*EXPIRED)
    session = await load_session(request)
    principal = await signed_in(request, session) if session is not None else None
    if session is None or session.session_hash != flight.session_hash:
        return html_error("Connection expired", "This connection was started in another browser session.")
    if principal is None or principal.user_id != flight.user_id:
        return html_error("Sign in again", "You are no longer signed in as the person who started this.", status=403)
    if request.path != urlsplit(flight.redirect_uri).path:  # a code for another route's server (mix-up)
        return html_error("Connection refused", "This answer came back for another MCP server than the one asked.")
    try:
        info = request.app[ROUTES_KEY].by_name(flight.route)
    except KeyError:
        return html_error(*EXPIRED)
    problem = _answer_problem(request, flight)
    if problem is not None:
        audit(request, "upstream.connect", route=flight.route, user=flight.user_id, outcome="refused", reason=problem)
        return html_error("The MCP server's sign-in failed", problem, status=502)
    if "code" not in request.query:  # the person (or the server) said no
        audit(request, "upstream.connect", route=flight.route, user=flight.user_id, outcome="access_denied")
        if flight.pending is not None:
            error = AccessDeniedError("the MCP server's own authorization was refused")
            issuer = request.app[SETTINGS_KEY].public_url
            return redirect_error(flight.pending.redirect_uri, error, flight.pending.state, issuer)
        return html_error("Not connected", f"The sign-in at {flight.route} was refused.", status=403)
    try:
        await request.app[CONNECTOR_KEY].finish(info, flight, request.query["code"])
    except UpstreamOAuthError as exc:
        logger.warning("connecting route %s: %s", flight.route, exc)
        audit(request, "upstream.connect", route=flight.route, user=flight.user_id, outcome="failed")
        return html_error("The MCP server's sign-in failed", str(exc), status=502)
    audit(request, "upstream.connect", route=flight.route, user=flight.user_id, outcome="connected")
    if flight.pending is not None:
        return await approve(
            request, flight.pending, flight.route, principal, remember=flight.remember, session=session
        )
    detail = f"{flight.route} is connected. Go back to your application and try again."
    return render("message.html", {"title": "Connected", "detail": detail})


def _answer_problem(request: web.Request, flight: UpstreamFlightRecord) -> str | None:
    """What is wrong with the server's answer itself (RFC 9207 `iss`; a code and an error at once; sizes)."""
    query = request.query
    iss = query.get("iss")
    if flight.issuer is not None and (iss is not None or flight.iss_required) and iss != flight.issuer:
        return "The answer came from another authorization server than the one asked (RFC 9207 iss mismatch)."
    if ("code" in query) == ("error" in query):
        return "The authorization server's answer holds neither a code nor an error (or both)."
    if len(query.get("code", "")) > 2048:
        return "The authorization server's code is too long."
    return None
