"""The floor of the chosen stack, for bench/compare.py: an aiohttp server relaying each request to the upstream,
and nothing else (no auth, no policy, no limits, no audit, no metrics). Not a product: it shows how much of the
gateway's cost is the stack itself.

    python bench/bare_proxy.py <listen port> <upstream url> [--pool]

By default the upstream leg is one pooled aiohttp client session (what the gateway used before issue 11); with
--pool it is the gateway's own HTTP/1.1 pool (gateway/proxy/pool.py), so the relay is aiohttp's server and the
gateway's upstream leg with nothing between them: the floor of the gateway as it is now built.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gateway.proxy.pool import UpstreamPool  # noqa: E402

HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


async def make_app(upstream: str, pool: bool) -> web.Application:
    app = web.Application()
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
    ours = UpstreamPool()
    target = urlsplit(upstream)
    origin = (target.scheme, target.hostname or "", target.port or 80)

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

    async def relay_pooled(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP and k.lower() != "host"]
        headers.append(("Host", target.netloc))
        answer = await ours.request(request.method, origin, target.path, headers, body, 300.0)
        chunks = [chunk async for chunk in answer]
        answer.release()
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP}
        return web.Response(status=answer.status, headers=kept, body=b"".join(chunks))

    async def close(_: web.Application) -> None:
        await session.close()
        await ours.close()

    app.router.add_route("*", "/mcp", relay_pooled if pool else relay)
    app.on_cleanup.append(close)
    return app


if __name__ == "__main__":
    try:  # the same event loop as the gateway's
        import uvloop
    except ImportError:
        loop = None
    else:
        loop = uvloop.new_event_loop()
    app = make_app(sys.argv[2], "--pool" in sys.argv[3:])
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=loop)
