"""The JSON endpoints of the authorization server: metadata, /register, /token, /revoke, /introspect, /userinfo.

Each handler parses, calls one protocol function, and renders; OAuthError propagates to the middleware,
which answers RFC 6749 §5.2 JSON. All of these answer CORS with `*` (browser clients; no cookies involved).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.access import AccessPolicy
from gateway.app_state import (
    ASSERTIONS_KEY,
    CLOCK_KEY,
    CORS_HEADERS_KEY,
    DPOP_KEY,
    LIMITER_KEY,
    ROUTES_KEY,
    SETTINGS_KEY,
    STORE_KEY,
)
from gateway.assertions.verifier import grant_principal
from gateway.config import IntrospectionCredential
from gateway.oauth import grants, introspection, machine_grants, revocation
from gateway.oauth.bearer import access_token
from gateway.oauth.client_metadata import parse_metadata_json
from gateway.oauth.errors import (
    InvalidDpopProofError,
    InvalidRequestError,
    OAuthError,
    SlowDownError,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    UseDpopNonceError,
)
from gateway.oauth.grant_types import CLIENT_CREDENTIALS, JWT_BEARER
from gateway.oauth.machine_grants import PRE_REGISTERED
from gateway.oauth.metadata import build_authorization_server_metadata
from gateway.oauth.registration import build_registration_response, parse_registration
from gateway.oauth.scopes import OPENID
from gateway.oauth.token_values import hash_token
from gateway.store.records import AccessTokenRecord, ClientRecord
from gateway.web.auditing import audit
from gateway.web.client_auth import authenticate_client, basic_credentials
from gateway.web.client_ip import client_ip
from gateway.web.cors import DISCOVERY_CORS, OAUTH_EXPOSED_HEADERS
from gateway.web.dpop import DPOP_ALGS
from gateway.web.errors import NO_STORE
from gateway.web.forms import FormError, parse_form

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PUBLIC_CORS = {**DISCOVERY_CORS, "Access-Control-Allow-Methods": "GET, POST, OPTIONS"}
MAX_FIELD_LENGTH = 4096  # characters of one form name or value (tokens ~50, verifiers <= 128, URLs <= 2000)
MAX_ASSERTION_LENGTH = 8192  # a signed JWT (RFC 7523 assertion, client_assertion): RSA-4096 and claims fit
MAX_RESOURCES = 10  # repeated `resource` parameters (RFC 8707 §2 allows several; a token gets one)


def public_cors(handler: Handler) -> Handler:
    """CORS `*` on the answer, errors included, and on the OPTIONS preflight (CORS-1)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=PUBLIC_CORS)
        request[CORS_HEADERS_KEY] = {"Access-Control-Allow-Origin": "*", **OAUTH_EXPOSED_HEADERS}
        return await handler(request)

    return wrapped


