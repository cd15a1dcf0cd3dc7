"""A command route's process host: the Streamable HTTP upstream the gateway's request path forwards to, on a Unix
socket only the gateway's user can reach (gateway.stdio.sockets), in front of the route's stdio processes.

Everything a client sends has passed the gateway first (bearer, policy, limits, audit); the host trusts the
gateway's own headers only: the identity headers (which the gateway sets and never takes from a client) choose
the caller's process (per_user) and its environment, and the route's `upstream_auth` header carries the
credential into `credential_env`. Under shared isolation each request's `_meta` names the caller
(IDENTITY_META; a client's own copy is replaced).

Both client revisions are served by a process initialized once by the gateway (gateway.stdio.process):
`initialize` (2025-11-25 clients) and `server/discover` (2026-07-28) are answered from what the process said at
its initialize, `ping` at once; every other request goes to the process, a 2026-07-28 request without its
per-request envelope (ENVELOPE), and its answer comes back as JSON, or as an SSE stream when the request asked
for progress. No sessions are minted: each POST stands alone (GET and
DELETE: 405). A batch is refused (no revision since 2025-03-26 has them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.config import Route
from gateway.config.stdio import IDENTITY_ENV, StdioCommand
from gateway.config.upstream_auth import FORMAT_FIELD
from gateway.mcp import jsonrpc
from gateway.stdio.process import BadMessageError, BusyError, ProcessExitedError, StdioProcess
from gateway.stdio.servers import BackoffError, StdioServers
from gateway.stdio.sockets import BRIDGE_HEADER, BRIDGE_SECRET, socket_path

logger = logging.getLogger(__name__)
IDENTITY_META = "dev.mcp-auth-gateway/identity"  # _meta key naming the caller
# the 2026-07-28 per-request envelope: a process initialized by the gateway refuses requests that carry it
ENVELOPE = frozenset(f"io.modelcontextprotocol/{k}" for k in ("protocolVersion", "clientInfo", "clientCapabilities"))
MODERN = "2026-07-28"
LEGACY_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
ANSWERED_HERE = frozenset({"initialize", "server/discover", "ping"})
CACHEABLE = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"})


class StdioHost:
    """The aiohttp application of one command route (`app`), over its `servers`."""

    def __init__(self, route: Route, servers: StdioServers, *, max_body_bytes: int) -> None:
        self.route, self.servers = route, servers
        claims = {claim: header for header, claim in route.identity_headers.items()}
        self._user, self._email, self._groups = (claims.get(c) for c in ("user", "email", "groups"))
        self.app = web.Application(client_max_size=max_body_bytes)
        self.app.router.add_route("*", "/mcp", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not hmac.compare_digest(request.headers.get(BRIDGE_HEADER, ""), BRIDGE_SECRET):
            return web.Response(status=403)  # not the gateway: another local process of its user
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "POST"})
        try:
            message = json.loads(await request.read())
        except (ValueError, RecursionError):
            return _error(400, jsonrpc.PARSE_ERROR, "Parse error: the body is not JSON")
        if not isinstance(message, dict):
            return _error(400, jsonrpc.INVALID_REQUEST, "Invalid request: one JSON-RPC object per POST on this route")
        method, request_id = message.get("method"), jsonrpc.message_id(message)
        if not isinstance(method, str):
            return web.Response(status=202)  # a client's answer: a process never asks one (gateway.stdio.process)
        try:
            process = await self._process(request.headers)
            if "id" not in message:
                # not passed on: the process was initialized by the gateway, and a caller's cancellation names its
                # own id, not the gateway's (the gateway cancels a request whose caller went away itself)
                return web.Response(status=202)
            if method in ANSWERED_HERE:
                return web.json_response({"jsonrpc": "2.0", "id": request_id, "result": _local(process, message)})
            modern = jsonrpc.is_modern(message)
            return await self._forward(request, process, self._with_identity(message, request.headers), modern)
        except BackoffError as exc:
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
            return _error(503, jsonrpc.UPSTREAM_UNAVAILABLE, str(exc), request_id, headers)
        except BusyError:
            return _error(503, jsonrpc.UPSTREAM_UNAVAILABLE, "The stdio server is busy", request_id)
        except ProcessExitedError as exc:
            return _error(502, jsonrpc.UPSTREAM_UNAVAILABLE, f"Upstream MCP server unavailable: {exc}", request_id)
        except BadMessageError as exc:
            return _error(400, jsonrpc.INVALID_REQUEST, f"Invalid request: {exc}", request_id)

    async def _process(self, headers: Mapping[str, str]) -> StdioProcess:
        """The caller's process (per_user: keyed by the user the gateway names) and what it is started with: a
        command's environment (identity, credential in `credential_env`), or an HTTP+SSE connection's headers
        (the gateway's identity headers and credential line, as the gateway sent them)."""
        bridged = self.route.bridged
        assert bridged is not None
        per_user = bridged.isolation == "per_user"
        user = headers.get(self._user or "")
        if per_user and not user:
            raise ProcessExitedError("no user identity for a per-user server")
        started: dict[str, str] = {}
        auth = self.route.upstream_auth
        if isinstance(bridged, StdioCommand):
            if per_user:
                said = (user, headers.get(self._email or "", ""), headers.get(self._groups or "", ""))
                started = dict(zip(IDENTITY_ENV, said, strict=True))
            credential = self._credential(headers)
            if credential is not None and bridged.credential_env:
                started[bridged.credential_env] = credential
        else:
            names = list(self.route.identity_headers) if per_user else []
            if auth is not None:
                names.append(getattr(auth, "header", "Authorization"))
            started = {name: headers[name] for name in names if name in headers}
        return await self.servers.process(user if per_user and user else "shared", started)

    def _credential(self, headers: Mapping[str, str]) -> str | None:
        """The route's upstream credential as the gateway sent it, without its header format ("Bearer {token}")."""
        auth = self.route.upstream_auth
        if auth is None:
            return None
        value = headers.get(getattr(auth, "header", "Authorization"))
        fmt = getattr(auth, "format", None)
        if value is None or not isinstance(fmt, str) or FORMAT_FIELD not in fmt:
            return value
        prefix, suffix = fmt.split(FORMAT_FIELD, 1)
        if value.startswith(prefix) and value.endswith(suffix) and len(value) >= len(prefix) + len(suffix):
            return value[len(prefix) : len(value) - len(suffix)]
        return value

    def _with_identity(self, message: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        """The message as the process takes it: the caller named in its `_meta` (a client's own IDENTITY_META
        dropped), a 2026-07-28 envelope removed (the process speaks the revision it was initialized with)."""
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        given = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        meta = {k: v for k, v in given.items() if k != IDENTITY_META and k not in ENVELOPE}
        user = headers.get(self._user or "")
        if user:
            groups = [g for g in headers.get(self._groups or "", "").split(",") if g]
            meta[IDENTITY_META] = {"user": user, "email": headers.get(self._email or ""), "groups": groups}
        if not meta and "params" not in message:
            return message
        return {**message, "params": {**params, "_meta": meta}}

    async def _forward(
        self, request: web.Request, process: StdioProcess, message: dict[str, Any], modern: bool
    ) -> web.StreamResponse:
        """The process's answer, in the shape of the caller's revision (`modern`: a 2026-07-28 request's result
        says its resultType, and a cacheable one its caching hints: none, private)."""
        meta = (message.get("params") or {}).get("_meta") or {}
        streamed = "progressToken" in meta and "text/event-stream" in request.headers.get("Accept", "")
        caller = request.headers.get(self._user or "", "")
        process.admit(message, caller)  # (refused before any answer is begun)
        timeout = self.route.timeout
        if not streamed:
            try:
                async with asyncio.timeout(timeout):
                    answer = await process.request(message, caller=caller)
            except TimeoutError:
                return _error(504, jsonrpc.UPSTREAM_TIMEOUT, "Upstream MCP server timed out", message.get("id"))
            return web.json_response(_shaped(answer, message["method"]) if modern else answer)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1024)

        def progress(notification: dict[str, Any]) -> None:
            if not events.full():  # (a flood of progress beyond what the client reads is dropped)
                events.put_nowait(notification)

        asked = asyncio.ensure_future(process.request(message, progress, caller=caller))
        try:
            async with asyncio.timeout(timeout):
                while not asked.done() or not events.empty():
                    getter = asyncio.ensure_future(events.get())
                    await asyncio.wait({getter, asked}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        await _event(response, getter.result())
                    else:
                        getter.cancel()
            answer = _shaped(asked.result(), message["method"]) if modern else asked.result()
        except ProcessExitedError as exc:
            answer = jsonrpc.error_body(
                jsonrpc.UPSTREAM_UNAVAILABLE, f"Upstream MCP server unavailable: {exc}", message.get("id")
            )
        except TimeoutError:
            asked.cancel()
            answer = jsonrpc.error_body(jsonrpc.UPSTREAM_TIMEOUT, "Upstream MCP server timed out", message.get("id"))
        await _event(response, answer)
        await response.write_eof()
        return response


def _shaped(answer: dict[str, Any], method: str) -> dict[str, Any]:
    """A 2025-11-25 process's answer as a 2026-07-28 result: `resultType` (complete) and, for the cacheable
    methods, `ttlMs` 0 and `cacheScope` private where it gave none (MCP 2026-07-28 server/utilities/caching)."""
    result = answer.get("result")
    if not isinstance(result, dict):
        return answer
    shaped = {"resultType": "complete", **result}
    if method in CACHEABLE:
        shaped = {"ttlMs": 0, "cacheScope": "private", **shaped}
    return {**answer, "result": shaped}


def _local(process: StdioProcess, message: dict[str, Any]) -> dict[str, Any]:
    """initialize, server/discover and ping, from what the process said when the gateway initialized it."""
    said = process.initialize_result
    method = message["method"]
    if method == "ping":
        return {}
    version = str(said.get("protocolVersion", LEGACY_VERSIONS[-1]))
    older = [v for v in LEGACY_VERSIONS if v <= version]
    if method == "initialize":
        params = message.get("params") if isinstance(message.get("params"), dict) else {}
        asked = params.get("protocolVersion")
        chosen = asked if asked in older else version
        return {**said, "protocolVersion": chosen}
    result: dict[str, Any] = {
        "resultType": "complete",
        "supportedVersions": [MODERN, *reversed(older)],
        "capabilities": said.get("capabilities", {}),
        "_meta": {"io.modelcontextprotocol/serverInfo": said.get("serverInfo", {})},
        "ttlMs": 0,
        "cacheScope": "private",
    }
    if isinstance(said.get("instructions"), str):
        result["instructions"] = said["instructions"]
    return result


async def _event(response: web.StreamResponse, message: dict[str, Any]) -> None:
    await response.write(b"event: message\ndata: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n")


def _error(
    status: int, code: int, message: str, request_id: jsonrpc.RequestId = None, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(jsonrpc.error_body(code, message, request_id), status=status, headers=headers)


class StdioHosts:
    """Every command route's host, listening on its socket (`start`) until `close` (its processes stopped too)."""

    def __init__(self, routes: list[Route], *, max_body_bytes: int) -> None:
        self.hosts = [
            StdioHost(route, StdioServers(route), max_body_bytes=max_body_bytes)
            for route in routes
            if route.bridged is not None
        ]
        self._runners: list[web.AppRunner] = []

    async def start(self) -> None:
        for host in self.hosts:
            runner = web.AppRunner(host.app, access_log=None, handle_signals=False)
            await runner.setup()
            self._runners.append(runner)
            path = socket_path(host.route.name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # (left by an earlier host of this process)
            await web.UnixSite(runner, path, backlog=4096).start()
            os.chmod(path, 0o600)

    async def close(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        for host in self.hosts:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(socket_path(host.route.name))
        await asyncio.gather(*(host.servers.close() for host in self.hosts))
