"""CPU per proxied request of each upstream client option (issue 11, "A lean upstream leg"): the same POSTs to
bench/fast_upstream.py through (a) aiohttp's ClientSession as gateway/proxy/upstream.py used it, (b) the
gateway's own pool (gateway/proxy/pool.py), (c) pyreqwest's async client, (d) aiohttp's lower layers (its
connector and HttpResponseParser without ClientSession). Each: N sequential, then M concurrent; CPU µs per
request is `time.process_time()` (all threads: pyreqwest's Tokio runtime included) over requests.

    python bench/upstream_clients.py [--rounds 3] [--sequential 2000] [--concurrent 32] [--per-task 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import uvloop
from multidict import CIMultiDict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.compare import BODY  # noqa: E402
from gateway.ports import free_port, wait_for_port  # noqa: E402
from gateway.proxy.pool import UpstreamPool  # noqa: E402

PAYLOAD = json.dumps(BODY).encode()
HEADERS = {  # what upstream_request_headers builds for a tools/call (allow-listed, then the gateway's own)
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "Mcp-Protocol-Version": "2025-11-25",
    "Mcp-Session-Id": "3f2c9a6e-8b1d-4c55-9e0a-1b2c3d4e5f60",
    "User-Agent": "bench",
    "Accept-Encoding": "identity",
    "X-Forwarded-For": "127.0.0.1",
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Host": "gateway.example",
    "X-Request-Id": "0123456789abcdef",
    "X-Forwarded-User": "local:alice",
    "X-Forwarded-Email": "alice@example.com",
    "X-Forwarded-Groups": "eng,ops",
    "X-MCP-Client-Id": "mcp-auth-gateway-cli",
    "X-MCP-Scopes": "alpha:read",
}
Send = Callable[[], Awaitable[int]]


async def aiohttp_session(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """(a) As build_http_client/open_upstream/relay did: asyncio.timeout, request, iter_any, release."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5, sock_read=None)
    session = aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
    )
    host = url.split("/")[2]

    async def send() -> int:
        headers = CIMultiDict(HEADERS, Host=host)
        async with asyncio.timeout(300):
            response = await session.request("POST", url, headers=headers, data=PAYLOAD, allow_redirects=False)
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
        response.release()
        return size

    return send, session.close


async def own_pool(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """(b) gateway.proxy.pool.UpstreamPool, as open_upstream/relay now use it."""
    pool = UpstreamPool()
    host = url.split("/")[2]
    origin = ("http", "127.0.0.1", int(host.split(":")[1]))

    async def send() -> int:
        response = await pool.request("POST", origin, "/mcp", [*HEADERS.items(), ("Host", host)], PAYLOAD, 300)
        size = 0
        async for chunk in response:
            size += len(chunk)
        response.release()
        return size

    return send, pool.close


async def pyreqwest_client(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """(c) pyreqwest (Rust reqwest/hyper under Tokio), streamed response as the relay needs it."""
    from pyreqwest.client import ClientBuilder

    client = ClientBuilder().http1_only().gzip(False).follow_redirects(False).build()
    host = url.split("/")[2]

    async def send() -> int:
        request = client.post(url).headers({**HEADERS, "Host": host}).body_bytes(PAYLOAD).build_streamed()
        size = 0
        async with request as response:
            reader = response.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                size += len(chunk)
        return size

    return send, client.close


async def aiohttp_lower(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    """(d) aiohttp without ClientSession: its connector's pooled protocol, its HttpResponseParser (C) and
    StreamReader; the request head written by hand."""
    from aiohttp.client_reqrep import ConnectionKey
    from yarl import URL

    connector = aiohttp.TCPConnector(limit=0)
    host = url.split("/")[2]
    key = ConnectionKey("127.0.0.1", int(host.split(":")[1]), False, True, None, None, None)
    head = (
        "POST /mcp HTTP/1.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in {**HEADERS, "Host": host}.items())
        + f"Content-Length: {len(PAYLOAD)}\r\n\r\n"
    ).encode()

    class _Request:  # what TCPConnector.connect reads from a ClientRequest
        def __init__(self) -> None:
            self.host, self.port, self.is_ssl, self.ssl, self.proxy = key.host, key.port, lambda: False, True, None
            self.connection_key, self.server_hostname, self.url = key, None, URL(url)
            self.proxy_headers = None

    async def send() -> int:
        connection = await connector.connect(_Request(), [], aiohttp.ClientTimeout())  # type: ignore[arg-type]
        protocol = connection.protocol
        assert protocol is not None and protocol.transport is not None
        protocol.set_response_params(read_until_eof=False, auto_decompress=False)
        protocol.transport.write(head + PAYLOAD)
        message, payload = await protocol.read()
        size = 0
        async for chunk in payload.iter_any():
            size += len(chunk)
        connection.release()
        return size

    return send, connector.close


OPTIONS = {
    "aiohttp ClientSession (today)": aiohttp_session,
    "gateway pool (httptools)": own_pool,
    "pyreqwest 0.15 async": pyreqwest_client,
    "aiohttp lower layers": aiohttp_lower,
}


async def measure(
    make: Callable[[str], Awaitable[tuple[Send, Callable[[], Awaitable[None]]]]], url: str, args
) -> tuple[float, float, float]:
    send, close = await make(url)
    try:
        for _ in range(200):  # warm up: connections open, caches filled
            await send()
        started, wall = time.process_time(), time.perf_counter()
        for _ in range(args.sequential):
            await send()
        sequential = (time.process_time() - started) / args.sequential * 1e6
        seq_wall = (time.perf_counter() - wall) / args.sequential * 1e6

        async def worker() -> None:
            for _ in range(args.per_task):
                await send()

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(args.concurrent)))
        concurrent = (time.process_time() - started) / (args.concurrent * args.per_task) * 1e6
        return sequential, seq_wall, concurrent
    finally:
        await close()


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(Path(__file__).parent / "fast_upstream.py"), str(port)])
    try:
        wait_for_port(port, upstream)
        url = f"http://127.0.0.1:{port}/mcp"
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in OPTIONS if args.only in name}
        for _ in range(args.rounds):  # interleaved rounds, medians: a shared machine is noisy
            for name in results:
                try:
                    results[name].append(await measure(OPTIONS[name], url, args))
                except Exception as exc:  # an option that does not run here is reported, not fatal
                    print(f"{name}: failed: {type(exc).__name__}: {exc}")
        print(
            f"medians of {args.rounds} rounds: {args.sequential} sequential, "
            f"{args.concurrent}x{args.per_task} concurrent"
        )
        print(f"{'option':32} {'seq CPU µs/req':>15} {'seq wall µs':>12} {f'{args.concurrent}-conc CPU µs/req':>20}")
        for name, runs in results.items():
            if runs:
                sequential, wall, concurrent = (statistics.median(run[i] for run in runs) for i in range(3))
                print(f"{name:32} {sequential:15.1f} {wall:12.1f} {concurrent:20.1f}")
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sequential", type=int, default=2000)
    parser.add_argument("--concurrent", type=int, default=32)
    parser.add_argument("--per-task", type=int, default=100)
    parser.add_argument("--only", default="")
    uvloop.run(main(parser.parse_args()))
