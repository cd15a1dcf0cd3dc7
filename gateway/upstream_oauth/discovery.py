"""Where an upstream's authorization server is and what it supports, found as an MCP client finds it (MCP
authorization, "Authorization Server Discovery"): the upstream's 401 `WWW-Authenticate` names its RFC 9728
metadata (else the well-known URLs), that names the authorization server, whose RFC 8414 metadata (else OpenID
Connect discovery) gives the endpoints. Each document is held to its RFC: the resource is the upstream's own URL,
the issuer is the one asked for, PKCE S256 is offered, endpoints are https (http on loopback only)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from gateway.config import OAuthUpstreamAuth
from gateway.config.upstream_auth import endpoint_problem, http_hosts_of, internal_host
from gateway.oauth.resource import PRM_WELL_KNOWN, metadata_url, same_resource
from gateway.upstream_oauth.http import UpstreamOAuthError, call_json, get_document

CACHE_SECONDS = 3600
DISCOVERY_CALLS = 3  # the whole discovery may take this many calls' time
MAX_SCOPES = 64
_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*"([^"]{0,2048})"')
REQUIRED = frozenset({"authorization_endpoint", "token_endpoint"})
PROBE = b'{"jsonrpc":"2.0","id":0,"method":"ping"}'


@dataclass(frozen=True)
class ServerMetadata:
    """What the gateway needs of one upstream's authorization server."""

    authorization_endpoint: str
    token_endpoint: str
    issuer: str | None = None
    registration_endpoint: str | None = None
    revocation_endpoint: str | None = None
    scopes: tuple[str, ...] = ()
    cimd: bool = False  # client_id_metadata_document_supported
    iss_required: bool = False  # authorization_response_iss_parameter_supported (RFC 9207)
    resource: str | None = None  # RFC 8707 resource of the tokens (the upstream's, from its metadata)


def configured(auth: OAuthUpstreamAuth) -> ServerMetadata:
    """A plain OAuth provider's endpoints, as configured."""
    assert auth.authorization_endpoint is not None and auth.token_endpoint is not None
    return ServerMetadata(
        authorization_endpoint=auth.authorization_endpoint,
        token_endpoint=auth.token_endpoint,
        issuer=auth.issuer,
        revocation_endpoint=auth.revocation_endpoint,
        scopes=tuple(auth.scopes),
        iss_required=auth.issuer is not None,
        resource=auth.resource,
    )


class Discovery:
    """Discovered metadata per upstream URL, kept CACHE_SECONDS per process (a failure is not kept)."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self._http = http
        self._cached: dict[tuple[object, ...], tuple[ServerMetadata, float]] = {}  # (configured upstreams only)

    async def metadata(self, upstream: str, auth: OAuthUpstreamAuth) -> ServerMetadata:
        if not auth.discovered:
            return configured(auth)
        key = (upstream, tuple(auth.scopes), auth.resource)  # (what the route's own settings change in the result)
        cached = self._cached.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            async with asyncio.timeout(DISCOVERY_CALLS * auth.timeout):  # (every step's own deadline, and one for all)
                found = await discover(self._http, upstream, auth)
        except TimeoutError:
            raise UpstreamOAuthError(f"discovering the authorization server of {upstream} took too long") from None
        self._cached[key] = (found, time.monotonic() + CACHE_SECONDS)
        return found


async def discover(http: aiohttp.ClientSession, upstream: str, auth: OAuthUpstreamAuth) -> ServerMetadata:
    """Raises UpstreamOAuthError naming the step that failed. What the upstream's documents name is held to https
    (plain http: gateway.config.upstream_auth.http_hosts_of)."""
    # where the upstream's documents may point: plain http on its own host; internal addresses only for an upstream
    # that is itself on one (a public upstream naming 10.0.0.5 or 169.254.169.254 is an SSRF attempt)
    local = {"http_hosts": http_hosts_of(upstream), "internal_ok": internal_host(urlsplit(upstream).hostname or "")}
    challenge = await _challenge(http, upstream, auth.timeout)
    prm = await _protected_resource(http, upstream, challenge.get("resource_metadata"), auth.timeout, local)
    servers = prm.get("authorization_servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], str):
        raise UpstreamOAuthError(f"the protected resource metadata of {upstream} names no authorization server")
    issuer = servers[0]
    if (problem := endpoint_problem(issuer, allow_query=False, **local)) is not None:
        raise UpstreamOAuthError(f"the authorization server {issuer!r} of {upstream} is unusable: {problem}")
    document = await _server_metadata(http, issuer, auth.timeout)
    found = {
        name: _endpoint(document, name, issuer, local, required=name in REQUIRED)
        for name in ("authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint")
    }
    scopes = challenge.get("scope", "").split() or _strings(prm.get("scopes_supported"))
    return ServerMetadata(
        authorization_endpoint=found["authorization_endpoint"] or "",
        token_endpoint=found["token_endpoint"] or "",
        issuer=issuer,
        registration_endpoint=found["registration_endpoint"],
        revocation_endpoint=found["revocation_endpoint"],
        scopes=tuple(auth.scopes) or tuple(scopes[:MAX_SCOPES]),
        cimd=document.get("client_id_metadata_document_supported") is True,
        iss_required=document.get("authorization_response_iss_parameter_supported") is True,
        resource=auth.resource or str(prm["resource"]),
    )


async def _challenge(http: aiohttp.ClientSession, upstream: str, timeout: float) -> dict[str, str]:
    """The parameters of the upstream's Bearer challenge to a request without a token (none: {})."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
        "Mcp-Method": "ping",
    }
    status, _, answer = await call_json(
        http, "POST", upstream, timeout=timeout, what="MCP server", data=PROBE, headers=headers
    )
    given = answer.get("WWW-Authenticate", "") if status == 401 else ""
    if not given.lower().startswith("bearer"):
        return {}
    return {name.lower(): value for name, value in _PARAM.findall(given)}


