"""Slow and greedy clients at the connection level: a deadline for request headers, a cap on connections per IP.

aiohttp (3.14) bounds an *idle* kept-alive connection (`keepalive_timeout`) but not one that trickles its headers
in, and it never limits how many connections one address holds. `GatewayRunner` is aiohttp's `AppRunner` whose
server makes `GuardedRequestHandler` protocols, aiohttp's own with two additions:

- **header deadline** (`listen.header_timeout`, nginx's `client_header_timeout`): a request's headers must be
  complete within the deadline, counted from the connection's start for the first request and from the first
  byte of the next request on a kept-alive connection, or from the end of the last response when part of the
  next request came pipelined behind the last one (the idle time between requests is `keepalive_timeout`,
  as in nginx). Late: `408` and the connection closes. The deadline only ever closes a connection that is waiting
  for a request, never one whose request is being handled, so an SSE stream or a slow upstream is unaffected;
- **per-IP cap** (`listen.max_connections_per_ip`, nginx's `limit_conn`): a connection beyond it is answered
  `503` and closed before anything is read. Peers in `trusted_proxies` are exempt (they carry many clients).

Request bodies get their own inactivity deadline where they are read (`gateway.web.body`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from gateway.deadline import LazyDeadline

logger = logging.getLogger("gateway")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: 26\r\n"
    b"Connection: close\r\n\r\nrequest headers too slow.\n"
)
TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 39\r\n"
    b"Retry-After: 5\r\nConnection: close\r\n\r\ntoo many connections from this address\n"
)
WARN_EVERY = 60.0  # seconds between log lines about refused connections (an attack must not flood the log)


class ConnectionGuard:
    """Open connections per client address, shared by every application a process serves (reloads included)."""

    def __init__(self, limit: int, exempt: Sequence[Network] = ()) -> None:
        self.limit, self.exempt = limit, tuple(exempt)
        self.open: dict[str, int] = {}
        self._refused = 0
        self._warned_at = 0.0

    def configure(self, limit: int, exempt: Sequence[Network]) -> None:
        """A reload's values; connections already open stay counted."""
        self.limit, self.exempt = limit, tuple(exempt)

    def admit(self, address: str) -> bool:
        """Count a new connection from `address`; False (not counted) when it would exceed the cap."""
        if self.limit and self.open.get(address, 0) >= self.limit and not self._exempt(address):
            self._refused += 1
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY:
                logger.warning(
                    "refusing connections from %s: %d open (listen.max_connections_per_ip); %d refused "
                    "in the last %.0fs",
                    address,
                    self.open[address],
                    self._refused,
                    WARN_EVERY,
                )
                self._warned_at, self._refused = now, 0
            return False
        self.open[address] = self.open.get(address, 0) + 1
        return True

    def release(self, address: str) -> None:
        left = self.open.get(address, 0) - 1
        if left > 0:
            self.open[address] = left
        else:
            self.open.pop(address, None)

    def _exempt(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in network for network in self.exempt)


def peer_address(transport: asyncio.BaseTransport) -> str | None:
    """The peer's IP as text, IPv4-mapped IPv6 addresses as IPv4 (one client, one count)."""
    peer = transport.get_extra_info("peername")
    if not isinstance(peer, tuple) or not peer:
        return None
    try:
        ip = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


