"""A loopback relay that adds `Authorization: Bearer <token>` to every request and passes everything else as it
came: method, path, query, every header line (duplicates and Host included), the body, and the answer streamed
back unbuffered. It stands where a signed-in MCP client's transport stands, for tools that cannot send a token
(the official conformance suite's server scenarios take only a URL)."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "content-length"})


def injector(target: str, token: str) -> web.Application:
    """An application relaying to `target` (scheme://host:port) with the token added (a client's own kept)."""
    app = web.Application()

    async def start(app: web.Application) -> None:
        app["http"] = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))

    async def stop(app: web.Application) -> None:
        await app["http"].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
        headers.setdefault("Authorization", f"Bearer {token}")
        body = await request.read() if request.body_exists else None
        http: aiohttp.ClientSession = app["http"]
        async with http.request(
            request.method, target + request.path_qs, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            answer = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    answer.headers.add(name, value)
            await answer.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await answer.write(chunk)
                await answer.write_eof()
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                pass  # the client went away (the suite closes streams it has read enough of)
            return answer

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app
