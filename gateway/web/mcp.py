"""The protected MCP endpoint of each route: one handler, its steps read top to bottom (gateway.web.mcp_steps).

MCP requests are dispatched straight here by the server (`dispatcher`, before the application's router) or, through
aiohttp's plain test server, by the outermost middleware (`mcp_first`): they do not pass through the OAuth pages'
layers (per-IP OAuth limits, form bodies), and this handler does for itself what the catch-all middleware does for
the rest: request ids and CORS headers stamped on every answer, unreadable headers (400), store down (503, fail
closed), and any other failure as a JSON-RPC 500 without details. Every request but a preflight leaves one audit
line, refused or not.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.app_state import MCP_KEY, REQUEST_ID_KEY
from gateway.mcp import jsonrpc
from gateway.store.errors import StoreUnavailableError
from gateway.web import aggregate, legacy_sse, mcp_steps
from gateway.web.cors import stamp
from gateway.web.errors import Refusal, jsonrpc_error
from gateway.web.mcp_state import McpCall, McpEndpoint
from gateway.web.mcp_steps_traced import TRACED
from gateway.web.mcp_trace import CallTrace
from gateway.web.middleware import RETRY_AFTER_SECONDS, headers_are_utf8, request_id

logger = logging.getLogger(__name__)
MCP_METHODS = ("POST", "GET", "DELETE", "OPTIONS")  # what an MCP endpoint answers (any other: 405)


async def _serve(call: McpCall, step: Any) -> web.StreamResponse:
    """The steps in order; `step` is `gateway.web.mcp_steps`, or the same with spans (mcp_steps_traced.TRACED)."""
    info = step.route(call)
    step.origin(call, info)
    step.transport_headers(call)
    await step.bearer(call, info)
    await step.proof(call, info)
    if call.legacy_kind is not None:  # an HTTP+SSE client (2024-11-05): its stream, or a POST on its session
        if info.route.aggregate is not None:
            raise Refusal(jsonrpc_error(404, jsonrpc.NOT_FOUND, "A virtual server has no HTTP+SSE endpoints"))
        if call.legacy is None:
            return await legacy_sse.stream(call)
        legacy_sse.check_owner(call)
    await step.resumption(call, info)
    await step.body(call)
    step.digest(call, info)
    await step.inspection(call, info)
    await step.limits(call, info)
    step.verdict(call, info)
    if info.route.aggregate is not None:  # a virtual server: each request dispatched to its member routes
        return await aggregate.serve(call, info)
    return await step.upstream(call, info)  # identity headers, upstream, relay


async def handle_mcp(request: web.Request) -> web.StreamResponse:
    """The MCP route as the application's router reaches it (`mcp_first`; the server's `dispatcher` comes first)."""
    return await serve_mcp(request, request.app[MCP_KEY])


async def serve_mcp(request: web.BaseRequest, mcp: McpEndpoint) -> web.StreamResponse:
    """POST (JSON-RPC), GET (SSE stream), DELETE (end session) and OPTIONS (CORS preflight); audited. Every answer
    names its request id and carries the CORS headers the Origin check decided on (stamped before it is sent)."""
    call = McpCall(request, mcp)  # type: ignore[arg-type]  # (a web.Request but for its application)
    call.request_id = request[REQUEST_ID_KEY] = request_id(request)
    response: web.StreamResponse | None = None
    steps: Any = mcp_steps
    if mcp.tracing is not None:
        call.trace, steps = CallTrace(mcp.tracing, request, mcp.settings.tracing.step_spans), TRACED
    try:
        if not headers_are_utf8(request):
            raise Refusal(
                jsonrpc_error(400, jsonrpc.INVALID_REQUEST, "Invalid request: a request header is not valid UTF-8")
            )
        response = await _serve(call, steps)
    except Refusal as refusal:
        response = legacy_sse.refused(call, refusal.response)
        if refusal.reason is not None and call.info is not None:
            mcp.metrics.auth_failures.labels(call.info.route.name, refusal.reason).inc()
    except StoreUnavailableError as exc:
        logger.error("store unavailable (%s): answering 503 (request %s)", exc, call.request_id)
        mcp.metrics.store_errors.inc()
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
        response = jsonrpc_error(
            503, jsonrpc.STORE_UNAVAILABLE, "Gateway store unavailable; retry later", headers=headers
        )
    except Exception:
        # no request details in the message: headers may carry tokens
        logger.exception("unhandled error (request %s %s)", request.method, request.path)
        response = jsonrpc_error(500, jsonrpc.INTERNAL_ERROR, "Internal gateway error")
    finally:
        _finish(call, response)
        if call.trace is not None:
            await call.trace.finish(call, response)
    if not response.prepared:  # (a streamed answer was stamped before its head went out)
        stamp(response.headers, call.request_id, call.cors)
    return response


def _finish(call: McpCall, response: web.StreamResponse | None) -> None:
    """The request is over: forget its token watch, write its audit line (not for preflights)."""
    if call.watch is not None:
        call.watch.release()
    request = call.request
    if call.info is None or request.method == "OPTIONS":
        return
    call.mcp.audit.emit(
        "mcp.request",
        request_id=call.request_id,
        route=call.info.route.name,
        http_method=request.method,
        client_ip=call.client_ip,
        status=response.status if response is not None else None,
        bytes=_length(response),
        **call.fields,
    )


@web.middleware
async def mcp_first(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost middleware: MCP routes go to their one handler at once, everything else down the chain."""
    if request.match_info.handler is handle_mcp:
        return await serve_mcp(request, request.app[MCP_KEY])
    return await handler(request)


def dispatcher(app: web.Application) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """The server's request handler (gateway.web.connections): a request to an MCP endpoint path, with a method the
    route answers, goes to `serve_mcp` before the application's router, middleware and response signals; anything
    else to the application. The same paths and methods as the router's MCP routes (gateway.web.routes), so
    both ways in answer alike (tests through aiohttp's test server take the router's)."""
    mcp, handle = app[MCP_KEY], app._handle  # noqa: SLF001 (what aiohttp's AppRunner serves)
    paths, methods = frozenset(mcp.routes.endpoint_paths()), frozenset(MCP_METHODS)

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        if request.rel_url.path_safe in paths and request.method in methods:  # (what the router matches)
            return await serve_mcp(request, mcp)
        return await handle(request)  # type: ignore[arg-type]  # (the application's requests: web.Request)

    return dispatch


def _length(response: web.StreamResponse | None) -> int | None:
    """Body bytes sent (streamed), or to be sent (a whole response the server writes after the handler)."""
    if response is None:
        return None
    if response.prepared:
        return response.body_length
    return response.content_length if isinstance(response, web.Response) else None
