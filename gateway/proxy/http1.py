"""One HTTP/1.1 upstream connection (RFC 9112) on an asyncio Protocol, responses parsed by llhttp (`httptools`).

The proxy path's client (issue 11, "A lean upstream leg"): aiohttp's ClientSession was a large share of the CPU
per proxied request; this costs about a third of it (bench/upstream_clients.py). It does only what the relay needs:
a request head encoded once (gateway.proxy.pool), keep-alive reuse, a body read chunk by chunk with backpressure.
The framing rules are the ones request smuggling and response splitting exploit; llhttp (strict, no leniencies)
enforces most of them and this module the rest: one Transfer-Encoding, exactly `chunked`; 1xx interim responses
skipped; a bounded head; a message that ends early is an error, never a short body; anything unsolicited closes
the connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.deadline import LazyDeadline

MAX_HEAD_BYTES: Final = 64 * 1024  # status line and headers, 1xx heads included (aiohttp: 8190 per line)
HIGH_WATER: Final = 64 * 1024  # body bytes buffered before the socket stops being read (SSE to a slow client)


class UpstreamError(Exception):
    """The upstream could not be reached, broke the connection, or sent what the gateway does not accept (502)."""


class UpstreamBodyError(UpstreamError):
    """The response body broke off or was malformed after the head had been relayed."""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")  # as aiohttp decodes header names and values


class UpstreamResponse:
    """A response head and its body, read chunk by chunk with `async for`. `release()` hands the connection back
    for reuse (only once the body was read to its end); `close()` drops it at once (a client that left, a revoked
    token: closing cancels the upstream request)."""

    __slots__ = ("status", "reason", "headers", "_connection")

    def __init__(self, connection: Connection, status: int, reason: str, headers: CIMultiDict[str]) -> None:
        self.status, self.reason, self._connection = status, reason, connection
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(headers)

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._connection.read()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    def release(self) -> None:
        self._connection.release()

    def close(self) -> None:
        self._connection.close()


class Connection(asyncio.Protocol):
    """One upstream socket: the httptools callbacks fill the head, then a deque of body chunks for `read()`."""

    __slots__ = (
        "_on_idle",
        "_on_closed",
        "_transport",
        "_parser",
        "idle_since",
        "closed",
        "_busy",
        "_head_only",
        "_head",
        "_head_bytes",
        "_header_bytes",
        "_headers",
        "_reason",
        "_framed_by_eof",
        "_chunks",
        "_buffered",
        "_paused",
        "_complete",
        "_keep_alive",
        "_error",
        "_waiter",
        "_head_due",
    )

    def __init__(self, on_idle: Callable[[Connection], None], on_closed: Callable[[Connection], None]) -> None:
        self._on_idle, self._on_closed = on_idle, on_closed
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.closed = False
        self._busy = False  # a request was sent and its final response is not complete
        self._head_only = False  # HEAD: llhttp cannot be told the response has no body
        self._head: asyncio.Future[UpstreamResponse] | None = None
        self._head_bytes = self._header_bytes = 0
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._reason = ""
        self._framed_by_eof = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._complete = False
        self._keep_alive = False
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._head_due: LazyDeadline | None = None  # the pending response head (made with the loop, in `send`)

    # -- used by the pool and the response -----------------------------------------------------------------------
    def send(
        self, head: bytes, body: bytes | None, head_only: bool, deadline: float
    ) -> asyncio.Future[UpstreamResponse]:
        """Write the request; the future resolves with the final response head, an UpstreamError, or TimeoutError
        once the loop's clock passes `deadline` first (the connection is then closed; one timer serves the requests
        of a kept-alive connection)."""
        assert self._transport is not None and not self._busy
        loop = asyncio.get_running_loop()
        if self._head_due is None:
            self._head_due = LazyDeadline(loop, self._head_late)
        self._head_due.set(deadline)
        self._head = loop.create_future()
        self._busy, self._head_only, self._complete, self._error = True, head_only, False, None
        self._head_bytes = self._header_bytes = 0
        if body and len(body) <= HIGH_WATER:
            self._transport.write(head + body)  # one write, one segment
        else:
            self._transport.write(head)
            if body:
                self._transport.write(body)
        return self._head

    async def read(self) -> bytes:
        """The next body bytes (everything buffered), b"" at the end. Raises UpstreamBodyError on a broken body."""
        while not self._chunks:
            if self._complete:
                return b""
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return chunk

    def release(self) -> None:
        """Back to the pool when the body was read to its end on a keep-alive connection; else closed."""
        if self.closed:
            return
        if self._complete and not self._chunks and self._keep_alive and self._error is None and not self._busy:
            self._on_idle(self)
        else:
            self.close()

    def _head_late(self) -> None:
        """A pending head past its deadline times out."""
        if self.closed or self._head is None or self._head.done():
            return  # (the head arrived, or the request failed: nothing is due)
        self._head.set_exception(TimeoutError())  # the caller answers 504
        self.close()  # the upstream request is closed

    def close(self) -> None:
        if self._head_due is not None:
            self._head_due.cancel()
        if not self.closed:
            self.closed = True
            if self._transport is not None:
                self._transport.abort()  # at once: no lingering, the upstream sees its request cancelled
            self._fail(UpstreamBodyError("connection closed"))
            self._on_closed(self)

    def usable(self) -> bool:
        return not self.closed and self._transport is not None and not self._transport.is_closing()

    # -- asyncio.Protocol ----------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # (uvloop's transports do not subclass asyncio's)

    def data_received(self, data: bytes) -> None:
        if not self._busy:  # unsolicited bytes on an idle connection: nothing after them can be trusted
            self.close()
            return
        in_head = self._head is not None and not self._head.done()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamError("upstream switched protocols"))
        except httptools.HttpParserError as exc:  # (a callback's own UpstreamError is its context)
            cause = exc.__context__
            self._fail(cause if isinstance(cause, UpstreamError) else UpstreamBodyError(f"malformed response: {exc}"))
        else:
            if not (in_head and self._head is not None and not self._head.done()):
                return
            self._head_bytes += len(data)  # a head still incomplete: bounded across reads and 1xx heads
            if self._head_bytes <= MAX_HEAD_BYTES:
                return
            self._fail(UpstreamError("upstream response head too large"))
        self.close()  # (even after a complete response: the parser is spent, the bytes after it untrusted)

    def eof_received(self) -> bool:
        if self._busy and self._framed_by_eof and self._head is not None and self._head.done():
            self._busy, self._complete, self._keep_alive = False, True, False  # read to EOF: that was its end
            self._wake()
        self.close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._busy and self._framed_by_eof and self._head is not None and self._head.done() and exc is None:
            self._busy, self._complete, self._keep_alive = False, True, False
            self._wake()
        self.close()

    def pause_writing(self) -> None:  # (the request body is already in memory: the transport buffers it)
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks -------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if not self._busy or self._head is None or self._head.done():
            raise UpstreamError("unsolicited upstream response")
        self._headers, self._reason = CIMultiDict(), ""

    def on_status(self, status: bytes) -> None:
        self._reason += _text(status)  # (in pieces when the status line spans reads)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head is not None and self._head.done():
            return  # a chunked body's trailers: dropped (the head was relayed already; none is trusted)
        self._header_bytes += len(name) + len(value)  # (one read may hold a whole oversized head)
        if self._header_bytes > MAX_HEAD_BYTES:
            raise UpstreamError("upstream response head too large")
        self._headers.add(_text(name), _text(value.rstrip(b" \t")))  # (llhttp keeps trailing whitespace)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # interim (100 Continue, 103 Early Hints): never relayed; llhttp reads on
            return
        encodings = self._headers.getall("Transfer-Encoding", [])
        if encodings and (len(encodings) > 1 or encodings[0].strip().lower() != "chunked"):
            raise UpstreamError("upstream Transfer-Encoding other than chunked")  # its coding would be relayed bare
        has_body = not (self._head_only or status in (204, 304))
        self._framed_by_eof = has_body and not encodings and "Content-Length" not in self._headers
        self._keep_alive = self._parser.should_keep_alive() and not self._framed_by_eof and not self._head_only
        if self._head is None or self._head.done():  # (the request was given up: close() follows)
            raise UpstreamError("response to an abandoned request")
        self._head.set_result(UpstreamResponse(self, status, self._reason, self._headers))
        if self._head_due is not None:
            self._head_due.clear()  # (nothing more is due: the timer, when it fires, stops)
        if not has_body:
            self._finish()

    def on_body(self, body: bytes) -> None:
        if self._complete:  # (a HEAD response's "body": llhttp was never told there is none)
            raise UpstreamError("body after a response without one")
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._head is not None and self._head.done() and not self._complete:
            self._finish()

    # -- internals -----------------------------------------------------------------------------------------------
    def _finish(self) -> None:
        self._busy, self._complete = False, True
        if self._head_only:
            self._keep_alive = False  # llhttp would read the next response as this one's body
        self._wake()

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None and not self._complete:  # (a body read to its end stays whole)
            self._error = error
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
