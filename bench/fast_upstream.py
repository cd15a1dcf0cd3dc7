"""A trivial, fast upstream for benchmarks: POST answers a fixed JSON-RPC result; GET holds an SSE stream open
and sends one event per second carrying its send time (for the open-streams memory and event-delay probe). It
raises its own descriptor limit (gateway/fd_limit.py): the gateway's 10,000 streams are 10,000 sockets here."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gateway.fd_limit import raise_descriptor_limit  # noqa: E402

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
    raise_descriptor_limit()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
