"""The authorization request (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, RFC 8707 §2, MCP "Resource Parameter").

`parse_query` bounds what the client sends; `parse_client_redirect` decides whether redirecting is safe at all;
errors after that go back by redirect only to pre-registered clients (`errors_may_redirect`, RFC 9700 §4.11.2),
to an error page otherwise."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.oauth.errors import (
    InvalidRequestError,
    InvalidTargetError,
    UnsafeRedirectError,
    UnsupportedResponseTypeError,
)
from gateway.oauth.pkce import parse_challenge
from gateway.oauth.redirects import redirect_matches, redirect_uri_problem
from gateway.oauth.resource import normalize_resource, same_resource
from gateway.oauth.token_values import hash_token, new_code, parse_scopes
from gateway.routing import RouteInfo
from gateway.store.base import TokenStore
from gateway.store.records import AuthorizationCodeRecord, ClientRecord, PendingAuthorizationRecord, Principal

MAX_PARAMETERS = 32  # distinct names: the request's own (RFC 6749, 7636, 8707, OIDC) plus extensions
MAX_PARAMETER_LENGTH = 2048  # any one value (CIMD client ids, redirect URIs, resource URIs, state)
MAX_RESOURCES = 8  # RFC 8707 values (one distinct resource is allowed; repeats of it are tolerated)
MAX_SCOPES = 32
PRE_REGISTERED_KINDS = frozenset({"config", "static"})  # redirect URIs an administrator configured
_THUMBPRINT = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url SHA-256, unpadded


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    scopes: tuple[str, ...]
    routes: tuple[str, ...]  # one bound route, or the candidates the user picks from on the consent page
    dpop_jkt: str | None = None  # RFC 9449 §10: the code is redeemed only with a proof by this key


def parse_query(items: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """The request's parameters (each at most once, RFC 6749 §3.1) and its `resource` values, all bounded.

    Raises:
        UnsafeRedirectError: too many or too long parameters, or a repeated one (answered with a page: nothing
            about such a request, its client_id and redirect_uri included, is trusted enough to redirect to).
    """
    params: dict[str, str] = {}
    resources: list[str] = []
    for name, value in items:
        if len(name) > 64 or len(value) > MAX_PARAMETER_LENGTH:
            raise UnsafeRedirectError("Invalid request", f"The parameter {name[:64]!r} is too long.")
        if name == "resource":
            resources.append(value)
        elif name in params:
            raise UnsafeRedirectError("Invalid request", f"The parameter {name!r} appears more than once.")
        else:
            params[name] = value
    if len(params) > MAX_PARAMETERS or len(resources) > MAX_RESOURCES:
        raise UnsafeRedirectError("Invalid request", "The request carries too many parameters.")
    if len((params.get("scope") or "").split()) > MAX_SCOPES:
        raise UnsafeRedirectError("Invalid request", f"The request asks for more than {MAX_SCOPES} scopes.")
    return params, resources


def errors_may_redirect(client: ClientRecord) -> bool:
    """Whether request errors go back to the client by redirect (RFC 6749 §4.1.2.1) or to an error page: a
    redirect URI anyone registered (DCR) or published (CIMD) would make /authorize an open redirector
    (RFC 9700 §4.11.2), so only pre-registered clients get the redirect."""
    return client.kind in PRE_REGISTERED_KINDS


def parse_client_redirect(client: ClientRecord | None, client_id: str | None, redirect_uri: str | None) -> str:
    """The redirect URI to answer on.

    Raises:
        UnsafeRedirectError: unknown client, or a redirect URI it did not register (never redirect then).
    """
    if not client_id:
        raise UnsafeRedirectError("Missing client_id", "The request does not say which application is asking.")
    if client is None:
        raise UnsafeRedirectError("Unknown application", "This application is not registered with the gateway.")
    if not redirect_uri:
        if len(client.redirect_uris) == 1:  # RFC 6749 §3.1.2.3: optional when exactly one is registered
            return client.redirect_uris[0]
        raise UnsafeRedirectError("Missing redirect_uri", "The request does not say where to return.")
    if redirect_uri_problem(redirect_uri) is not None or not redirect_matches(client.redirect_uris, redirect_uri):
        raise UnsafeRedirectError(
            "Unregistered redirect URI", "The application asked to return to an address it did not register."
        )
    return redirect_uri


def parse_authorization_request(
    params: dict[str, str],
    resources: list[str],
    client: ClientRecord,
    redirect_uri: str,
    routes: list[RouteInfo],
    host: str,
) -> AuthorizationRequest:
    """Validate the rest of the request once redirecting is known to be safe; `host` is the request's host as
    the route table resolves it (unknown hosts mean public_url's).

    Raises:
        UnsupportedResponseTypeError, InvalidRequestError: bad response_type or PKCE parameters.
        InvalidTargetError: a `resource` that is not one of our routes (RFC 8707 §2).
    """
    if params.get("response_type") != "code":
        raise UnsupportedResponseTypeError("response_type must be code")
    if "code" not in client.response_types:
        raise UnsupportedResponseTypeError("this client did not register the code response type")
    challenge = parse_challenge(params.get("code_challenge"), params.get("code_challenge_method"))
    dpop_jkt = params.get("dpop_jkt")
    if dpop_jkt is not None and not _THUMBPRINT.match(dpop_jkt):
        raise InvalidRequestError("dpop_jkt must be a JWK SHA-256 thumbprint (RFC 9449 §10, RFC 7638)")
    candidates = resolve_routes(resources, routes, host)
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        code_challenge=challenge,
        scopes=parse_scopes(params.get("scope")),
        routes=tuple(info.route.name for info in candidates),
        dpop_jkt=dpop_jkt,
    )


def resolve_routes(resources: list[str], routes: list[RouteInfo], host: str) -> list[RouteInfo]:
    """Routes the grant may bind to: the one `resource` names; for a missing or host-only resource, the only
    route, or the routes on that host (the user picks one on the consent page).

    Raises:
        InvalidTargetError: an unknown, relative or fragment-bearing resource, or several different ones.
    """
    try:
        distinct = list(dict.fromkeys(normalize_resource(r) for r in resources if r))
        parsed = urlsplit(resources[0]) if distinct else None
    except ValueError:
        raise InvalidTargetError("resource is not a valid URI") from None
    if len(distinct) > 1:
        raise InvalidTargetError("one resource per authorization request")
    if distinct:
        resource = resources[0]
        assert parsed is not None
        parts = parsed
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment or "#" in resource:
            raise InvalidTargetError("resource must be an absolute URI without a fragment")
        exact = [info for info in routes if same_resource(info.resource, resource)]
        if exact:
            return exact[:1]
        if parts.path not in ("", "/") or parts.query:
            raise InvalidTargetError("resource is not served by this gateway")
        # host-only resource (clients append "/"): the routes on exactly that origin
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        on_origin = [info for info in routes if info.resource.lower().startswith(origin + "/")]
        if not on_origin:
            raise InvalidTargetError("resource is not served by this gateway")
        return on_origin
    if len(routes) == 1:
        return list(routes)
    on_host = [info for info in routes if info.host == host.lower()]
    if not on_host:
        raise InvalidTargetError("resource is not served by this gateway")
    return on_host


async def grant_code(
    store: TokenStore,
    pending: PendingAuthorizationRecord,
    info: RouteInfo,
    principal: Principal,
    scopes: tuple[str, ...],
    *,
    code_ttl: int,
    now: float,
) -> str:
    """Issue a single-use code bound to client, redirect URI, PKCE challenge, resource, scopes and user."""
    code = new_code()
    await store.save_code(
        hash_token(code),
        AuthorizationCodeRecord(
            grant_id=secrets.token_hex(16),
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            redirect_uri_given=pending.redirect_uri_given,
            code_challenge=pending.code_challenge,
            dpop_jkt=pending.dpop_jkt,
            route=info.route.name,
            resource=info.resource,
            scopes=scopes,
            principal=principal,
            issued_at=now,
            expires_at=now + code_ttl,
        ),
        now=now,
    )
    return code
