"""The upstream pool's connection handling on real loopback sockets (issue 11, "A lean upstream leg"): keep-alive
reuse, what is never reused, no replay of a request that may have run, deadlines, the limit, backpressure and
header injection. Status mapping (502/504) over a whole gateway: tests/proxy/test_forwarding.py."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import uvloop
from multidict import CIMultiDict

from gateway.ports import free_port
from gateway.proxy.http1 import HIGH_WATER, UpstreamError, UpstreamResponse
from gateway.proxy.pool import Origin, UpstreamPool

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}}'

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Upstream"], Awaitable[None]]


@dataclass
class Upstream:
    origin: Origin
    accepts: int = 0
    requests: list[bytes] = field(default_factory=list)  # each request head and body as received
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = next(
            (int(line[15:]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
        )
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


@asynccontextmanager
async def upstream(handler: Handler) -> AsyncIterator[Upstream]:
    """A raw loopback server: `handler` scripts each connection; accepts and requests are counted."""
    state: list[Upstream] = []
    handlers: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state[0].accepts += 1
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer, state[0])
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            state[0].closed.set()
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    state.append(Upstream(("http", "127.0.0.1", server.sockets[0].getsockname()[1])))
    try:
        yield state[0]
    finally:
        server.close()
        for task in list(handlers):  # (scripts that wait for the gateway to hang up)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*handlers)
        await server.wait_closed()


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
    while await server.read_request(reader) is not None:
        writer.write(OK)


async def post(pool: UpstreamPool, origin: Origin, timeout: float = 5, **headers: str) -> UpstreamResponse:
    return await pool.request("POST", origin, "/mcp", CIMultiDict(Host="upstream", **headers).items(), BODY, timeout)


async def read_all(response: UpstreamResponse) -> bytes:
    body = b"".join([chunk async for chunk in response])
    response.release()
    return body


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


async def test_one_keep_alive_connection_serves_sequential_requests() -> None:
    async with upstream(keep_alive) as server:
        pool = UpstreamPool()
        for _ in range(5):
            assert await read_all(await post(pool, server.origin)) == b"ok"
        assert server.accepts == 1 and len(server.requests) == 5
        assert pool.open_connections == 1
        await pool.close()


async def test_the_request_carries_its_length_and_never_the_clients_framing() -> None:
    """Content-Length always (never chunked); a client's Transfer-Encoding/Connection/Content-Length never pass."""
    async with upstream(keep_alive) as server:
        pool = UpstreamPool()
        headers = {"Transfer-Encoding": "chunked", "Connection": "close", "Content-Length": "1"}
        await read_all(await post(pool, server.origin, **headers))
        head = server.requests[0].split(b"\r\n\r\n")[0].lower().split(b"\r\n")
        assert f"content-length: {len(BODY)}".encode() in head
        assert not [line for line in head if line.startswith((b"transfer-encoding", b"connection"))]
        assert server.requests[0].endswith(BODY)
        await pool.close()


async def test_a_half_read_body_is_never_returned_to_the_pool() -> None:
    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        while await server.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1_000_000)

    async with upstream(large) as server:
        pool = UpstreamPool()
        response = await post(pool, server.origin)
        await response.__anext__()  # one chunk, not the whole body
        response.release()  # (the relay releases after a bounded read too: it must close instead)
        assert pool.open_connections == 0
        assert len(await read_all(await post(pool, server.origin))) == 1_000_000
        assert server.accepts == 2
        await pool.close()


async def test_an_idle_connection_the_upstream_closes_is_evicted_and_the_next_request_succeeds() -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        await server.read_request(reader)
        writer.write(OK)
        await writer.drain()

    async with upstream(one_then_close) as server:
        pool = UpstreamPool()
        assert await read_all(await post(pool, server.origin)) == b"ok"
        await until(lambda: pool.open_connections == 0)  # evicted on the upstream's FIN, not at the next request
        assert await read_all(await post(pool, server.origin)) == b"ok"
        assert server.accepts == 2
        await pool.close()


