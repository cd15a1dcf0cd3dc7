"""routes[].forward_headers, forward_cookies and forward_response_headers are validated with their key paths
(issue 10 #9/#12: extras can never re-admit credentials, the gateway's own headers or origin-wide ones)."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, Settings


def problems(**route: object) -> list[str]:
    try:
        Settings(
            public_url="https://gw.example.com",
            routes=[
                {"name": "ok", "path": "/ok/mcp", "upstream": "http://127.0.0.1:9001/mcp"},
                {"name": "notes", "path": "/notes/mcp", "upstream": "http://127.0.0.1:9001/mcp", **route},
            ],
        )
    except ConfigError as error:
        return error.problems
    return []


def test_plain_extras_are_accepted():
    assert (
        problems(
            forward_headers=["X-Tenant", "baggage"],
            forward_cookies=["theme", "__Host-notes"],
            forward_response_headers=["X-RateLimit-Remaining", "Link"],
        )
        == []
    )


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "Proxy-Authorization",
        "Cookie",
        "Host",
        "Origin",
        "Connection",
        "Transfer-Encoding",
        "Forwarded",
        "X-Forwarded-For",
        "X-Forwarded-User",
        "X_Forwarded_User",
        "x-mcp-scopes",
        "X-Request-Id",
        "Content-Encoding",
        "X-Identity",
        "X-Signed",
    ],
)
def test_forward_headers_never_readmit_credentials_or_the_gateways_own(name):
    found = problems(forward_headers=[name], identity_headers={"X-Identity": "user"}, identity_jwt_header="X-Signed")
    assert found == [f"routes[1].forward_headers: {name!r} can never be forwarded (the gateway sets or guards it)"]


@pytest.mark.parametrize("name", ["mcpgw_session", "__Host-mcpgw_session", "__Secure-mcpgw_x", "MCPGW_csrf"])
def test_forward_cookies_never_name_the_gateways_cookies(name):
    assert problems(forward_cookies=[name]) == [
        f"routes[1].forward_cookies: {name!r} can never be forwarded (the gateway sets or guards it)"
    ]


@pytest.mark.parametrize(
    "name",
    [
        "Set-Cookie",
        "set-cookie2",
        "Access-Control-Allow-Origin",
        "Clear-Site-Data",
        "Strict-Transport-Security",
        "Alt-Svc",
        "Refresh",
        "Location",
        "WWW-Authenticate",
        "Transfer-Encoding",
        "X-Request-Id",
    ],
)
def test_forward_response_headers_never_readmit_origin_wide_ones(name):
    assert problems(forward_response_headers=[name]) == [
        f"routes[1].forward_response_headers: {name!r} can never be forwarded (the gateway sets or guards it)"
    ]


@pytest.mark.parametrize("field", ["forward_headers", "forward_cookies", "forward_response_headers"])
def test_names_must_be_tokens(field):
    assert problems(**{field: ["X Tenant"]}) == [f"routes[1].{field}: 'X Tenant' is not a valid name"]