class GuardedRequestHandler(RequestHandler):
    """aiohttp's HTTP/1.1 protocol with the header deadline and the per-IP cap (see the module docstring)."""

    __slots__ = (
        "_guard",
        "_header_timeout",
        "_headers_due",
        "_awaiting_request",
        "_started_request",
        "_served",
        "_address",
        "_refused",
    )

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard, self._header_timeout = guard, header_timeout
        self._headers_due = LazyDeadline(self._loop, self._headers_late)  # the awaited headers; none: not awaited
        self._awaiting_request = True  # the next bytes start a request (not a body)
        self._started_request = False  # some bytes of that request have arrived
        self._served = False  # a response was sent: the connection is kept alive between requests
        self._address: str | None = None  # counted against the cap
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        address = peer_address(transport)
        if address is not None:
            if not self._guard.admit(address):
                self._refused = True
                cast(asyncio.Transport, transport).write(TOO_MANY)
                transport.close()
                return
            self._address = address
        super().connection_made(transport)
        self._arm()  # the first request's headers are due from the connection's start

    def connection_lost(self, exc: BaseException | None) -> None:
        self._headers_due.cancel()
        if self._refused:
            return  # refused in connection_made: aiohttp never saw it
        if self._address is not None:
            self._guard.release(self._address)
            self._address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_request and data and not self._started_request:
            self._started_request = True
            if self._served or self._headers_due.due is None:
                self._disarm()
                self._arm()  # a kept-alive connection's next request: due from its first byte
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a request's headers are complete
            self._awaiting_request = self._started_request = False
            self._disarm()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        finished = await super().finish_response(request, resp, start_time)
        self._served = True
        self._awaiting_request = not self._messages  # else the next request is already parsed
        if self._awaiting_request and not self._started_request:
            self._disarm()
            self._arm()  # bytes of a pipelined request may wait in the parser: checked when the deadline is up
        return finished

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's HTTP parser refused the message (a control byte in a header, a bad request line…): a short
        400 that does not echo the client's bytes, and no traceback in the log (anyone can send these)."""
        if status != 400 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        logger.debug("malformed HTTP request from %s: %s", request.remote, type(exc).__name__)
        response = web.Response(status=400, text="malformed HTTP request\n", content_type="text/plain")
        response.force_close()
        return response

    def _arm(self) -> None:
        """The awaited headers are due `header_timeout` from now (one timer for all of a connection's requests)."""
        self._headers_due.set_in(self._header_timeout)

    def _disarm(self) -> None:
        self._headers_due.clear()

    def _headers_late(self) -> None:
        waiting = self._waiter is not None and not self._waiter.done()  # idle between requests, not handling one
        if not waiting or self.transport is None:
            return
        if self._started_request or self._holds_partial_request():
            self.transport.write(REQUEST_TIMEOUT)
        elif self._served:
            return  # idle between requests, nothing sent: keepalive_timeout's job
        self.force_close()

    def _holds_partial_request(self) -> bool:
        """Part of a request that arrived pipelined behind the last one (same read) and was never completed.
        The parser keeps it inside; ending the input shows it (then this connection is closed anyway)."""
        if not self._served or self._parser is None or self._messages:
            return False
        try:
            return self._parser.feed_eof() is not None
        except Exception:  # noqa: BLE001 - aiohttp's parser refuses the cut request: there was one
            return True


class GuardedServer(web.Server):
    """aiohttp's low-level server, making `GuardedRequestHandler` protocols with the same options; `handler` (the
    MCP dispatcher, gateway.web.mcp) in place of the application's own where given."""

    def __init__(
        self, plain: web.Server, *, guard: ConnectionGuard, header_timeout: float, handler: Any = None
    ) -> None:
        super().__init__(
            handler or plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            **plain._kwargs,
        )  # noqa: SLF001
        self.guard, self.header_timeout = guard, header_timeout

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(
            self, loop=self._loop, guard=self.guard, header_timeout=self.header_timeout, **self._kwargs
        )


class GatewayRunner(web.AppRunner):
    """An `AppRunner` whose connections get the header deadline and the per-IP cap, and whose requests go first to
    `dispatch` (made from the started application: `dispatch(app)`, the server's request handler) when given."""

    def __init__(
        self,
        app: web.Application,
        *,
        guard: ConnectionGuard,
        header_timeout: float,
        dispatch: Callable[[web.Application], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.guard, self.header_timeout, self.dispatch = guard, header_timeout, dispatch

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # the application's startup runs here
        handler = self.dispatch(self.app) if self.dispatch is not None else None
        return GuardedServer(plain, guard=self.guard, header_timeout=self.header_timeout, handler=handler)