async def test_a_post_on_a_reused_connection_the_upstream_drops_is_a_502_never_replayed() -> None:
    """Keep-alive timeout race: the upstream closes as the next POST arrives. It may have run the tool: the
    gateway answers 502 (UpstreamError) rather than sending the POST again on a fresh connection."""

    async def answer_then_drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        await server.read_request(reader)
        writer.write(OK)
        await server.read_request(reader)  # the next POST arrives; the upstream's idle timer fired: it closes

    async with upstream(answer_then_drop) as server:
        pool = UpstreamPool()
        await read_all(await post(pool, server.origin))
        with pytest.raises(UpstreamError):
            await post(pool, server.origin)
        await asyncio.sleep(0.05)  # (a replay would connect again now)
        assert server.accepts == 1 and len(server.requests) == 2
        await pool.close()


async def test_an_upstream_closing_as_the_next_post_goes_out_never_sees_it_twice() -> None:
    """The true race: the upstream closes right after its answer while the next POST is already on its way. Either
    the FIN wins (evicted, a fresh connection serves the POST) or the POST does (502); never a replay."""

    async def answer_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        if await server.read_request(reader) is not None:
            writer.write(OK)
            await writer.drain()
            writer.close()  # (no keep-alive after all: its idle timer fired)

    async with upstream(answer_and_close) as server:
        pool = UpstreamPool()
        outcomes = []
        for request_id in range(20):
            try:
                outcomes.append(await read_all(await post(pool, server.origin, **{"X-Id": str(request_id)})))
            except UpstreamError:
                outcomes.append(b"502")
        await asyncio.sleep(0.05)
        seen = [line for request in server.requests for line in request.split(b"\r\n") if line.startswith(b"X-Id")]
        assert len(seen) == len(set(seen))  # no request reached the upstream twice
        assert set(outcomes) <= {b"ok", b"502"} and outcomes.count(b"ok") <= len(seen)
        await pool.close()


async def test_no_response_head_in_time_is_a_timeout_and_the_request_is_closed() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        await server.read_request(reader)
        await reader.read()  # until the gateway hangs up

    async with upstream(stall) as server:
        pool = UpstreamPool()
        with pytest.raises(TimeoutError):
            await post(pool, server.origin, timeout=0.2)
        async with asyncio.timeout(5):
            await server.closed.wait()
        assert pool.open_connections == 0
        await pool.close()


async def test_each_request_on_a_kept_alive_connection_keeps_its_own_deadline() -> None:
    """One timer serves a connection's requests (gateway.proxy.http1.Connection.send): a later request's longer
    deadline is not cut short by an earlier request's, and a shorter one is not stretched by a longer one's."""
    delays = [0.0, 0.5, 0.0, 0.6]  # seconds each answer waits, request by request, on one connection

    async def scripted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        for delay in delays:
            if await server.read_request(reader) is None:
                return
            await asyncio.sleep(delay)
            writer.write(OK)
        await reader.read()

    async with upstream(scripted) as server:
        pool = UpstreamPool()
        assert await read_all(await post(pool, server.origin, timeout=0.2)) == b"ok"  # sets the timer at +0.2 s
        assert await read_all(await post(pool, server.origin, timeout=2)) == b"ok"  # waits 0.5 s: past +0.2 s
        assert await read_all(await post(pool, server.origin, timeout=30)) == b"ok"  # a timer at +30 s
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):  # 0.3 s, not the earlier request's 30 s
            await post(pool, server.origin, timeout=0.3)
        assert loop.time() - started < 0.55
        assert server.accepts == 1 and pool.open_connections == 0
        await pool.close()


async def test_a_refused_connection_is_an_upstream_error() -> None:
    pool = UpstreamPool()
    with pytest.raises(UpstreamError):
        await post(pool, ("http", "127.0.0.1", free_port()))
    assert pool.open_connections == 0
    await pool.close()


async def test_the_pool_limit_holds_and_a_freed_connection_serves_the_waiter() -> None:
    peak = 0

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        while await server.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
            await asyncio.sleep(0.1)
            writer.write(b"cd")

    async with upstream(stream) as server:
        pool = UpstreamPool(limit=2, connect_timeout=0.3)
        held = [await post(pool, server.origin), await post(pool, server.origin)]
        with pytest.raises(TimeoutError):  # waited connect_timeout for a free connection (504)
            await post(pool, server.origin)
        waiting = asyncio.ensure_future(post(pool, server.origin))
        await asyncio.sleep(0.05)
        peak = max(peak, pool.open_connections)
        assert await read_all(held[0]) == b"abcd"  # back to the pool: the waiter takes it
        assert await read_all(await waiting) == b"abcd"
        held[1].close()
        assert peak == 2 and server.accepts == 2
        await pool.close()


