"""Fuzzing with bytes that are not UTF-8 in a header (cookie, credentials, MCP headers) on every kind of
endpoint, sent over a raw socket: each answers its own error shape, never a 5xx (security review 2, R4)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from tests.fuzz.shapes import Answer, assert_mcp, assert_oauth_json, assert_page
from tests.fuzz.strategies import raw_header_value
from tests.support.raw_http import raw_request

ENDPOINTS = [
    ("GET", "/authorize?client_id=x", assert_page),
    ("POST", "/authorize/login", assert_page),
    ("POST", "/authorize/consent", assert_page),
    ("GET", "/logout", assert_page),
    ("GET", "/login/x/callback?state=s", assert_page),
    ("POST", "/token", assert_oauth_json),
    ("POST", "/revoke", assert_oauth_json),
    ("POST", "/introspect", assert_oauth_json),
    ("POST", "/register", assert_oauth_json),
    ("GET", "/userinfo", assert_oauth_json),
    ("POST", "/fz/mcp", assert_mcp),
]
HEADERS = ["Cookie", "Authorization", "Origin", "Mcp-Session-Id", "Mcp-Protocol-Version", "X-Forwarded-For", "Host"]


@given(
    endpoint=st.sampled_from(ENDPOINTS),
    header=st.sampled_from(HEADERS),
    value=raw_header_value,
)
async def test_header_bytes_that_are_not_utf8_get_the_endpoints_error_shape(
    fuzz_gateway: Any, endpoint: tuple[str, str, Any], header: str, value: bytes
) -> None:
    method, target, assert_shape = endpoint
    host = b"" if header == "Host" else b"Host: 127.0.0.1\r\n"
    request = (
        f"{method} {target} HTTP/1.1\r\n".encode()
        + host
        + header.encode()
        + b": "
        + value
        + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b"
    )
    reply = await raw_request(fuzz_gateway.host, fuzz_gateway.port, request)
    text = reply.body.decode("utf-8", "replace")
    headers = CIMultiDictProxy(CIMultiDict(reply.headers))
    assert_shape(Answer(reply.status, headers, reply.content_type, text), f"{method} {target} {header}: {value!r}")
