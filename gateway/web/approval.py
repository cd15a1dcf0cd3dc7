"""What follows consent at /authorize (RFC 6749 §4.1.2, RFC 9207): the code for a person who is known, or, for
consent given before a provider sign-in, the redirect to that provider (MCP security best practices, "Confused
Deputy": consent first, then the provider `state`, single use, for at most 10 minutes; AUTHZ-6/7).

Both flows end here: the password sign-in and consent pages (gateway.web.authorize, gateway.web.password_sign_in)
and the provider callback (gateway.web.federation). It sits below them, so neither imports the other."""

from __future__ import annotations

from aiohttp import web

from gateway.access import AccessPolicy
from gateway.app_state import CLOCK_KEY, CONNECTOR_KEY, PROVIDERS_KEY, ROUTES_KEY, SETTINGS_KEY, STORE_KEY
from gateway.config import OAuthUpstreamAuth, ProviderTokenUpstreamAuth, TokenExchangeUpstreamAuth
from gateway.idp.base import ProviderError
from gateway.oauth.authorize import grant_code
from gateway.oauth.consent import build_consent, may_skip_consent
from gateway.oauth.redirects import with_query
from gateway.oauth.scopes import grant_scopes
from gateway.store.records import ClientRecord, IdpStateRecord, PendingAuthorizationRecord, Principal
from gateway.vault import provider_slot
from gateway.web.auditing import audit
from gateway.web.authorize_pages import consent_page, denied_page
from gateway.web.errors import NO_STORE
from gateway.web.render import html_error
from gateway.web.session import BrowserSession
from gateway.web.upstream_connect import redirect_to_upstream

STATE_TTL = 600


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
            return await approve(request, pending, info.route.name, principal, remember=False, session=session)
    return consent_page(request, session, request_id, pending, client, principal, None)


async def approve(
    request: web.Request,
    pending: PendingAuthorizationRecord,
    route: str,
    principal: Principal,
    *,
    remember: bool,
    session: BrowserSession,
    provider_signed_in: bool = False,
) -> web.Response:
    """Issue the code, for the person as they stand now (every path to a code comes here): the account is re-read,
    a sign-in older than login.identity_max_age is refused, and the route's rules are applied again. A route with
    `upstream_auth: oauth` the person has not connected yet sends them to the upstream's server first; its
    callback (gateway.web.upstream_callback) comes back here."""
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
    auth = info.route.upstream_auth  # a route that acts for the user upstream: connected before the code
    if isinstance(auth, OAuthUpstreamAuth) and auth.connect_on_authorize:
        if not await request.app[CONNECTOR_KEY].holds(current.user_id, route):
            return await redirect_to_upstream(request, info, current, session, pending=pending, remember=remember)
    provider = provider_of(auth)
    if (
        provider is not None
        and not provider_signed_in
        and current.user_id.startswith(f"{provider}:")
        and await request.app[CONNECTOR_KEY].vault.load(current.user_id, provider_slot(provider)) is None
    ):  # the provider's token is gone (expired, refused): through the provider again, not a code from the session
        return await redirect_to_provider(request, pending, route, provider)
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


def provider_of(auth: object) -> str | None:
    """The sign-in provider whose token a route's upstream credential is made of (provider_token, or a token
    exchange of the provider's token), if any."""
    if isinstance(auth, ProviderTokenUpstreamAuth):
        return auth.provider
    return auth.subject_provider if isinstance(auth, TokenExchangeUpstreamAuth) else None


def callback_url(request: web.Request, provider: str) -> str:
    """The redirect URI to register at the provider: {public_url}/login/{provider}/callback."""
    return f"{request.app[SETTINGS_KEY].public_url}/login/{provider}/callback"


async def redirect_to_provider(
    request: web.Request, pending: PendingAuthorizationRecord, route: str, provider_name: str
) -> web.StreamResponse:
    """After consent: remember the sign-in (keyed by a fresh state) and send the browser to the provider; its
    callback (gateway.web.federation) ends in `approve`."""
    provider = request.app[PROVIDERS_KEY].get(provider_name)
    if provider is None:
        return html_error("Unknown sign-in method", "That sign-in method is not configured.")
    try:
        start = await provider.start(callback_url(request, provider_name))
    except ProviderError as exc:
        return html_error("Sign-in unavailable", str(exc), status=502)
    record = IdpStateRecord(
        provider=provider_name,
        nonce=start.nonce,
        code_verifier=start.code_verifier,
        route=route,
        pending=pending,
        created_at=request.app[CLOCK_KEY](),
    )
    await request.app[STORE_KEY].save_idp_state(start.state, record, STATE_TTL)
    return web.Response(status=302, headers={"Location": start.url, "Cache-Control": "no-store"})


def with_cookies(page: web.Response, carrier: web.Response) -> web.Response:
    """`page` with the cookies set on `carrier` (a new session's, set before the final page was known)."""
    for morsel in carrier.cookies.values():
        page.cookies[morsel.key] = morsel
    return page
