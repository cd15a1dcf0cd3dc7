"""Request bodies outside the MCP routes: one reader with a small cap of its own (issue 10 #8 and the class of
finding #1: a body read for an OAuth endpoint or a page is bounded by FORM_BODY_LIMIT, not proxy.max_body_bytes).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from gateway.web.body import DEFAULT_RULE, FORM_BODY_LIMIT, RULES
from tests.support.mcp_wire import modern_call, tool_result_text
from tests.support.oauth_client import register
from tests.support.tokens import issue

OVER = FORM_BODY_LIMIT + 1


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/token", "invalid_request"),
        ("/revoke", "invalid_request"),
        ("/register", "invalid_client_metadata"),
        ("/introspect", "invalid_request"),
        ("/userinfo", "invalid_request"),
    ],
)
async def test_an_oversized_body_at_an_oauth_endpoint_is_413_oauth_json(gateway, aiohttp_client, path, error):
    """Before: up to proxy.max_body_bytes (4 MiB) was read and parsed for any endpoint. The cap (the endpoint's
    rule) is checked on Content-Length before reading, and on the bytes received for a chunked body; the error is
    the endpoint's own (RFC 7591 §3.2.2 at /register, RFC 6749 §5.2 elsewhere), readable by browser clients."""
    client = await aiohttp_client(gateway)
    over = RULES.get(path, DEFAULT_RULE).limit + 1

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(over // 1024 + 1):
            yield b"x" * 1024

    for body in (b"a=" + b"x" * over, chunked()):  # sized, then chunked (no Content-Length)
        response = await client.post(path, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status == 413, path
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert (await response.json())["error"] == error


async def test_an_oversized_form_on_a_page_is_413_html(gateway, aiohttp_client):
    client = await aiohttp_client(gateway)
    response = await client.post("/authorize/login", data={"username": "alice", "password": "x" * OVER})
    assert response.status == 413 and response.content_type == "text/html"
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", ["/token", "/authorize/login"])
async def test_multipart_bodies_are_refused(gateway, aiohttp_client, path):
    """Forms are application/x-www-form-urlencoded (RFC 6749 §3.2 and our own pages); multipart (a parser with
    file spooling, fuzzed into a 500) is not read at all."""
    client = await aiohttp_client(gateway)
    body = b'--b\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nx\r\n--b--\r\n'
    response = await client.post(path, data=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status == 400


async def test_handlers_read_the_body_the_middleware_read(gateway, aiohttp_client):
    """JSON (request.read) and forms (request.post) come from aiohttp's cache of the one bounded read."""
    client = await aiohttp_client(gateway)
    registered = await register(client)  # JSON body
    assert registered["client_id"]
    token = await client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "nope",
            "client_id": registered["client_id"],
            "code_verifier": "v" * 43,
            "redirect_uri": registered["redirect_uris"][0],
        },
    )
    assert token.status == 400 and (await token.json())["error"] == "invalid_grant"  # the form was read


async def test_mcp_bodies_keep_their_own_larger_limit(gateway, aiohttp_client, store):
    """MCP routes are not subject to the small cap: their bodies go up to proxy.max_body_bytes."""
    client = await aiohttp_client(gateway)
    token = await issue(store, gateway, "alpha")
    headers, call = modern_call(1, "echo_headers", {})
    call["params"]["_meta"]["padding"] = "x" * (4 * FORM_BODY_LIMIT)
    response = await client.post(
        "/alpha/mcp",
        data=json.dumps(call),
        headers={**headers, "Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status == 200
    assert "x-forwarded-user" in json.loads(await tool_result_text(response))
