"""The gateway as a client of one upstream authorization server: which client it is there (registration), the
authorization request it sends the browser with, and its token requests (code, refresh, revocation).

Registration, in order (the contract): the route's configured `client_id` (with `client_secret`, sent as HTTP
Basic); the gateway's own Client ID Metadata Document at `{public_url}/upstream/client/<route>` when the server
supports CIMD and `public_url` is https (a CIMD client_id must be); else RFC 7591 dynamic registration, done once
per (route, server) and kept sealed in the vault (a public client with PKCE unless the server offers
client_secret_basic)."""

from __future__ import annotations

import base64
import logging
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from gateway.config import OAuthUpstreamAuth
from gateway.config.upstream_auth import MAX_VALUE_CHARS
from gateway.oauth.redirects import with_query
from gateway.store.records import UpstreamClientRecord, UpstreamCredentialRecord
from gateway.upstream_oauth.discovery import ServerMetadata
from gateway.upstream_oauth.http import UpstreamOAuthError, call_json
from gateway.vault import Vault

logger = logging.getLogger(__name__)
CLIENT_DOCUMENT_PATH = "/upstream/client/{route}"
CALLBACK_PATH = "/upstream/callback/{route}"  # under the contract's {public_url}/upstream/callback, one per route
MAX_LIFETIME = 10 * 365 * 86400.0
ENDED = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})  # a refresh that cannot succeed


class GrantRevokedError(Exception):
    """The server refused the refresh (`invalid_grant`; or `invalid_client` / `unauthorized_client`: the gateway's
    client there is gone, a registration deleted): the credential is gone, the user connects again."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class UpstreamClient:
    client_id: str
    client_secret: str | None = None


def callback_url(public_url: str, route: str) -> str:
    """The redirect URI of one route's connections: a distinct one per route, so an authorization server of one
    route cannot have a code of another route's server sent to its own token endpoint (mix-up, RFC 9700 §4.4)."""
    return public_url + CALLBACK_PATH.format(route=quote(route, safe=""))


def client_document_url(public_url: str, route: str) -> str:
    return public_url + CLIENT_DOCUMENT_PATH.format(route=quote(route, safe=""))


def client_document(public_url: str, route: str) -> dict[str, Any]:
    """The gateway's Client ID Metadata Document for one route (a public client: PKCE, no secret)."""
    return {
        "client_id": client_document_url(public_url, route),
        "client_name": f"MCP gateway ({route})",
        "client_uri": public_url,
        "redirect_uris": [callback_url(public_url, route)],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }


async def client_for(
    http: aiohttp.ClientSession,
    vault: Vault,
    public_url: str,
    route: str,
    auth: OAuthUpstreamAuth,
    meta: ServerMetadata,
) -> UpstreamClient:
    """Raises UpstreamOAuthError when the server offers no way to be its client."""
    if auth.client_id is not None:
        secret = auth.client_secret.get_secret_value() if auth.client_secret is not None else None
        return UpstreamClient(auth.client_id, secret)
    if meta.cimd and public_url.startswith("https://"):
        return UpstreamClient(client_document_url(public_url, route))
    if meta.registration_endpoint is None:
        raise UpstreamOAuthError(
            f"the authorization server of route {route} offers neither client metadata documents (for an https"
            " public_url) nor dynamic registration: configure upstream_auth.client_id"
        )
    issuer = meta.issuer or meta.token_endpoint
    saved = await vault.load_client(route, issuer)
    if saved is None:
        await vault.save_client(
            route, issuer, await _register(http, public_url, route, auth, meta.registration_endpoint)
        )
        saved = await vault.load_client(route, issuer)  # (two registering at once: the first one kept is used)
    if saved is None:
        raise UpstreamOAuthError(f"the client registration for route {route} could not be kept")
    return UpstreamClient(saved.client_id, saved.client_secret)


async def _register(
    http: aiohttp.ClientSession, public_url: str, route: str, auth: OAuthUpstreamAuth, endpoint: str
) -> UpstreamClientRecord:
    document = {k: v for k, v in client_document(public_url, route).items() if k != "client_id"}
    status, body, _ = await call_json(
        http, "POST", endpoint, timeout=auth.timeout, what="client registration endpoint", json=document
    )
    client_id = body.get("client_id") if isinstance(body, dict) else None
    secret = body.get("client_secret") if isinstance(body, dict) else None
    if status not in (200, 201) or not token_shaped(client_id) or (secret is not None and not token_shaped(secret)):
        raise UpstreamOAuthError(f"the client registration at {endpoint} failed ({status})")
    logger.info("registered at %s for route %s as client %s", endpoint, route, str(client_id)[:64])
    return UpstreamClientRecord(client_id=str(client_id), client_secret=secret, registered_at=time.time())


