"""A trivial, fast upstream for benchmarks: POST answers a fixed JSON-RPC result; GET holds an SSE stream open
and sends one event per second carrying its send time (for the open-streams memory and event-delay probe)."""

from __future__ import annotations

import asyncio
import sys
import time

from aiohttp import web

BODY = b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"42"}]}}'


async def post(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, content_type="application/json")


async def stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    while True:
        await response.write(
            b'data: {"jsonrpc":"2.0","method":"notifications/ping","params":{"t":%.6f}}\n\n' % time.time()
        )
        await asyncio.sleep(1)


app = web.Application()
app.router.add_post("/mcp", post)
app.router.add_get("/mcp", stream)

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
