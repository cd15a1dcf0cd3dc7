"""One bridged MCP server: a stdio process spoken to with the SDK's stdio client (`mcp.client.stdio`: it spawns
the program and frames messages as lines; nothing here reads or writes the pipes), or a legacy HTTP+SSE server
with the SDK's SSE client (`mcp.client.sse`, MCP 2024-11-05 transport). Both give a pair of message streams
(`Opener`); "process" below means either.

The gateway is the process's one client: it initializes it once (MCP 2025-11-25 lifecycle, the revision every
stdio server of the ecosystem speaks) and then multiplexes its callers' requests onto it. Every request gets an id
of the gateway's own (callers' ids may collide) and so does its progress token; the answer and the progress
notifications go back to the request that asked. What the server asks of its client (sampling, elicitation,
roots) is answered with an error: a shared process has no one caller to ask. When the process exits, every
request still waiting gets `ProcessExitedError`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.message import SessionMessage
from mcp.types import jsonrpc_message_adapter

from gateway.stdio.stderr import StderrLog

logger = logging.getLogger(__name__)
PROTOCOL_VERSION = "2025-11-25"  # what the gateway asks of the process (the process may answer an older one)
MAX_IN_FLIGHT = 256  # requests waiting on one process at once
MAX_PER_CALLER = 32  # of them one caller's (a shared process is everyone's)
METHOD_NOT_FOUND = -32601
Progress = Callable[[dict[str, Any]], None]
Streams = tuple[Any, Any]  # (receive stream of SessionMessage | Exception, send stream of SessionMessage)
Opener = Callable[[], AbstractAsyncContextManager[Streams]]


def stdio_opener(params: StdioServerParameters, label: str) -> Opener:
    """Spawn the program; its stderr goes to the log (gateway.stdio.stderr)."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Streams]:
        stderr = StderrLog(label)
        try:
            async with stdio_client(params, errlog=stderr.writer) as streams:
                stderr.spawned()
                yield streams
        finally:
            stderr.close()

    return opened


def sse_opener(url: str, headers: dict[str, str], *, timeout: float) -> Opener:
    """Connect to a legacy HTTP+SSE server (GET its SSE endpoint, POST to the endpoint it names) with `headers`."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Streams]:
        async with sse_client(url, headers=headers, timeout=timeout, sse_read_timeout=86400.0) as streams:
            yield streams

    return opened


class ProcessExitedError(Exception):
    """The process is not running (it exited, never started, or did not answer initialize in time)."""


class BusyError(Exception):
    """MAX_IN_FLIGHT requests are already waiting on this process."""


class BadMessageError(Exception):
    """The caller's message is not one the SDK can send as JSON-RPC."""


