"""Keep-alive pool of upstream HTTP/1.1 connections (RFC 9112 §9), keyed by (scheme, host, port).

Only the MCP proxy path uses it (gateway.proxy.upstream); CIMD fetches and IdP calls keep aiohttp. A connection
goes back to the pool only after its response was read to the end (gateway.proxy.http1); one the upstream closes,
or that sent bytes while idle, is evicted at once; one idle longer than IDLE_SECONDS is closed. A request that
fails on a reused connection is never replayed: a POST may have run a tool.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Final

from gateway.proxy.header_names import TOKEN
from gateway.proxy.http1 import Connection, UpstreamError, UpstreamResponse

# below the keep-alive timeouts of the servers MCP upstreams run on (uvicorn and Node: 5 s; nginx, aiohttp: 75 s),
# so the gateway, not the upstream, ends an idle connection: a request never races an upstream's close
IDLE_SECONDS: Final = 4.0
Origin = tuple[str, str, int]  # scheme, host, port
Headers = Iterable[tuple[str, str]]  # a request's header lines, in order
_FRAMING: Final = frozenset({"content-length", "transfer-encoding", "connection"})  # the pool sets its own
# header names already checked to be tokens (a route sends the same few): whether the pool sets that one itself
_checked_names: dict[str, bool] = {}


def encode_head(method: str, target: str, headers: Headers, body: bytes | None) -> bytes:
    """The request head as one bytes object. Identity header values come from user claims: a CR, LF or NUL in any
    value, or a name that is not an RFC 9110 §5.6.2 token, is refused rather than sent (header injection).

    Raises:
        UpstreamError: a header or the target that would change the request's framing.
    """
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    for name, value in headers:
        framing = _checked_names.get(name)
        if framing is None:
            if TOKEN.match(name) is None or "\n" in name:  # ($ in TOKEN matches before a final \n)
                raise UpstreamError("header name is not a token")
            framing = name.lower() in _FRAMING
            if len(_checked_names) < 4096:
                _checked_names[name] = framing
        if framing:
            continue
        lines.append(f"{name}: {value}\r\n")
    if body:
        lines.append(f"Content-Length: {len(body)}\r\n")
    elif body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0\r\n")  # as aiohttp sends it
    lines.append("\r\n")
    head = "".join(lines)
    # every CR and LF is a line end this function wrote: one check over the whole head instead of one per value
    if "\0" in head or head.count("\r") != len(lines) or head.count("\n") != len(lines) or " " in target:
        raise UpstreamError("CR, LF or NUL in a request header or target")
    return head.encode("utf-8")  # (aiohttp encodes header values as UTF-8 too)


class UpstreamPool:
    """Connections for every upstream; `limit` caps those open at once (0: no cap), beyond it a request waits up to
    `connect_timeout` for one to free (then TimeoutError, a 504 as with aiohttp's pool)."""

    def __init__(self, *, limit: int = 0, connect_timeout: float = 5.0, idle_seconds: float = IDLE_SECONDS) -> None:
        self.limit, self.connect_timeout, self.idle_seconds = limit, connect_timeout, idle_seconds
        self._idle: dict[Origin, deque[Connection]] = {}
        self._origins: dict[Connection, Origin] = {}
        self._open = 0  # connecting, busy and idle
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    async def request(
        self, method: str, origin: Origin, target: str, headers: Headers, body: bytes | None, timeout: float
    ) -> UpstreamResponse:
        """Send one request and return once the final response head arrived (its body is read from the response).

        Raises:
            UpstreamError: refused, reset or unreachable, or a response the gateway does not accept (502).
            TimeoutError: no connection within connect_timeout, or no response head within `timeout` (504).
        """
        head = encode_head(method, target, headers, body)  # (before any connection is taken: refusals cost none)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connection = self._take_idle(origin) or await self._acquire(origin, min(deadline, self._connect_deadline()))
        answer = connection.send(head, body, method == "HEAD", deadline)
        try:
            return await answer
        except BaseException:  # an error, the timeout, or the client went away (cancelled): the request ends here
            connection.close()
            raise

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self._origins):
            connection.close()

    # -- connections ---------------------------------------------------------------------------------------------
    def _connect_deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.connect_timeout

    def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        cutoff = asyncio.get_running_loop().time() - self.idle_seconds  # (the sweep runs only now and then)
        while idle:
            connection = idle.pop()  # the most recently used: least likely to have been timed out upstream
            if connection.usable() and connection.idle_since > cutoff:
                return connection
            connection.close()
        return None

    async def _acquire(self, origin: Origin, deadline: float) -> Connection:
        """An idle connection to `origin`, else a new one once the limit allows. Connects are rare (keep-alive), so
        they use asyncio.timeout; the per-request deadline is a call_at handle (`request`)."""
        loop = asyncio.get_running_loop()
        scheme, host, port = origin
        try:
            async with asyncio.timeout_at(deadline):
                while self.limit and self._open >= self.limit:
                    reused = self._take_idle(origin)
                    if reused is not None:
                        return reused
                    if not self._close_oldest_idle():  # (an idle one elsewhere makes room)
                        await self._freed()
                self._open += 1
                try:
                    if scheme == "unix":  # a command route's process host (gateway.stdio): host is the socket path
                        _, connection = await loop.create_unix_connection(
                            lambda: Connection(self._returned, self._dropped), host
                        )
                    else:
                        _, connection = await loop.create_connection(
                            lambda: Connection(self._returned, self._dropped),
                            host,
                            port,
                            ssl=self._context() if scheme == "https" else None,
                            server_hostname=host if scheme == "https" else None,
                        )
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
        except TimeoutError:  # (an OSError too): no connection in time, a 504
            raise
        except OSError as exc:  # refused, reset, unreachable, TLS failure (ssl.SSLError is an OSError)
            reason = errno.errorcode.get(exc.errno or 0, type(exc).__name__)  # (ECONNREFUSED, EMFILE, ...)
            raise UpstreamError(f"connect failed: {reason}") from None
        self._origins[connection] = origin
        return connection

    async def _freed(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif not waiter.cancelled():
                self._wake_one()  # (woken, then cancelled: the freed place goes to the next waiter)
            raise

    def _close_oldest_idle(self) -> bool:
        oldest: Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is None:
            return False
        oldest.close()
        return True

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()  # system CAs, hostname checked against the SNI name
        return self._ssl

    # -- callbacks from connections ------------------------------------------------------------------------------
    def _returned(self, connection: Connection) -> None:
        """A response read to its end on a keep-alive connection: idle, reusable (or closed if a waiter needs room
        for another origin, or the pool is closing)."""
        if self._closed:
            connection.close()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(self._origins[connection], deque()).append(connection)
        if self._waiters:
            self._wake_one()  # (it takes this connection's place if it needs another origin)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self.idle_seconds / 2, self._sweep)

    def _dropped(self, connection: Connection) -> None:
        origin = self._origins.pop(connection, None)
        if origin is None:
            return  # (closed before it was ever registered: _connect accounts for it)
        self._open -= 1
        idle = self._idle.get(origin)
        if idle and connection in idle:
            idle.remove(connection)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        """Close connections idle longer than idle_seconds; re-armed while any stay idle."""
        self._sweeper = None
        cutoff = asyncio.get_running_loop().time() - self.idle_seconds
        for idle in list(self._idle.values()):
            while idle and idle[0].idle_since <= cutoff:
                idle[0].close()  # (removes itself through _dropped)
        if any(self._idle.values()):
            self._sweeper = asyncio.get_running_loop().call_later(self.idle_seconds / 2, self._sweep)
