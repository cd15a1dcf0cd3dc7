"""The floor of the chosen stack, for bench/compare.py: an aiohttp server relaying each request to the upstream,
and nothing else (no auth, no policy, no limits, no audit, no metrics). Not a product: it shows how much of the
gateway's cost is the stack itself.

    python bench/bare_proxy.py <listen port> <upstream url> [--pool | --raw]

By default the upstream leg is one pooled aiohttp client session (what the gateway used before issue 11); with
--pool it is the gateway's own HTTP/1.1 pool (gateway/proxy/pool.py), so the relay is aiohttp's server and the
gateway's upstream leg with nothing between them: the floor of the gateway as it is now built. With --raw the
server side is not aiohttp's either but an asyncio protocol parsing requests with httptools (llhttp) and writing
each answer as one pre-encoded block: what the floor would be if MCP requests bypassed aiohttp's server (its
request and response objects, its handler task per request); the measure of that lever, not a server to ship
(no limits of any kind, no pipelining beyond what llhttp hands over in order).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import httptools
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


class _RawRelay(asyncio.Protocol):
    """HTTP/1.1 keep-alive server side in a few lines: llhttp parses, one task per connection relays in order."""

    def __init__(self, pool: UpstreamPool, origin: tuple[str, str, int], path: str, netloc: str) -> None:
        self._pool, self._origin, self._path, self._netloc = pool, origin, path, netloc
        self._parser = httptools.HttpRequestParser(self)
        self._queue: asyncio.Queue[tuple[bytes, list[tuple[str, str]], bytes] | None] = asyncio.Queue()
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def connection_lost(self, exc: BaseException | None) -> None:
        self._queue.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_message_begin(self) -> None:
        self._headers, self._body = [], []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._queue.put_nowait((self._parser.get_method(), self._headers, b"".join(self._body)))

    async def _serve(self) -> None:
        while (item := await self._queue.get()) is not None:
            method, headers, body = item
            kept = [(k, v) for k, v in headers if k.lower() not in HOP]
            kept.append(("Host", self._netloc))
            answer = await self._pool.request(method.decode(), self._origin, self._path, kept, body, 300.0)
            chunks = [chunk async for chunk in answer]
            answer.release()
            payload = b"".join(chunks)
            lines = [f"HTTP/1.1 {answer.status} {answer.reason}"]
            lines += [f"{k}: {v}" for k, v in answer.headers.items() if k.lower() not in HOP]
            lines.append(f"Content-Length: {len(payload)}")
            assert self._transport is not None
            self._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)


async def serve_raw(port: int, upstream: str) -> None:
    target = urlsplit(upstream)
    origin = (target.scheme, target.hostname or "", target.port or 80)
    pool = UpstreamPool()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _RawRelay(pool, origin, target.path, target.netloc), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:  # the same event loop as the gateway's
        import uvloop
    except ImportError:
        loop = None
    else:
        loop = uvloop.new_event_loop()
    if "--raw" in sys.argv[3:]:
        if loop is not None:
            asyncio.set_event_loop(loop)
        (loop or asyncio.new_event_loop()).run_until_complete(serve_raw(int(sys.argv[1]), sys.argv[2]))
        sys.exit(0)
    app = make_app(sys.argv[2], "--pool" in sys.argv[3:])
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=loop)