async def test_a_slow_reader_keeps_the_buffered_body_bounded() -> None:
    """Backpressure: reading stops above HIGH_WATER buffered bytes, so a 10 MB stream to a slow consumer never
    sits in the gateway's memory (each read returns everything buffered: its size is the bound)."""
    size = 10 * 1024 * 1024

    async def firehose(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"x" * 65536)
            await writer.drain()

    async with upstream(firehose) as server:
        pool = UpstreamPool()
        response = await post(pool, server.origin)
        total, largest = 0, 0
        async with asyncio.timeout(30):
            async for chunk in response:
                total, largest = total + len(chunk), max(largest, len(chunk))
                await asyncio.sleep(0.002)  # a slow client
        response.release()
        assert total == size
        assert largest <= HIGH_WATER + 256 * 1024  # (plus at most one socket read: 256 KiB under uvloop)
        await pool.close()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Forwarded-Email": "a@example.com\r\nX-Admin: 1"}, id="crlf-in-value"),
        pytest.param({"X-Forwarded-Email": "a@example.com\nX-Admin: 1"}, id="lf-in-value"),
        pytest.param({"X-Forwarded-Email": "a\0b"}, id="nul-in-value"),
        pytest.param({"X-Bad Name": "v"}, id="space-in-name"),
        pytest.param({"X-Bad:Name": "v"}, id="colon-in-name"),
        pytest.param({"X-Bad\n": "v"}, id="lf-after-name"),
    ],
)
async def test_header_injection_is_refused_before_anything_is_sent(headers: dict[str, str]) -> None:
    """Identity header values come from user claims: a value or name that would add a header is refused (502)."""
    async with upstream(keep_alive) as server:
        pool = UpstreamPool()
        with pytest.raises(UpstreamError):
            await pool.request("POST", server.origin, "/mcp", CIMultiDict(headers).items(), BODY, 5)
        assert server.accepts == 0
        await pool.close()


async def test_unsolicited_bytes_on_an_idle_connection_drop_it() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        await server.read_request(reader)
        writer.write(OK)
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nforged")  # for whichever request comes next
        await reader.read()

    async with upstream(chatty) as server:
        pool = UpstreamPool()
        await read_all(await post(pool, server.origin))
        await until(lambda: pool.open_connections == 0)
        await pool.close()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", id="204-with-a-body-attempt"),
        pytest.param(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", id="connection-close"),
        pytest.param(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", id="http-1.0"),
    ],
)
async def test_connections_that_cannot_be_trusted_again_are_not_reused(answer: bytes) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Upstream) -> None:
        while await server.read_request(reader) is not None:
            writer.write(answer)

    async with upstream(serve) as server:
        pool = UpstreamPool()
        await read_all(await post(pool, server.origin))
        await read_all(await post(pool, server.origin))
        assert server.accepts == 2
        await pool.close()


async def test_idle_connections_are_closed_after_the_idle_timeout() -> None:
    async with upstream(keep_alive) as server:
        pool = UpstreamPool(idle_seconds=0.1)
        await read_all(await post(pool, server.origin))
        assert pool.open_connections == 1
        await until(lambda: pool.open_connections == 0)
        async with asyncio.timeout(5):
            await server.closed.wait()
        await pool.close()


def test_the_same_cases_hold_on_uvloop() -> None:
    """`mcp-auth-gateway serve` runs on uvloop, whose transports are not asyncio's (nor its subclasses)."""
    cases = [
        case
        for name, case in globals().items()
        if name.startswith("test_") and name != "test_the_same_cases_hold_on_uvloop"
    ]
    for case in cases:
        if not inspect.signature(case).parameters:
            uvloop.run(case())
    uvloop.run(test_header_injection_is_refused_before_anything_is_sent({"X-A": "1\r\nX-B: 2"}))
    uvloop.run(
        test_connections_that_cannot_be_trusted_again_are_not_reused(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    )
