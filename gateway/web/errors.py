"""Every error response shape, rendered in one place (RFC 6750 §3, RFC 6749 §5.2, JSON-RPC 2.0)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.mcp.jsonrpc import RequestId, error_body
from gateway.oauth.errors import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def bearer_challenge(metadata_url: str, scopes: tuple[str, ...] | list[str], error: OAuthError | None = None) -> str:
    """`WWW-Authenticate: Bearer …` with exactly one absolute resource_metadata (RFC 9728 §5.1).

    `error` only when a token was presented (RFC 6750 §3.1); `scope` always names what the route needs.
    """
    params = [f'resource_metadata="{metadata_url}"']
    if error is not None:
        params.append(f'error="{error.error}"')
    if scopes:
        params.append(f'scope="{" ".join(scopes)}"')
    if error is not None and error.description:
        params.append(f'error_description="{error.description}"')
    return "Bearer " + ", ".join(params)


def json_error(error: OAuthError, headers: Mapping[str, str] | None = None) -> web.Response:
    """OAuth JSON error (RFC 6749 §5.2) for OAuth endpoints."""
    body: dict[str, str] = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    return web.json_response(body, status=error.status, headers={**NO_STORE, **(headers or {})})


def jsonrpc_error(
    status: int, code: int, message: str, request_id: RequestId = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON-RPC error body with an HTTP status, for MCP routes."""
    return web.json_response(error_body(code, message, request_id), status=status,
                             headers={**NO_STORE, **(headers or {})})