def authorization_request(
    meta: ServerMetadata, client: UpstreamClient, redirect_uri: str, state: str, challenge: str
) -> str:
    """The URL the browser is sent to (RFC 6749 §4.1.1 with PKCE S256 and RFC 8707 `resource`)."""
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "scope": " ".join(meta.scopes) or None,
        "resource": meta.resource,
    }
    return with_query(meta.authorization_endpoint, params)


async def token_request(
    http: aiohttp.ClientSession,
    endpoint: str,
    client: UpstreamClient,
    form: dict[str, str],
    timeout: float,
    *,
    refreshing: bool = False,
) -> dict[str, Any]:
    """A 2xx token answer with a usable access token.

    Raises:
        GrantRevokedError: a refresh the server refused (`invalid_grant`).
        UpstreamOAuthError: anything else.
    """
    headers = {"Accept": "application/json"}
    if client.client_secret is not None:
        headers["Authorization"] = basic(client.client_id, client.client_secret)
    else:
        form = {**form, "client_id": client.client_id}
    status, body, _ = await call_json(
        http, "POST", endpoint, timeout=timeout, what="token endpoint", data=form, headers=headers
    )
    error = body.get("error") if isinstance(body, dict) else None  # (GitHub says errors with a 200)
    if status // 100 != 2 or error is not None:
        code = printable(error)
        if refreshing and code in ENDED:
            raise GrantRevokedError(code or "")
        raise UpstreamOAuthError(f"the token endpoint {endpoint} refused: {status} {code or 'no error code'}")
    if not isinstance(body, dict):  # (a 2xx that is HTML, an array, nothing)
        raise UpstreamOAuthError(f"the token endpoint {endpoint} gave no usable bearer token")
    token, token_type = body.get("access_token"), body.get("token_type")
    if not token_shaped(token) or not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise UpstreamOAuthError(f"the token endpoint {endpoint} gave no usable bearer token")
    return body


def credential_from(
    answer: dict[str, Any],
    meta_endpoint: str,
    client: UpstreamClient,
    *,
    now: float,
    configured_secret: bool,
    previous: UpstreamCredentialRecord | None = None,
    revocation_endpoint: str | None = None,
    issuer: str | None = None,
    resource: str | None = None,
) -> UpstreamCredentialRecord:
    """The record to keep from a token answer; a refresh answer without a new refresh token keeps the old one
    (RFC 6749 §6: the server may or may not rotate it)."""
    refresh = answer.get("refresh_token")
    lifetime = seconds(answer.get("expires_in"))
    scope = answer.get("scope")
    return UpstreamCredentialRecord(
        access_token=str(answer["access_token"]),
        refresh_token=str(refresh) if token_shaped(refresh) else (previous.refresh_token if previous else None),
        expires_at=now + lifetime if lifetime is not None and math.isfinite(lifetime) else None,
        scope=scope[:2048] if isinstance(scope, str) else (previous.scope if previous else None),
        token_endpoint=meta_endpoint,
        revocation_endpoint=revocation_endpoint if previous is None else previous.revocation_endpoint,
        client_id=client.client_id,
        client_secret=None if configured_secret else client.client_secret,
        issuer=issuer if previous is None else previous.issuer,
        resource=resource if previous is None else previous.resource,
        issued_at=now,
    )


async def revoke(http: aiohttp.ClientSession, record: UpstreamCredentialRecord, client: UpstreamClient) -> bool:
    """RFC 7009 at the server, refresh token first (that ends the grant); True when it said 200."""
    if record.revocation_endpoint is None:
        return False
    token, hint = (
        (record.refresh_token, "refresh_token") if record.refresh_token else (record.access_token, "access_token")
    )
    headers = {"Accept": "application/json"}
    form = {"token": token or "", "token_type_hint": hint}
    if client.client_secret is not None:
        headers["Authorization"] = basic(client.client_id, client.client_secret)
    else:
        form["client_id"] = client.client_id
    try:
        status, _, _ = await call_json(
            http, "POST", record.revocation_endpoint, timeout=10, what="revocation endpoint", data=form, headers=headers
        )
    except UpstreamOAuthError as exc:
        logger.warning("revocation failed: %s", exc)
        return False
    return status == 200


def token_shaped(value: object) -> bool:
    """A token the gateway may put in a header line: visible ASCII (no header injection), at most 8192."""
    return isinstance(value, str) and 0 < len(value) <= MAX_VALUE_CHARS and all("!" <= c <= "~" for c in value)


def seconds(value: object) -> float | None:
    """`expires_in` as seconds (a huge number: infinite), or None when it is no number ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return math.inf if value > 0 else None
    if seconds > MAX_LIFETIME:  # (a date this far off is none: used until the server refuses it)
        return math.inf
    return seconds if seconds >= 0 else None


def basic(client_id: str, secret: str) -> str:
    """client_secret_basic (RFC 6749 §2.3.1: both parts form-urlencoded first)."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def printable(value: object) -> str | None:
    """An error code from a server, safe for one log line."""
    if not isinstance(value, str):
        return None
    return "".join(c for c in value[:64] if "!" <= c <= "~") or None
