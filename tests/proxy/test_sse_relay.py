"""SSE streams relayed on a route without a list filter (security review 2, R2 regressions): every SSE stream is
read for its event ids (gateway.mcp.sse), which must not cost what main relayed byte for byte."""

from __future__ import annotations

import gzip
import json

from aiohttp import web

from gateway.mcp.sse import MAX_EVENT_BYTES
from tests.conftest import route
from tests.support.tokens import issue

BIG = MAX_EVENT_BYTES + 1024 * 1024
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


def big_result_app() -> web.Application:
    """A tools/call answered by one SSE event larger than MAX_EVENT_BYTES (an embedded image), sent in pieces."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'id: ev1\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"image",')
        await response.write(b'"mimeType":"image/png","data":"')
        for _ in range(BIG // 65536):
            await response.write(b"A" * 65536)
        await response.write(b'"}]}}\n\n')
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/mcp", handle)
    return app


async def test_an_event_larger_than_the_filter_bound_is_relayed_whole(
    start_gateway, aiohttp_server, aiohttp_client, store
):
    """The whole-event bound (4 MiB) is the list filter's: without a filter the stream ended before such an event
    (a 200 with an empty body); main relayed it byte for byte, as the gateway does again, with its id bound."""
    upstream = await aiohttp_server(big_result_app())
    server = await start_gateway([route("alpha", str(upstream.make_url("/mcp")))])
    client = await aiohttp_client(server)
    token = await issue(store, server, "alpha", scopes=("alpha:read",))
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {}}}
    response = await client.post("/alpha/mcp", json=call, headers={**ACCEPT, "Authorization": f"Bearer {token}"})
    assert response.status == 200 and response.content_type == "text/event-stream"
    body = await response.read()
    id_line, data_line, *rest = body.split(b"\n")
    assert id_line.startswith(b"id: ev1.") and rest == [b"", b""]
    message = json.loads(data_line.removeprefix(b"data: "))
    assert len(message["result"]["content"][0]["data"]) == BIG


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
