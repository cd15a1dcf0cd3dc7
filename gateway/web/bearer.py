"""The bearer token of a request (RFC 6750 §2.1: the Authorization header only), for endpoints other than the
MCP routes (userinfo); the check itself is gateway.oauth.bearer."""

from __future__ import annotations

from aiohttp import web

from gateway.oauth.bearer import bearer_token as _from_header


def bearer_token(request: web.Request) -> str | None:
    """The presented bearer token; None when there are no Bearer credentials.

    Raises:
        InvalidTokenError: a Bearer header that is not a well-formed b64token.
    """
    return _from_header(request.headers.get("Authorization"))