class StdioProcess:
    """A running server: `start`, then `request` (and `notify`), `stop`. `in_flight` and `last_used` tell the pool
    (gateway.stdio.servers) when it is idle."""

    def __init__(self, opener: Opener, *, label: str, start_timeout: float) -> None:
        self._opener, self.label, self._start_timeout = opener, label, start_timeout
        self.initialize_result: dict[str, Any] = {}
        self.in_flight = 0
        self.started_at = self.last_used = time.monotonic()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._callers: dict[str, int] = {}  # requests in flight by caller
        self._progress: dict[str, tuple[Progress, Any]] = {}  # gateway token -> (callback, the caller's token)
        self._write: anyio.abc.ObjectSendStream[SessionMessage] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self.exited = asyncio.Event()

    @property
    def alive(self) -> bool:
        return self._ready.is_set() and not self.exited.is_set()

    async def start(self) -> None:
        """Spawn the process and initialize it.

        Raises:
            ProcessExitedError: it could not be spawned, exited, or did not answer initialize within start_timeout.
        """
        self._task = asyncio.create_task(self._run(), name=f"stdio {self.label}")
        ready = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait({ready, self._task}, timeout=self._start_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if not self._ready.is_set():
            await self.stop()
            raise ProcessExitedError("the stdio server did not start (see the log)")

    async def stop(self) -> None:
        """End the process (the SDK closes its stdin, then terminates it, then kills it) and wait for that."""
        self._stop.set()
        if self._task is not None:
            await asyncio.shield(self.exited.wait())

    def admit(self, message: dict[str, Any], caller: str = "") -> None:
        """Whether `request` would take this message now.

        Raises:
            ProcessExitedError, BusyError (MAX_IN_FLIGHT in all, or MAX_PER_CALLER of `caller`'s), BadMessageError.
        """
        if not self.alive:
            raise ProcessExitedError("the stdio server is not running")
        if len(self._pending) >= MAX_IN_FLIGHT or self._callers.get(caller, 0) >= MAX_PER_CALLER:
            raise BusyError
        if message.get("jsonrpc") != "2.0":
            raise BadMessageError("not a JSON-RPC 2.0 message")
        try:
            jsonrpc_message_adapter.validate_python(message)
        except ValueError:
            raise BadMessageError("not a JSON-RPC message the server can be sent") from None

    async def request(
        self, message: dict[str, Any], on_progress: Progress | None = None, *, caller: str = ""
    ) -> dict[str, Any]:
        """The process's answer to one of a caller's requests, with the caller's id (and progress token) restored.

        Raises:
            ProcessExitedError: the process is not running or exited before it answered.
            BusyError: too many requests are waiting on it.
            BadMessageError: the message cannot be sent.
        """
        self.admit(message, caller)
        own = next(self._ids)
        params = message.get("params")
        sent = {**message, "id": own}
        meta = params.get("_meta") if isinstance(params, dict) else None
        token = f"mcpgw-{own}"
        if isinstance(meta, dict) and "progressToken" in meta:
            if on_progress is not None:
                self._progress[token] = (on_progress, meta["progressToken"])
            sent["params"] = {**params, "_meta": {**meta, "progressToken": token}}  # type: ignore[dict-item]
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[own] = future
        self.in_flight += 1
        self._callers[caller] = self._callers.get(caller, 0) + 1
        try:
            await self._send(sent)
            answer = await future
        except asyncio.CancelledError:  # the caller went away or timed out: the server may stop working on it
            if self.alive:
                asyncio.ensure_future(self._cancelled(own))
            raise
        finally:
            self._pending.pop(own, None)
            self._progress.pop(token, None)
            self.in_flight -= 1
            if (left := self._callers.pop(caller) - 1) > 0:
                self._callers[caller] = left
            self.last_used = time.monotonic()
        return {**answer, "id": message.get("id")}

    async def notify(self, message: dict[str, Any]) -> None:
        """Pass a caller's notification on (best effort: none when the process is not running)."""
        if self.alive:
            await self._send(message)

    async def _cancelled(self, own: int) -> None:
        try:
            params = {"requestId": own, "reason": "the client went away"}
            await self._send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})
        except (ProcessExitedError, BadMessageError):
            pass

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            parsed = jsonrpc_message_adapter.validate_python(message)
        except ValueError:
            raise BadMessageError("not a JSON-RPC message the server can be sent") from None
        if self._write is None:
            raise ProcessExitedError("the stdio server is not running")
        try:
            await self._write.send(SessionMessage(parsed))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise ProcessExitedError("the stdio server exited") from None

    async def _run(self) -> None:
        """Open, initialize (unless the process ends or `stop` comes first), then serve until either happens."""
        try:
            async with self._opener() as (read, write):
                self._write = write
                reader = asyncio.create_task(self._read(read))
                stopping = asyncio.create_task(self._stop.wait())
                initializing = asyncio.create_task(self._initialize())
                try:
                    await asyncio.wait({reader, stopping, initializing}, return_when=asyncio.FIRST_COMPLETED)
                    if not initializing.done():
                        return  # (it exited, or the start timed out, before answering initialize)
                    initializing.result()
                    self._ready.set()
                    logger.info("stdio server of %s started", self.label)
                    await asyncio.wait({reader, stopping}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (reader, stopping, initializing):
                        task.cancel()
        except Exception as exc:  # spawn failures (OSError), an initialize refused: said in the log, not raised
            logger.warning("stdio server of %s failed: %s", self.label, exc)
        finally:
            self._write = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ProcessExitedError("the stdio server exited before it answered"))
            self.exited.set()
            if self._ready.is_set():
                logger.info("stdio server of %s ended", self.label)

    async def _initialize(self) -> None:
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-auth-gateway", "version": "1"},
        }
        own = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[own] = future
        await self._send({"jsonrpc": "2.0", "id": own, "method": "initialize", "params": params})
        answer = await future
        self._pending.pop(own, None)
        if not isinstance(answer.get("result"), dict):
            raise ProcessExitedError(f"initialize refused: {str(answer.get('error'))[:200]}")
        self.initialize_result = answer["result"]
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def _read(self, read: anyio.abc.ObjectReceiveStream[SessionMessage | Exception]) -> None:
        garbage = 0
        async for item in read:
            if isinstance(item, Exception):  # a line that is not JSON-RPC (the SDK logged it)
                garbage += 1
                continue
            message = item.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
            await self._received(message)
        if garbage:
            logger.warning("stdio server of %s wrote %d lines that are not JSON-RPC", self.label, garbage)

    async def _received(self, message: dict[str, Any]) -> None:
        method, own = message.get("method"), message.get("id")
        if method is None:  # an answer
            future = self._pending.get(own) if isinstance(own, int) else None
            if future is not None and not future.done():
                future.set_result(message)
            return
        if own is not None:  # the server asks its client something: a shared process has no one to ask
            answer: dict[str, Any] = {"jsonrpc": "2.0", "id": own}
            if method == "ping":
                answer["result"] = {}
            else:
                answer["error"] = {"code": METHOD_NOT_FOUND, "message": f"{method} is not offered by the gateway"}
            try:
                await self._send(answer)
            except (ProcessExitedError, BadMessageError):
                pass
            return
        params = message.get("params")
        if method == "notifications/progress" and isinstance(params, dict):
            found = self._progress.get(str(params.get("progressToken")))
            if found is not None:
                callback, token = found
                callback({**message, "params": {**params, "progressToken": token}})
