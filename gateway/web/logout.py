"""Sign out of the gateway (to switch accounts after an access-denied page)."""

from __future__ import annotations

from aiohttp import web

from gateway.app_state import STORE_KEY
from gateway.web.forms import read_form
from gateway.web.render import html_error, render
from gateway.web.session import cookie_name, csrf_ok, load_session


async def handle_logout(request: web.Request) -> web.StreamResponse:
    """GET shows a confirmation form; POST (with the session's CSRF token) ends the session."""
    session = await load_session(request)
    if request.method == "GET":
        if session is None:
            return render("message.html", {"title": "Signed out", "detail": "You are not signed in."})
        return render("logout.html", {"csrf_token": session.record.csrf})
    form = await read_form(request)
    if form is None:
        return html_error("Unreadable form", "The form could not be read. Start again from the application.")
    token = form.get("csrf_token")
    if session is None or not csrf_ok(session, token if isinstance(token, str) else None):
        return html_error("Session expired", "Your session expired or the form was not ours.", status=403)
    await request.app[STORE_KEY].delete_browser_session(session.session_hash)
    page = render(
        "message.html",
        {"title": "Signed out", "detail": "You are signed out of the gateway. Start again from the application."},
    )
    page.del_cookie(cookie_name(request), path="/")
    return page
