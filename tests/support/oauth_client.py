"""Raw OAuth client steps for tests that look at each HTTP exchange (no SDK in between)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestServer

from gateway.oauth.pkce import s256

REDIRECT = "http://127.0.0.1:33418/callback"


async def register(client: Any, **extra: Any) -> dict[str, Any]:
    body = {
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "client_name": "raw test client",
        "grant_types": ["authorization_code", "refresh_token"],
        **extra,
    }
    response = await client.post("/register", json=body)
    assert response.status == 201, await response.text()
    return dict(await response.json())


def authorize_url(
    server: TestServer,
    client_id: str,
    *,
    verifier: str,
    route: str | None = "alpha",
    redirect_uri: str = REDIRECT,
    **extra: str,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "state": "st-" + verifier[:6],
    }
    if route is not None:
        params["resource"] = str(server.make_url(f"/{route}/mcp"))
    params.update(extra)
    return str(server.make_url("/authorize?" + urlencode(params)))


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def relative(url: str) -> str:
    """Path and query of an absolute URL, for aiohttp's test client (which keeps the cookie jar)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
