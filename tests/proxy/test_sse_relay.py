"""SSE streams relayed on a route without a list filter (security review 2, R2 regressions): every SSE stream is
read for its event ids (gateway.mcp.sse), which must not cost what main relayed byte for byte."""

from __future__ import annotations

import gzip

from aiohttp import web

from tests.conftest import route
from tests.support.tokens import issue

ACCEPT = {"Accept": "application/json, text/event-stream"}


def compressing_app() -> web.Application:
    """An upstream behind compression middleware: gzip whenever the request accepts it."""

    async def handle(request: web.Request) -> web.Response:
        body, headers = b"id: 1\ndata: {}\n\n", {"Content-Type": "text/event-stream"}
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/mcp", handle)
    return app


async def test_a_client_accepting_gzip_gets_its_sse_stream(start_gateway, aiohttp_server, aiohttp_client, store):
    """The client's Accept-Encoding reached the upstream, whose gzip SSE answer the gateway then refused (502)."""
    upstream = await aiohttp_server(compressing_app())
    server = await start_gateway([route("alpha", str(upstream.make_url("/mcp")))])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read",))
    headers = {**ACCEPT, "Accept-Encoding": "gzip, deflate", "Authorization": f"Bearer {token}"}
    response = await client.get("/alpha/mcp", headers=headers)
    assert response.status == 200 and response.content_type == "text/event-stream"
    assert "Content-Encoding" not in response.headers
    body = await response.read()
    assert body.startswith(b"id: 1.") and body.endswith(b"\ndata: {}\n\n")
