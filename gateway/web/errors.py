"""Every error response shape, rendered in one place (RFC 6750 §3, RFC 6749 §5.2, JSON-RPC 2.0)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.mcp.jsonrpc import RequestId, error_body
from gateway.oauth.dpop import ALGORITHMS as DPOP_ALGORITHMS
from gateway.oauth.errors import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Refusal(Exception):
    """Ends an MCP request with `response` (a JSON-RPC error, a challenge, a preflight answer): the one way a step
    of the MCP route (gateway.web.mcp) stops the request. `reason` counts it in mcpgw_auth_failures (None: not
    counted there)."""

    def __init__(self, response: web.StreamResponse, reason: str | None = None) -> None:
        super().__init__(reason)
        self.response, self.reason = response, reason


def bearer_challenge(
    metadata_url: str,
    scopes: tuple[str, ...] | list[str],
    error: OAuthError | None = None,
    *,
    scheme: str = "Bearer",
) -> str:
    """`WWW-Authenticate: Bearer …` with exactly one absolute resource_metadata (RFC 9728 §5.1).

    `error` only when a token was presented (RFC 6750 §3.1); `scope` always names what the route needs. The DPoP
    scheme (RFC 9449 §7.1) also names the proof algorithms accepted (`algs`).
    """
    params = [f'resource_metadata="{metadata_url}"']
    if scheme == "DPoP":
        params.append(f'algs="{" ".join(DPOP_ALGORITHMS)}"')
    if error is not None:
        params.append(f'error="{error.error}"')
    if scopes:
        params.append(f'scope="{" ".join(scopes)}"')
    if error is not None and error.description:
        params.append(f'error_description="{error.description}"')
    return f"{scheme} " + ", ".join(params)


def redirect_error(redirect_uri: str, error: OAuthError, state: str | None, issuer: str) -> web.Response:
    """RFC 6749 §4.1.2.1 with RFC 9207 `iss`: only for a client and redirect URI already verified."""
    from gateway.oauth.redirects import with_query

    location = with_query(
        redirect_uri,
        {"error": error.error, "error_description": error.description or None, "state": state, "iss": issuer},
    )
    return web.Response(status=302, headers={"Location": location, **NO_STORE})


def json_error(error: OAuthError, headers: Mapping[str, str] | None = None) -> web.Response:
    """OAuth JSON error (RFC 6749 §5.2) for OAuth endpoints."""
    body: dict[str, str] = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    extra: dict[str, str] = {}
    if error.error == "invalid_client":
        extra["WWW-Authenticate"] = 'Basic realm="mcp-auth-gateway"'  # RFC 6749 §5.2
    elif error.error == "invalid_token":
        extra["WWW-Authenticate"] = 'Bearer error="invalid_token"'  # RFC 6750 §3: every 401 carries one
    if error.status == 429:
        extra["Retry-After"] = "60"  # callers that know better pass their own in `headers`
    return web.json_response(
        body, status=error.status, headers={**NO_STORE, **extra, **error.headers, **(headers or {})}
    )


def jsonrpc_error(
    status: int, code: int, message: str, request_id: RequestId = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON-RPC error body with an HTTP status, for MCP routes."""
    return web.json_response(
        error_body(code, message, request_id), status=status, headers={**NO_STORE, **(headers or {})}
    )
