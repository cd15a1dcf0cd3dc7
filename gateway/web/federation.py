"""Sign-in through an upstream identity provider (the "2-hop" login), with the confused-deputy defences:
consent for this client is given **before** the redirect to the provider, and the provider `state` is stored
only after that consent, single use, for at most 10 minutes (MCP security best practices; AUTHZ-6/7).

The redirect out is gateway.web.approval.redirect_to_provider (it follows consent); this is the way back in."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.app_state import CLOCK_KEY, CONNECTOR_KEY, PROVIDERS_KEY, SETTINGS_KEY, STORE_KEY
from gateway.config import ProviderTokenUpstreamAuth, Settings, TokenExchangeUpstreamAuth
from gateway.idp.base import ProviderError
from gateway.oauth.errors import AccessDeniedError
from gateway.upstream_oauth.client import token_shaped
from gateway.web.approval import approve, callback_url, with_cookies
from gateway.web.auditing import audit
from gateway.web.errors import redirect_error
from gateway.web.render import html_error
from gateway.web.session import load_session, start_session

logger = logging.getLogger(__name__)


async def handle_callback(request: web.Request) -> web.StreamResponse:
    """GET /login/{provider}/callback: verify, sign the person in, apply the route's rules, answer the client."""
    name = request.match_info["provider"]
    state = request.query.get("state", "")
    store, now = request.app[STORE_KEY], request.app[CLOCK_KEY]()
    flight = await store.consume_idp_state(state) if state else None
    session = await load_session(request)
    if flight is None or flight.provider != name:
        return html_error(
            "Sign-in expired", "This sign-in link was already used or has expired. Start again from the application."
        )
    if session is None or session.session_hash != flight.pending.session_hash:
        return html_error("Sign-in expired", "This sign-in was started in another browser session.")
    pending, issuer = flight.pending, request.app[SETTINGS_KEY].public_url
    if "error" in request.query or "code" not in request.query:
        return redirect_error(
            pending.redirect_uri, AccessDeniedError("the identity provider refused the sign-in"), pending.state, issuer
        )
    tokens: dict[str, object] = {}
    provider = request.app[PROVIDERS_KEY][name]
    try:
        principal = await provider.finish(
            request.query["code"],
            flight.nonce,
            flight.code_verifier,
            callback_url(request, name),
            now=now,
            tokens_out=tokens,
        )
    except ProviderError as exc:
        logger.warning("sign-in through %s failed: %s", name, exc)
        audit(request, "oauth.login", method=name, outcome="failed", reason=str(exc)[:200])
        return html_error("Sign-in failed", str(exc))
    audit(request, "oauth.login", method=name, user=principal.user_id, outcome="ok")
    if name in provider_token_users(request.app[SETTINGS_KEY]) and token_shaped(tokens.get("access_token")):
        try:
            client = await provider.token_client()
        except ProviderError:
            client = None
        if client is not None:
            await request.app[CONNECTOR_KEY].keep_provider_tokens(
                principal.user_id, name, tokens, client.token_endpoint, client.client_id
            )
    response = web.Response()
    fresh = await start_session(request, response, principal, replacing=session)
    # the provider confirmed who this is; consent was given before the redirect (gateway.web.approval)
    page = await approve(
        request, pending, flight.route, principal, remember=True, session=fresh, provider_signed_in=True
    )
    return with_cookies(page, response)


def provider_token_users(settings: Settings) -> set[str]:
    """The sign-in providers whose tokens some route sends upstream (`upstream_auth: provider_token`) or exchanges
    (`token_exchange` with `subject_provider`): only their tokens are kept, in the vault, after a sign-in."""
    names = set()
    for route in settings.routes:
        auth = route.upstream_auth
        if isinstance(auth, ProviderTokenUpstreamAuth):
            names.add(auth.provider)
        elif isinstance(auth, TokenExchangeUpstreamAuth) and auth.subject_provider is not None:
            names.add(auth.subject_provider)
    return names
