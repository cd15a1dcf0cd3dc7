"""The gateway's own response headers on MCP answers (X-Request-Id, the CORS headers of an allowed Origin): on
whole and streamed answers, refusals included, and alike both ways in: the server's MCP dispatcher (what
`gateway serve` runs) and the application's router (aiohttp's plain test server)."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession

from gateway.app import create_app
from tests.conftest import free_port, make_settings, route
from tests.support.mcp_wire import legacy_initialize, modern_call
from tests.support.tokens import issue

ORIGIN = "http://localhost:6274"


@pytest.fixture(params=["dispatcher", "router"])
async def start(request, start_gateway, aiohttp_server, redis_url, key_prefix):
    async def go(upstream_url: str):
        routes = [route("alpha", upstream_url)]
        if request.param == "dispatcher":
            return await start_gateway(routes, allowed_origins=[ORIGIN])
        port = free_port()
        settings = make_settings(port, redis_url, key_prefix, routes, allowed_origins=[ORIGIN])
        return await aiohttp_server(create_app(settings), port=port)

    return go


@pytest.mark.parametrize("answer", ["sse", "json"])
async def test_every_mcp_answer_names_its_request_id_and_its_cors_once(start, upstream, json_upstream, store, answer):
    server = await start((upstream if answer == "sse" else json_upstream).url)
    token = await issue(store, server, "alpha")
    if answer == "sse":  # (a 2025-11-25 initialize: the SDK server answers it with an SSE stream)
        headers, body = {"Accept": "application/json, text/event-stream"}, legacy_initialize(7)
    else:
        headers, body = modern_call(7, "echo", {"text": "hi"})
    async with ClientSession() as http:
        url = str(server.make_url("/alpha/mcp"))
        ours = {"Origin": ORIGIN, "X-Request-Id": "trace-7"}
        async with http.post(url, json=body, headers={**headers, **ours, "Authorization": f"Bearer {token}"}) as got:
            assert got.status == 200
            streamed = got.headers["Content-Type"].startswith("text/event-stream")
            assert streamed == (answer == "sse")
            assert got.headers["X-Request-Id"] == "trace-7"
            assert got.headers["Access-Control-Allow-Origin"] == ORIGIN
            vary = [token.strip() for value in got.headers.getall("Vary", []) for token in value.split(",")]
            assert vary.count("Origin") == 1, vary
            await got.read()
        async with http.post(url, json=body, headers={**headers, **ours}) as refused:  # no token: a whole refusal
            assert refused.status == 401
            assert refused.headers["X-Request-Id"] == "trace-7"
            assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
        async with http.post(url, json=body, headers=headers) as plain:  # no Origin: no CORS, a fresh request id
            assert "Access-Control-Allow-Origin" not in plain.headers
            assert len(plain.headers["X-Request-Id"]) == 16


async def test_pages_and_errors_name_their_request_id(start, upstream):
    server = await start(upstream.url)
    async with ClientSession() as http:
        for path, status in (("/healthz", 200), ("/nowhere", 404), ("/token", 405), ("/.well-known/jwks.json", 200)):
            async with http.get(str(server.make_url(path)), headers={"X-Request-Id": "page-1"}) as got:
                assert got.status == status, path
                assert got.headers["X-Request-Id"] == "page-1", path
        async with http.patch(str(server.make_url("/alpha/mcp")), headers={"X-Request-Id": "page-2"}) as other:
            assert other.status == 405 and other.headers["X-Request-Id"] == "page-2"
