"""`/authorize`: validate, sign in, ask consent, redirect with a code (RFC 6749 §4.1, RFC 9207, MCP AUTHZ-*).

GET /authorize validates and parks the request in Redis (10 min), bound to the browser's session; the login
and consent forms POST back with that id and the session's CSRF token (the password forms are
gateway.web.password_sign_in). No CORS here: top-level navigation.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from gateway.access import AccessPolicy
from gateway.app_state import CLIENTS_KEY, CLOCK_KEY, PROVIDERS_KEY, ROUTES_KEY, SETTINGS_KEY, STORE_KEY
from gateway.clients.cimd import CimdBusyError, CimdError
from gateway.oauth.authorize import (
    errors_may_redirect,
    grant_code,
    parse_authorization_request,
    parse_client_redirect,
    parse_query,
)
from gateway.oauth.consent import build_consent, may_skip_consent
from gateway.oauth.errors import AccessDeniedError, OAuthError, UnsafeRedirectError
from gateway.oauth.redirects import with_query
from gateway.oauth.scopes import grant_scopes
from gateway.store.records import ClientRecord, PendingAuthorizationRecord, Principal
from gateway.web.auditing import audit
from gateway.web.authorize_pages import consent_page, denied_page, login_page
from gateway.web.errors import NO_STORE, redirect_error
from gateway.web.federation import redirect_to_provider
from gateway.web.forms import read_form
from gateway.web.render import html_error
from gateway.web.session import BrowserSession, csrf_ok, load_session, start_session

logger = logging.getLogger(__name__)
PENDING_TTL = 600


async def handle_authorize(request: web.Request) -> web.StreamResponse:
    settings, now = request.app[SETTINGS_KEY], request.app[CLOCK_KEY]()
    try:
        params, resources = parse_query(list(request.query.items()))
    except UnsafeRedirectError as exc:
        return html_error(exc.title, exc.detail)
    client_id = params.get("client_id")
    try:
        client = await request.app[CLIENTS_KEY].resolve(client_id, now=now) if client_id else None
        redirect_uri = parse_client_redirect(client, client_id, params.get("redirect_uri"))
    except CimdError as exc:
        page = html_error("Application metadata unavailable", str(exc), status=exc.status)
        if isinstance(exc, CimdBusyError):
            page.headers["Retry-After"] = "5"
        return page
    except UnsafeRedirectError as exc:
        return html_error(exc.title, exc.detail)
    assert client is not None  # parse_client_redirect refuses unknown clients
    table = request.app[ROUTES_KEY]
    try:
        parsed = parse_authorization_request(
            params, resources, client, redirect_uri, table.routes, table.canonical_host(request.host)
        )
    except OAuthError as error:
        if errors_may_redirect(client):
            return redirect_error(redirect_uri, error, params.get("state"), settings.public_url)
        return html_error("Invalid authorization request", f"{error.description or error.error} ({error.error}).")

    response = web.Response()  # carries a new session cookie, if one is set, onto the final page
    session = await load_session(request) or await start_session(request, response, None)
    request_id = secrets.token_urlsafe(24)
    prompt = params.get("prompt", "").split()
    pending = PendingAuthorizationRecord(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        redirect_uri_given=bool(params.get("redirect_uri")),
        state=parsed.state,
        code_challenge=parsed.code_challenge,
        scopes_requested=parsed.scopes,
        routes=parsed.routes,
        session_hash=session.session_hash,
        created_at=now,
        force_consent="consent" in prompt or "login" in prompt,
    )
    await request.app[STORE_KEY].save_pending(request_id, pending, PENDING_TTL)
    providers = request.app[PROVIDERS_KEY]
    principal = await _signed_in(request, session)
    if principal is None or "login" in prompt:
        if not settings.login.local and len(providers) == 1:  # straight to consent, then to the provider
            page = consent_page(request, session, request_id, pending, client, None, next(iter(providers)))
        else:
            page = login_page(request, session, request_id, client)
    else:
        page = await consent_or_approve(request, session, request_id, pending, client, principal)
    return with_cookies(page, response)


async def _signed_in(request: web.Request, session: BrowserSession) -> Principal | None:
    """Who this session is, as they stand now; None when nobody signed in, or the sign-in must be renewed (older
    than login.identity_max_age, or the local account is gone): the session then counts as signed out."""
    if session.record.principal is None:
        return None
    policy = AccessPolicy(request.app[SETTINGS_KEY], request.app[STORE_KEY])
    return await policy.refreshed(session.record.principal, now=request.app[CLOCK_KEY]())


async def handle_consent(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    if form is None:
        return html_error("Unreadable form", "The form could not be read. Start again from the application.")
    session = await load_session(request)
    provider = form_field(form, "provider")
    principal = await _signed_in(request, session) if session is not None else None
    if not csrf_ok(session, form_field(form, "csrf_token")) or session is None or (principal is None and not provider):
        return html_error("Session expired", "Your sign-in session expired or the form was not ours.", status=403)
    store, settings = request.app[STORE_KEY], request.app[SETTINGS_KEY]
    pending = await store.consume_pending(form_field(form, "request_id") or "")  # single use
    if pending is None or pending.session_hash != session.session_hash:
        return html_error("Request expired", "This authorization request expired. Start again from the application.")
    if form_field(form, "decision") != "approve":
        audit(
            request,
            "oauth.authorize",
            client=pending.client_id,
            outcome="access_denied",
            user=principal.user_id if principal else None,
        )
        return redirect_error(
            pending.redirect_uri, AccessDeniedError("the user denied access"), pending.state, settings.public_url
        )
    table = request.app[ROUTES_KEY]
    candidates = [table.by_name(name) for name in pending.routes]
    chosen = [info for info in candidates if len(candidates) == 1 or info.resource == form_field(form, "resource")]
    if not chosen:
        return html_error("No MCP server chosen", "Pick one of the listed MCP servers.")
    if principal is None:  # consent given before the upstream sign-in (AUTHZ-6)
        return await redirect_to_provider(request, pending, chosen[0].route.name, provider or "")
    return await _approve(request, pending, chosen[0].route.name, principal, remember=True, session=session)


async def consent_or_approve(
    request: web.Request,
    session: BrowserSession,
    request_id: str,
    pending: PendingAuthorizationRecord,
    client: ClientRecord,
    principal: Principal,
) -> web.Response:
    """Skip the page when this user already approved this client for this route and these scopes (and, for a
    public native client, this exact redirect URI: gateway.oauth.consent)."""
    store, settings = request.app[STORE_KEY], request.app[SETTINGS_KEY]
    table = request.app[ROUTES_KEY]
    if len(pending.routes) == 1 and not pending.force_consent and settings.oauth.consent_ttl > 0:
        info = table.by_name(pending.routes[0])
        remembered = await store.load_consent(principal.user_id, client.client_id, info.route.name)
        wanted = grant_scopes(pending.scopes_requested, info.route.scopes)
        if may_skip_consent(remembered, wanted, client, pending.redirect_uri):
            await store.consume_pending(request_id)
            return await _approve(request, pending, info.route.name, principal, remember=False, session=session)
    return consent_page(request, session, request_id, pending, client, principal, None)


async def handle_provider_choice(request: web.Request) -> web.StreamResponse:
    """POST /authorize/provider (the login page's provider buttons): consent first, then the provider."""
    form = await read_form(request)
    if form is None:
        return html_error("Unreadable form", "The form could not be read. Start again from the application.")
    session = await load_session(request)
    if not csrf_ok(session, form_field(form, "csrf_token")) or session is None:
        return html_error("Session expired", "Your sign-in session expired or the form was not ours.", status=403)
    request_id = form_field(form, "request_id") or ""
    pending = await request.app[STORE_KEY].load_pending(request_id)
    if pending is None or pending.session_hash != session.session_hash:
        return html_error("Request expired", "This sign-in request expired. Start again from the application.")
    provider = form_field(form, "provider") or ""
    if provider not in request.app[PROVIDERS_KEY]:
        return html_error("Unknown sign-in method", "That sign-in method is not configured.")
    client = await resolve_client(request, pending.client_id, request.app[CLOCK_KEY]())
    if client is None:
        return html_error("Unknown application", "This application is no longer registered.")
    return consent_page(request, session, request_id, pending, client, None, provider)


async def approve_after_sign_in(
    request: web.Request, session: BrowserSession, pending: PendingAuthorizationRecord, route: str
) -> web.Response:
    """The provider confirmed who this is; consent was given before the redirect."""
    assert session.record.principal is not None
    return await _approve(request, pending, route, session.record.principal, remember=True, session=session)


async def _approve(
    request: web.Request,
    pending: PendingAuthorizationRecord,
    route: str,
    principal: Principal,
    *,
    remember: bool,
    session: BrowserSession,
) -> web.Response:
    """Issue the code, for the person as they stand now (every path to a code comes here): the account is re-read,
    a sign-in older than login.identity_max_age is refused, and the route's rules are applied again."""
    store, settings, now = request.app[STORE_KEY], request.app[SETTINGS_KEY], request.app[CLOCK_KEY]()
    info = request.app[ROUTES_KEY].by_name(route)
    policy = AccessPolicy(settings, store)
    current = await policy.refreshed(principal, now=now)
    if current is None:
        await store.delete_browser_session(session.session_hash)  # signed out: the next attempt signs in
        audit(
            request,
            "oauth.authorize",
            client=pending.client_id,
            user=principal.user_id,
            route=route,
            outcome="sign_in_required",
        )
        return html_error(
            "Sign in again",
            "Your sign-in has expired or your account has changed. Start again from the application.",
            status=403,
        )
    if not policy.permits(info.route, user_id=current.user_id, email=current.email, groups=current.groups):
        audit(
            request,
            "oauth.authorize",
            client=pending.client_id,
            user=current.user_id,
            route=route,
            outcome="denied_by_rules",
        )
        return denied_page(session, current, route)
    scopes = grant_scopes(pending.scopes_requested, info.route.scopes)
    if remember and settings.oauth.consent_ttl > 0:
        previous = await store.load_consent(current.user_id, pending.client_id, route)
        approval = build_consent(previous, scopes, pending.redirect_uri, now=now)
        await store.save_consent(current.user_id, pending.client_id, route, approval, settings.oauth.consent_ttl)
    code = await grant_code(store, pending, info, current, scopes, code_ttl=settings.oauth.code_ttl, now=now)
    audit(
        request,
        "oauth.authorize",
        client=pending.client_id,
        user=current.user_id,
        route=route,
        scope=" ".join(scopes),
        outcome="code",
    )
    location = with_query(pending.redirect_uri, {"code": code, "state": pending.state, "iss": settings.public_url})
    return web.Response(status=302, headers={"Location": location, **NO_STORE})


async def resolve_client(request: web.Request, client_id: str, now: float) -> ClientRecord | None:
    try:
        return await request.app[CLIENTS_KEY].resolve(client_id, now=now)
    except CimdError:
        return None


def with_cookies(page: web.Response, carrier: web.Response) -> web.Response:
    for morsel in carrier.cookies.values():
        page.cookies[morsel.key] = morsel
    return page


def form_field(form: object, name: str) -> str | None:
    value = form.get(name) if hasattr(form, "get") else None
    return value if isinstance(value, str) else None
