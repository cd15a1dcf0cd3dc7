"""Bytes that are not UTF-8 in headers, cookies, forms and queries get the endpoint's error shape, never a 500
(security review 2, R4): aiohttp keeps such header bytes as lone surrogates, which broke every later encode
(hashing the session cookie, forwarding upstream). Pages answer HTML, OAuth endpoints OAuth JSON, MCP routes
JSON-RPC."""

from __future__ import annotations

import json

import pytest

from tests.support.raw_http import raw_request

FORM = b"Content-Type: application/x-www-form-urlencoded"
CASES = [
    (b"GET /logout HTTP/1.1\r\nHost: h\r\nCookie: mcpgw_session=\xff\xfe\r\n\r\n", "text/html"),
    (
        b"POST /logout HTTP/1.1\r\nHost: h\r\nCookie: mcpgw_session=\xc3\r\n" + FORM + b"\r\nContent-Length: 0\r\n\r\n",
        "text/html",
    ),
    (b"GET /login/nope/callback?state=%ff HTTP/1.1\r\nHost: h\r\nCookie: mcpgw_session=\xff\r\n\r\n", "text/html"),
    (b"GET /authorize?client_id=x HTTP/1.1\r\nHost: h\r\nCookie: a=1; mcpgw_session=\xe9\xe9\r\n\r\n", "text/html"),
    (
        b"POST /authorize/login HTTP/1.1\r\nHost: h\r\n" + FORM + b"; charset=bogus\r\nContent-Length: 3\r\n\r\na=b",
        "text/html",
    ),
    (
        b"POST /authorize/consent HTTP/1.1\r\nHost: h\r\n" + FORM + b"\r\nContent-Length: 9\r\n\r\nstate=%ff",
        "text/html",
    ),
    (
        b"POST /token HTTP/1.1\r\nHost: h\r\nCookie: mcpgw_session=\xff\r\n"
        + FORM
        + b"\r\nContent-Length: 3\r\n\r\na=b",
        "oauth",
    ),
    (b"POST /token HTTP/1.1\r\nHost: h\r\n" + FORM + b"; charset=bogus\r\nContent-Length: 3\r\n\r\na=b", "oauth"),
    (b"POST /revoke HTTP/1.1\r\nHost: h\r\n" + FORM + b"\r\nContent-Length: 9\r\n\r\ntoken=%ff", "oauth"),
    (
        b"POST /token HTTP/1.1\r\nHost: h\r\nAuthorization: Basic \xff\xff\r\n"
        + FORM
        + b"\r\nContent-Length: 0\r\n\r\n",
        "oauth",
    ),
    (b"GET /userinfo HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer mcpgw_at_\xff\r\n\r\n", "oauth"),
    (b"POST /alpha/mcp HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \xff\r\nContent-Length: 2\r\n\r\n{}", "jsonrpc"),
    (b"POST /alpha/mcp HTTP/1.1\r\nHost: h\r\nMcp-Session-Id: \xfe\r\nContent-Length: 2\r\n\r\n{}", "jsonrpc"),
]


@pytest.mark.parametrize(
    ("request_bytes", "shape"),
    CASES,
    ids=[c[0].split(b"\r\n")[0].decode("latin-1") + f" #{n}" for n, c in enumerate(CASES)],
)
async def test_bytes_that_are_not_utf8_get_the_endpoints_error_shape(gateway, request_bytes, shape):
    reply = await raw_request(gateway.host, gateway.port, request_bytes)
    assert 400 <= reply.status < 500, (reply.status, reply.body[:300])
    assert b"Traceback" not in reply.body
    if shape == "text/html":
        assert reply.content_type == "text/html"
        return
    assert reply.content_type == "application/json"
    body = json.loads(reply.body)
    if shape == "oauth":
        assert isinstance(body.get("error"), str)
    else:
        assert body["jsonrpc"] == "2.0" and isinstance(body["error"]["code"], int)
    if reply.status == 401:
        assert reply.headers.get("www-authenticate", "").startswith("Bearer")