@public_cors
async def handle_metadata(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    scopes = [s for route in settings.routes for s in route.scopes]
    body = build_authorization_server_metadata(
        settings.public_url,
        scopes,
        dcr_enabled=settings.oauth.dcr_enabled,
        cimd_enabled=settings.cimd.enabled,
        introspection_enabled=bool(settings.oauth.introspection),
        enterprise_enabled=bool(settings.enterprise.issuers),
    )
    return web.json_response(body, headers={"Cache-Control": "public, max-age=300"})


@public_cors
async def handle_openid_configuration(request: web.Request) -> web.Response:
    """No OIDC Discovery document: we issue no ID tokens (see gateway.oauth.metadata). A 404 with CORS, so browser
    clients (Inspector) read it and use the RFC 8414 document, as every MCP SDK client does first anyway."""
    return web.json_response(
        {
            "error": "not_found",
            "error_description": "this authorization server is not an "
            "OpenID Provider; its metadata is at /.well-known/oauth-authorization-server",
        },
        status=404,
        headers={"Cache-Control": "public, max-age=300"},
    )


@public_cors
async def handle_register(request: web.Request) -> web.Response:
    """RFC 7591 §3: a JSON body under its own small cap (read no further than the cap), every value bounded."""
    settings, store, now = request.app[SETTINGS_KEY], request.app[STORE_KEY], request.app[CLOCK_KEY]()
    if not settings.oauth.dcr_enabled:
        raise web.HTTPNotFound()
    per_address = ("register", settings.oauth.register_rate_per_minute, 60.0)
    if await request.app[LIMITER_KEY].take(client_ip(request), [per_address], reserve=False) > 0:
        raise SlowDownError("too many registrations from this address; retry in a minute")
    try:  # (the body was read and bounded before the handler: gateway.web.body)
        registration = parse_registration(
            parse_metadata_json(await request.read()), now=now, private_use_schemes=settings.oauth.private_use_schemes
        )
    except OAuthError as error:
        audit(request, "oauth.register", outcome=error.error)
        raise
    await store.save_client(registration.record, settings.oauth.dcr_client_idle_ttl)
    record = registration.record
    audit(
        request,
        "oauth.register",
        client=record.client_id,
        client_name=record.client_name,
        redirect_uris=list(record.redirect_uris),
        dropped_redirect_uris=len(registration.dropped_redirect_uris),
        auth_method=record.token_endpoint_auth_method,
    )
    return web.json_response(build_registration_response(registration), status=201, headers=NO_STORE)


@public_cors
async def handle_token(request: web.Request) -> web.Response:
    """Token endpoint (RFC 6749 §3.2): form in, JSON out, never cached, never HTML. A `DPoP` proof (RFC 9449 §5)
    binds what is issued to its key; with `oauth.dpop_nonce` every answer carries a fresh `DPoP-Nonce`."""
    form, resources = await _form(request)
    grant_type = form.get("grant_type")
    now = request.app[CLOCK_KEY]()
    dpop = request.app[DPOP_KEY]
    nonce = await dpop.nonce_headers(now)
    try:
        client = await authenticate_client(request, form)
    except OAuthError as error:
        audit(request, "oauth.token", grant_type=grant_type, client=form.get("client_id"), outcome=error.error)
        error.headers.update(nonce)
        raise
    try:
        url = request.app[SETTINGS_KEY].public_url + "/token"
        proof = await dpop.check(
            request.headers, method="POST", url=url, now=now, required=client.dpop_bound_access_tokens
        )  # (RFC 9449 §5.2: such a client's token requests all carry one)
        issued = await _issue(request, form, resources, client, now=now, jkt=proof.jkt if proof else None)
    except OAuthError as error:
        audit(request, "oauth.token", grant_type=grant_type, client=client.client_id, outcome=error.error)
        error.headers = {**nonce, **error.headers}
        raise
    await request.app[STORE_KEY].touch_client(client.client_id, now)  # (its last use, for the admin listings)
    audit(
        request,
        "oauth.token",
        grant_type=grant_type,
        client=client.client_id,
        outcome="issued",
        scope=issued.get("scope"),
        refresh_token=("refresh_token" in issued),
        user=issued.pop("_user", None),
        dpop=proof is not None or None,
    )
    return web.json_response(issued, headers={**NO_STORE, **nonce})


async def _issue(
    request: web.Request,
    form: dict[str, str],
    resources: list[str],
    client: ClientRecord,
    *,
    now: float,
    jkt: str | None,
) -> dict[str, Any]:
    """The grant's tokens: the person's grants (gateway.oauth.grants) or the machine ones (machine_grants). An
    ID-JAG's answer carries `_user` (for the audit line only, removed before it is sent)."""
    settings, store = request.app[SETTINGS_KEY], request.app[STORE_KEY]
    policy = AccessPolicy(settings, store)
    grant_type = form.get("grant_type")
    routes = request.app[ROUTES_KEY].routes
    if grant_type == CLIENT_CREDENTIALS:
        return await machine_grants.client_credentials(
            form, resources, client, routes=routes, host=request.host, store=store, oauth=settings.oauth,
            policy=policy, now=now, jkt=jkt,
        )  # fmt: skip
    if grant_type == JWT_BEARER:
        assertions = request.app[ASSERTIONS_KEY]
        if not assertions.enterprise:
            raise UnsupportedGrantTypeError("this gateway trusts no enterprise identity provider (enterprise.issuers)")
        assertion = form.get("assertion")
        if not assertion:
            raise InvalidRequestError("assertion is required (RFC 7523 §2.1)")
        if client.is_public or JWT_BEARER not in client.grant_types or client.kind not in PRE_REGISTERED:
            raise UnauthorizedClientError("this client may not present ID-JAGs (a pre-registered confidential "
                                          "client with the jwt-bearer grant)")  # fmt: skip
        issuer, claims = await assertions.identity_grant(assertion, client, now=now)
        principal = grant_principal(issuer, claims, now=now)
        issued = await machine_grants.identity_assertion(
            form, resources, client, claims, principal, routes=routes, store=store, oauth=settings.oauth,
            policy=policy, now=now, ttl=settings.enterprise.access_token_ttl, jkt=jkt,
        )  # fmt: skip
        return {**issued, "_user": principal.user_id}
    known = frozenset(s for route in settings.routes for s in route.scopes) | {OPENID}
    return await grants.exchange(
        form, resources, client, store=store, oauth=settings.oauth, known_scopes=known, policy=policy, now=now,
        jkt=jkt,
    )  # fmt: skip


@public_cors
async def handle_revoke(request: web.Request) -> web.Response:
    """RFC 7009: 200 whether or not the token existed; only the owning client's tokens are revoked."""
    form, _ = await _form(request)
    client = await authenticate_client(request, form)
    kind = await revocation.revoke(request.app[STORE_KEY], client, form.get("token"))
    audit(request, "oauth.revoke", client=client.client_id, token_type=kind)
    return web.Response(status=200, headers=NO_STORE)


async def handle_introspect(request: web.Request) -> web.Response:
    """RFC 7662 for upstreams that want it, behind HTTP Basic credentials from `oauth.introspection`; without any
    configured, the endpoint does not exist (404) and the metadata does not announce it."""
    callers = request.app[SETTINGS_KEY].oauth.introspection
    if not callers:
        raise web.HTTPNotFound()
    credentials = basic_credentials(request)
    if credentials is None or not _introspection_caller(credentials, callers):
        return web.json_response(
            {"error": "invalid_client"},
            status=401,
            headers={**NO_STORE, "WWW-Authenticate": 'Basic realm="introspection"'},
        )
    form, _ = await _form(request)
    body = await introspection.introspect(request.app[STORE_KEY], form.get("token"), now=request.app[CLOCK_KEY]())
    return web.json_response(body, headers=NO_STORE)


@public_cors
async def handle_userinfo(request: web.Request) -> web.Response:
    """Claims of the user behind an access token whose audiences include this endpoint: the tokens of a grant
    that asked for the `openid` scope (OIDC Core §5.3; its route stays the other audience).

    Audience is checked as on every MCP route (RFC 8707): a token bound to one MCP route without `openid` is a
    token for that route only, so it is refused here with invalid_token, like a token of another route."""
    try:
        record = await _userinfo_token(request)
    except (InvalidDpopProofError, UseDpopNonceError) as error:  # RFC 9449 §7.1, §9: a DPoP challenge
        challenge = f'DPoP algs="{DPOP_ALGS}", error="{error.error}", error_description="{error.description}"'
        return web.json_response(
            {"error": error.error, "error_description": error.description},
            status=401,
            headers={**NO_STORE, **error.headers, "WWW-Authenticate": challenge},
        )
    if record is None:
        error = 'Bearer error="invalid_token"' if "Authorization" in request.headers else "Bearer"
        return web.json_response(
            {"error": "invalid_token"}, status=401, headers={**NO_STORE, "WWW-Authenticate": error}
        )
    if OPENID not in record.scopes:
        description = "this access token is for its MCP server only (RFC 8707); ask for the openid scope"
        return web.json_response(
            {"error": "invalid_token", "error_description": description},
            status=401,
            headers={
                **NO_STORE,
                "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"',
            },
        )
    body: dict[str, Any] = {
        "sub": record.user_id,
        "preferred_username": record.preferred_username,
        "email": record.email,
        "groups": list(record.groups),
    }
    return web.json_response({k: v for k, v in body.items() if v is not None}, headers=NO_STORE)


async def _userinfo_token(request: web.Request) -> AccessTokenRecord | None:
    """The usable access token of a /userinfo request: a Bearer token, or a DPoP-bound one with the DPoP scheme and
    a proof by its key for this URL (RFC 9449 §7: a bound token is never accepted as a Bearer token).

    Raises:
        InvalidTokenError: a malformed Authorization header.
        InvalidDpopProofError, UseDpopNonceError: a bound token whose proof fails (answered with a DPoP challenge).
    """
    presented = access_token(request.headers.get("Authorization"))
    if presented is None:
        return None
    token, dpop = presented
    token_hash = hash_token(token)
    now = request.app[CLOCK_KEY]()
    record = await request.app[STORE_KEY].load_access_token(token_hash)
    if record is None or not record.usable(now) or dpop != (record.cnf_jkt is not None):
        return None
    if record.cnf_jkt is not None:
        url = request.app[SETTINGS_KEY].public_url + "/userinfo"
        proof = await request.app[DPOP_KEY].check(
            request.headers, method=request.method, url=url, now=now, token_hash=token_hash, required=True
        )
        if proof is None or proof.jkt != record.cnf_jkt:
            raise InvalidDpopProofError("the DPoP proof is not signed by the key this access token is bound to")
    return record


def _introspection_caller(credentials: tuple[str, str], callers: list[IntrospectionCredential]) -> bool:
    """A configured name with its secret. Unknown names fail (never a comparison with a stand-in value); digests
    are compared so the time taken says nothing about the secret's length."""
    name, secret = credentials
    expected = next((c.secret.get_secret_value() for c in callers if c.name == name), None)
    presented = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
    wanted = hashlib.sha256((expected or "").encode()).digest()
    return secrets.compare_digest(presented, wanted) and expected is not None


async def _form(request: web.Request) -> tuple[dict[str, str], list[str]]:
    """Form fields and the (repeatable, RFC 8707) `resource` values, every one bounded; a repeated other field, a
    body that is not a form (multipart included), or one over a bound is invalid_request (RFC 6749 §3.2), never a
    500 (a body over the cap was refused with 413 before the handler: gateway.web.body)."""
    try:
        form = await parse_form(request)
    except FormError as exc:
        raise InvalidRequestError(f"{exc} (RFC 6749 §3.2: application/x-www-form-urlencoded)") from None
    fields: dict[str, str] = {}
    for name, value in form.items():
        limit = MAX_ASSERTION_LENGTH if name in ("assertion", "client_assertion") else MAX_FIELD_LENGTH
        if len(name) > MAX_FIELD_LENGTH or len(value) > limit:
            raise InvalidRequestError(f"a form field has at most {limit} characters")
        if name in fields and name != "resource":
            raise InvalidRequestError(f"{name[:64]} appears more than once")
        fields.setdefault(name, value)
    resources = form.getall("resource", [])
    if len(resources) > MAX_RESOURCES:
        raise InvalidRequestError(f"at most {MAX_RESOURCES} resource parameters")
    return fields, resources
