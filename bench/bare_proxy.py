"""The floor of the chosen stack, for bench/compare.py: an aiohttp server relaying each request to the upstream
with one pooled aiohttp client session, and nothing else (no auth, no policy, no limits, no audit, no metrics).
Not a product: it shows how much of the gateway's cost is aiohttp itself.

    python bench/bare_proxy.py <listen port> <upstream url>
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web

HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


async def make_app(upstream: str) -> web.Application:
    app = web.Application()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with session.request(request.method, upstream, headers=headers, data=body) as answer:
            response = web.StreamResponse(
                status=answer.status, headers={k: v for k, v in answer.headers.items() if k.lower() not in HOP}
            )
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def close(_: web.Application) -> None:
        await session.close()

    app.router.add_route("*", "/mcp", relay)
    app.on_cleanup.append(close)
    return app


if __name__ == "__main__":
    try:  # the same event loop as the gateway's
        import uvloop
    except ImportError:
        loop = None
    else:
        loop = uvloop.new_event_loop()
    web.run_app(make_app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=loop)
