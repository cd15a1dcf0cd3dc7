"""How an upstream's answer reaches the client (gateway.proxy.upstream.relay): a short body of known length goes
out whole with its head (one write; its Content-Length as the upstream framed it), a longer one streams, and a
body that breaks off before anything was sent is a clean JSON-RPC 502 rather than a cut answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from gateway.mcp import jsonrpc
from gateway.proxy.upstream import WHOLE_BODY_BYTES
from tests.conftest import route
from tests.support.mcp_wire import modern_call
from tests.support.tokens import issue


@asynccontextmanager
async def scripted(answer: bytes) -> AsyncIterator[str]:
    """An upstream that reads one request head and writes `answer`, then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/mcp"
    finally:
        server.close()
        await server.wait_closed()


async def post(start_gateway, aiohttp_client, store, upstream: str):
    server = await start_gateway([route("alpha", upstream)])
    token = await issue(store, server, "alpha")
    client = await aiohttp_client(server)
    headers, body = modern_call("req-9", "add", {"a": 1, "b": 2})
    return await client.post("/alpha/mcp", json=body, headers={**headers, "Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("size", [0, 77, WHOLE_BODY_BYTES, WHOLE_BODY_BYTES + 1, 3 * WHOLE_BODY_BYTES])
async def test_answers_short_and_long_arrive_whole_with_their_length(start_gateway, aiohttp_client, store, size):
    payload = b"x" * size
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size
    async with scripted(head + payload) as upstream:
        response = await post(start_gateway, aiohttp_client, store, upstream)
        assert response.status == 200
        assert response.headers["Content-Length"] == str(size)
        assert await response.read() == payload


async def test_a_short_body_that_breaks_off_is_a_clean_502(start_gateway, aiohttp_client, store):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    async with scripted(head + b'{"jsonrpc":') as upstream:
        response = await post(start_gateway, aiohttp_client, store, upstream)
        assert response.status == 502
        answer = await response.json()
        assert answer["error"]["code"] == jsonrpc.UPSTREAM_UNAVAILABLE
        assert answer["id"] == "req-9"  # (the request's id, as for an unreachable upstream)
