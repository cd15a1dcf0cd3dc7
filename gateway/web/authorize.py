"""`/authorize`: validate, sign in, ask consent, redirect with a code (RFC 6749 §4.1, RFC 9207, MCP AUTHZ-*).

GET /authorize validates and parks the request in Redis (10 min), bound to the browser's session; the login
and consent forms POST back with that id and the session's CSRF token (the password forms are
gateway.web.password_sign_in). No CORS here: top-level navigation.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from gateway.app_state import CLIENTS_KEY, CLOCK_KEY, PROVIDERS_KEY, ROUTES_KEY, SETTINGS_KEY, STORE_KEY
from gateway.clients.cimd import CimdBusyError, CimdError
from gateway.oauth.authorize import (
    errors_may_redirect,
    parse_authorization_request,
    parse_client_redirect,
    parse_query,
)
from gateway.oauth.errors import AccessDeniedError, OAuthError, UnsafeRedirectError
from gateway.store.records import ClientRecord, PendingAuthorizationRecord
from gateway.web.approval import approve, consent_or_approve, redirect_to_provider, with_cookies
from gateway.web.auditing import audit
from gateway.web.authorize_pages import consent_page, login_page
from gateway.web.errors import redirect_error
from gateway.web.forms import page_refusals, pending_form
from gateway.web.render import html_error
from gateway.web.session import load_session, signed_in, start_session

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
        dpop_jkt=parsed.dpop_jkt,
        scopes_requested=parsed.scopes,
        routes=parsed.routes,
        session_hash=session.session_hash,
        created_at=now,
        force_consent="consent" in prompt or "login" in prompt,
    )
    await request.app[STORE_KEY].save_pending(request_id, pending, PENDING_TTL)
    providers = request.app[PROVIDERS_KEY]
    principal = await signed_in(request, session)
    if principal is None or "login" in prompt:
        if not settings.login.local and len(providers) == 1:  # straight to consent, then to the provider
            page = consent_page(request, session, request_id, pending, client, None, next(iter(providers)))
        else:
            page = login_page(request, session, request_id, client)
    else:
        page = await consent_or_approve(request, session, request_id, pending, client, principal)
    return with_cookies(page, response)


@page_refusals
async def handle_consent(request: web.Request) -> web.StreamResponse:
    """POST /authorize/consent: deny (back to the client with access_denied), or approve one route: the code, or,
    before a provider sign-in, the provider. The request is consumed first (single use)."""
    submitted = await pending_form(request, consent=True)
    pending, principal, provider = submitted.pending, submitted.principal, submitted.field("provider")
    settings = request.app[SETTINGS_KEY]
    if submitted.field("decision") != "approve":
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
    chosen = [info for info in candidates if len(candidates) == 1 or info.resource == submitted.field("resource")]
    if not chosen:
        return html_error("No MCP server chosen", "Pick one of the listed MCP servers.")
    if principal is None:  # consent given before the upstream sign-in (AUTHZ-6)
        return await redirect_to_provider(request, pending, chosen[0].route.name, provider or "")
    return await approve(request, pending, chosen[0].route.name, principal, remember=True, session=submitted.session)


@page_refusals
async def handle_provider_choice(request: web.Request) -> web.StreamResponse:
    """POST /authorize/provider (the login page's provider buttons): consent first, then the provider."""
    submitted = await pending_form(request)
    provider = submitted.field("provider") or ""
    if provider not in request.app[PROVIDERS_KEY]:
        return html_error("Unknown sign-in method", "That sign-in method is not configured.")
    client = await resolve_client(request, submitted.pending.client_id, request.app[CLOCK_KEY]())
    if client is None:
        return html_error("Unknown application", "This application is no longer registered.")
    return consent_page(request, submitted.session, submitted.request_id, submitted.pending, client, None, provider)


async def resolve_client(request: web.Request, client_id: str, now: float) -> ClientRecord | None:
    try:
        return await request.app[CLIENTS_KEY].resolve(client_id, now=now)
    except CimdError:
        return None
