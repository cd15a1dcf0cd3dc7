"""The admin console: server-rendered pages on the admin listener (Jinja, the same templates and branding as the
public pages, no JavaScript), over the admin API's own functions (gateway.admin.*): users, one user's page
(grants, sessions, upstream credentials, revoke buttons), clients, grants by client, routes, signing keys.

Every page needs a console session (gateway.admin.console_auth); every form is a POST carrying the session's CSRF
token and answers with a redirect (303) back to its page and a fixed notice (never text from the query). Refusals
are pages too (an `AdminError`'s status and message), never JSON, never a stack trace.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.admin import clients, credentials, grants, keys, routes, users
from gateway.admin.console_auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    ConsoleSession,
    ConsoleSessions,
    csrf_matches,
    set_cookie,
    token_digest,
    token_matches,
)
from gateway.admin.errors import AdminError
from gateway.admin.target import (
    ACTOR_KEY,
    REQUEST_TARGET_KEY,
    TARGET_KEY,
    AdminTarget,
    certificate_subject,
    refuse_cross_site,
)
from gateway.store.errors import StoreUnavailableError
from gateway.web.render import render, using_branding

SESSIONS_KEY = web.AppKey("console_sessions", ConsoleSessions)
SESSION_KEY = web.RequestKey("console_session", ConsoleSession)
NOTICES = {
    "revoked": "Revoked.",
    "revoked-all": "Every grant, token and sign-in session of this user ended.",
    "ended": "Session ended.",
    "dropped": "Credential dropped (and revoked at its server where it allows).",
    "removed": "Removed.",
    "added": "Added.",
    "groups": "Groups saved.",
    "rotated": "A new signing key signs from now on; the old one stays published for verifiers.",
}
Page = Callable[[web.Request, AdminTarget], Awaitable[web.StreamResponse]]


def _target(request: web.Request) -> AdminTarget:
    return request[REQUEST_TARGET_KEY]


def page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A console page or action: signed in (else the sign-in page), CSRF on POST, refusals rendered as pages."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        target = request.app[TARGET_KEY]()
        request[REQUEST_TARGET_KEY] = target
        sessions, digest = request.app[SESSIONS_KEY], token_digest(_token(target))
        session, cookie = sessions.find(request, digest), None
        if session is None and (subject := certificate_subject(request)) is not None:  # one session per certificate
            cookie, session = sessions.for_certificate(f"certificate:{subject}", digest)
        if session is None:
            return _see("/login") if request.method == "GET" else _refused(403, "Sign in again.")
        request[SESSION_KEY], request[ACTOR_KEY] = session, session.actor
        try:
            if request.method == "POST":
                refuse_cross_site(request)
                form = await request.post()
                if not csrf_matches(session, form.get("csrf_token")):
                    return _refused(403, "The form was not ours, or your session changed. Reload the page.")
            response = await handler(request, target)
            if cookie is not None:
                set_cookie(response, SESSION_COOKIE, cookie, SESSION_SECONDS)
            return response
        except AdminError as exc:
            return _refused(exc.status, exc.message)
        except StoreUnavailableError:
            return _refused(503, "The store (Redis) is unavailable; try again.")

    return wrapped


def show(request: web.Request, template: str, **context: Any) -> web.Response:
    session = request[SESSION_KEY]
    notice = NOTICES.get(request.query.get("done", ""))
    return render(template, {"csrf_token": session.csrf, "actor": session.actor, "notice": notice, **context})


def back(location: str, done: str) -> web.Response:
    separator = "&" if "?" in location else "?"
    return _see(f"{location}{separator}{urlencode({'done': done})}")


def _see(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _refused(status: int, message: str) -> web.Response:
    return render("console_error.html", {"status": status, "message": message}, status=status)


def _token(target: AdminTarget) -> str | None:
    token = target.settings.admin.token
    return token.get_secret_value() if token is not None else None


def local(location: str) -> str:
    """`location` if it is a path on this listener (never `//host`, a backslash, a scheme, a control character)."""
    safe = location.startswith("/") and location[1:2] != "/" and "\\" not in location and location.isprintable()
    return location if safe else "/"


def _signed_in(request: web.Request, target: AdminTarget, actor: str, location: str) -> web.Response:
    value, _ = request.app[SESSIONS_KEY].start(actor, token_digest(_token(target)))
    response = _see(local(location))
    set_cookie(response, SESSION_COOKIE, value, SESSION_SECONDS)
    response.del_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


async def handle_login_page(request: web.Request) -> web.StreamResponse:
    """GET /login: the sign-in form (the admin token), with a double-submit CSRF cookie."""
    csrf = secrets.token_urlsafe(24)
    response = render("console_login.html", {"csrf_token": csrf, "error": None})
    set_cookie(response, LOGIN_COOKIE, csrf, 600)
    return response


async def handle_login(request: web.Request) -> web.StreamResponse:
    """POST /login: the admin token starts a console session (failures limited per address)."""
    target = request.app[TARGET_KEY]()
    sessions = request.app[SESSIONS_KEY]
    address = request.remote or "-"
    form = await request.post()
    cookie, field = request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf_token")
    if not cookie or not isinstance(field, str) or not token_matches(field, cookie):
        return _refused(403, "The sign-in form expired. Open it again.")
    presented = form.get("token")
    if isinstance(presented, str) and token_matches(presented.strip(), _token(target)):
        return _signed_in(request, target, "token", "/")  # (the limit slows guesses; it never locks the token out)
    if not sessions.may_try(address):
        error = "Too many attempts. Wait a minute."
        return render("console_login.html", {"csrf_token": cookie, "error": error}, status=429)
    sessions.failed(address)
    return render("console_login.html", {"csrf_token": cookie, "error": "That is not the admin token."}, status=401)


@page
async def handle_logout(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    request.app[SESSIONS_KEY].end(request)
    response = _see("/login")
    response.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


@page
async def handle_home(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    listed_users = await users.list_users(target.store)
    listed_clients = await clients.list_clients(target.settings, target.store)
    status = await routes.route_status(target)
    return show(request, "console_home.html", users=listed_users, clients=listed_clients, routes=status)


def _matching(query: str, *fields: object) -> bool:
    return not query or any(query in str(f).lower() for f in fields if f)


@page
async def handle_users(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    query = request.query.get("q", "").strip().lower()[:200]
    listed = await users.list_users(target.store)
    rows = [u for u in listed.users if _matching(query, u.name, u.user_id, u.email, *u.groups)]
    return show(request, "console_users.html", users=rows, q=query, truncated=listed.truncated)


@page
async def handle_add_user(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    form = await request.post()
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    groups = users.check_groups([g.strip() for g in str(form.get("groups", "")).split(",") if g.strip()])
    email = str(form.get("email", "")).strip() or None
    await users.add_user(target.store, name, password, email=email, groups=groups, now=target.clock())
    return back(f"/users/{quote(name, safe='')}", "added")


@page
async def handle_user(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    """One user: the account (local ones), grants, login sessions, upstream credentials; revoke buttons."""
    name = request.match_info["name"]
    user_id = await users.resolve_user_id(target.store, name)
    account = await users.show_user(target.store, name) if ":" not in name else None
    listed = await grants.list_grants(target.store, user=user_id, client=None, now=target.clock())
    sessions = await users.list_sessions(target.store, user_id)
    held = await credentials.list_credentials(target, user_id)
    return show(
        request,
        "console_user.html",
        name=name,
        user_id=user_id,
        account=account,
        grants=listed,
        sessions=sessions,
        credentials=held,
        here=f"/users/{quote(name, safe='')}",
    )


@page
async def handle_user_action(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    """POST /users/{name}/{action}: revoke (all access), remove, groups, end-session, drop-credential."""
    name, action = request.match_info["name"], request.match_info["action"]
    here = f"/users/{quote(name, safe='')}"
    form = await request.post()
    if action == "revoke":
        await grants.revoke_user(target.store, name, now=target.clock())
        return back(here, "revoked-all")
    if action == "remove":
        await users.remove_user(target, name)
        return back("/users", "removed")
    if action == "groups":
        await users.set_groups(target.store, name, [g.strip() for g in str(form.get("groups", "")).split(",")])
        return back(here, "groups")
    if action == "end-session":
        await users.end_session(target.store, name, str(form.get("session", "")))
        return back(here, "ended")
    if action == "drop-credential":
        user_id = await users.resolve_user_id(target.store, name)
        await credentials.drop_credential(target, user_id, str(form.get("slot", "")))
        return back(here, "dropped")
    raise AdminError(404, "not_found", "no such action")


@page
async def handle_revoke_grant(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    form = await request.post()
    await grants.revoke_grant(target.store, str(form.get("grant", "")))
    return back(local(str(form.get("back", "/"))), "revoked")


@page
async def handle_clients(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    query = request.query.get("q", "").strip().lower()[:200]
    listed = await clients.list_clients(target.settings, target.store)
    rows = [c for c in listed.clients if _matching(query, c.client_id, c.client_name, c.kind, *c.redirect_uris)]
    return show(request, "console_clients.html", clients=rows, q=query, truncated=listed.truncated)


@page
async def handle_remove_client(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    form = await request.post()
    await clients.remove_client(target.settings, target.store, str(form.get("client_id", "")))
    return back("/clients", "removed")


@page
async def handle_client_grants(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    client_id = request.query.get("client", "")[:2048]
    listed = await grants.list_grants(target.store, user=None, client=client_id, now=target.clock())
    here = f"/grants?{urlencode({'client': client_id})}"
    return show(request, "console_grants.html", client_id=client_id, grants=listed, here=here)


@page
async def handle_routes(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    return show(request, "console_routes.html", routes=await routes.route_status(target))


@page
async def handle_keys(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    return show(request, "console_keys.html", keys=await keys.list_keys(target))


@page
async def handle_rotate_key(request: web.Request, target: AdminTarget) -> web.StreamResponse:
    await keys.rotate_key(target)
    return back("/keys", "rotated")


@web.middleware
async def _branded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The console's pages in the current configuration's branding (a reload's applies at once)."""
    with using_branding(request.app[TARGET_KEY]().settings.branding):
        return await handler(request)


def setup_console(app: web.Application) -> None:
    """The console's pages under `/` of the admin application (the API keeps `/api/`), before it starts."""
    app[SESSIONS_KEY] = ConsoleSessions()
    app.middlewares.append(_branded)
    router = app.router
    router.add_get("/login", handle_login_page)
    router.add_post("/login", handle_login)
    router.add_post("/logout", handle_logout)
    router.add_get("/", handle_home)
    router.add_get("/users", handle_users)
    router.add_post("/users", handle_add_user)
    router.add_get("/users/{name}", handle_user)
    router.add_post("/users/{name}/{action}", handle_user_action)
    router.add_post("/grants/revoke", handle_revoke_grant)
    router.add_get("/grants", handle_client_grants)
    router.add_get("/clients", handle_clients)
    router.add_post("/clients/remove", handle_remove_client)
    router.add_get("/routes", handle_routes)
    router.add_get("/keys", handle_keys)
    router.add_post("/keys/rotate", handle_rotate_key)