async def _protected_resource(
    http: aiohttp.ClientSession, upstream: str, named: str | None, timeout: float, local: dict[str, Any]
) -> dict[str, Any]:
    """RFC 9728 metadata: the URL the challenge names, else the path-inserted and the root well-known URLs."""
    parts = urlsplit(upstream)
    candidates = [named] if named else [metadata_url(upstream), urlunsplit((*parts[:2], PRM_WELL_KNOWN, "", ""))]
    failures = []
    for url in candidates:
        assert url is not None
        if (problem := endpoint_problem(url, **local)) is not None:
            raise UpstreamOAuthError(f"the upstream {upstream} names unusable resource metadata: {problem}")
        try:
            document = await get_document(http, url, timeout=timeout, what="protected resource metadata")
        except UpstreamOAuthError as exc:
            failures.append(str(exc))
            continue
        if not isinstance(document.get("resource"), str) or not same_resource(document["resource"], upstream):
            raise UpstreamOAuthError(
                f"the protected resource metadata at {url} is for another resource than {upstream} (RFC 9728 §3.3)"
            )
        return document
    raise UpstreamOAuthError(
        f"no protected resource metadata found for {upstream} ({'; '.join(failures)}); is it OAuth-protected?"
    )


async def _server_metadata(http: aiohttp.ClientSession, issuer: str, timeout: float) -> dict[str, Any]:
    """RFC 8414 §3 (path inserted), then OpenID Connect discovery both ways; `issuer` must be the one asked for."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc}"
    candidates = [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
        f"{issuer.rstrip('/')}/.well-known/openid-configuration",
    ]
    failures = []
    for url in dict.fromkeys(candidates):
        try:
            document = await get_document(http, url, timeout=timeout, what="authorization server metadata")
        except UpstreamOAuthError as exc:
            failures.append(str(exc))
            continue
        if document.get("issuer") != issuer:
            raise UpstreamOAuthError(
                f"the authorization server metadata at {url} names another issuer than {issuer} (RFC 8414 §3.3)"
            )
        if "S256" not in _strings(document.get("code_challenge_methods_supported")):
            raise UpstreamOAuthError(f"the authorization server {issuer} does not offer PKCE S256")
        return document
    raise UpstreamOAuthError(f"no authorization server metadata found for {issuer} ({'; '.join(failures)})")


def _endpoint(document: dict[str, Any], name: str, issuer: str, local: dict[str, Any], *, required: bool) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise UpstreamOAuthError(f"the authorization server {issuer} gives no usable {name}")
    if (problem := endpoint_problem(value, **local)) is not None:
        raise UpstreamOAuthError(f"the authorization server {issuer} gives an unusable {name}: {problem}")
    return value


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
