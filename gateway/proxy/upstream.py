"""Streaming forwarder (MCP Streamable HTTP): bodies and SSE events pass chunk by chunk, never buffered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from gateway.app_state import ROUTE_INFO_KEY
from gateway.config import ProxySettings
from gateway.identity import RequestContext
from gateway.mcp import jsonrpc
from gateway.mcp.event_ids import MAX_ID_LINE, EventIdBinding
from gateway.mcp.filtering import FilterError, ListFilter
from gateway.mcp.sse import MAX_EVENT_BYTES, EventRewrite, SseFramer, UnreadableEventError
from gateway.open_streams import StreamWatch
from gateway.proxy.headers import client_response_headers, upstream_request_headers
from gateway.proxy.http1 import UpstreamBodyError, UpstreamError, UpstreamResponse
from gateway.proxy.pool import Origin, UpstreamPool
from gateway.routing import RouteInfo
from gateway.stdio.sockets import BRIDGE_HEADER, BRIDGE_SECRET, socket_path
from gateway.web.cors import stamp
from gateway.web.errors import jsonrpc_error

logger = logging.getLogger(__name__)
_QUERY_DROP = frozenset({"access_token"})
Observer = Callable[[bytes], None]  # RFC 6750 §2.3 form: never accepted, never passed on


class UpstreamFailure(Exception):
    """The upstream could not be reached (502) or did not answer in time (504)."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def build_http_client(settings: ProxySettings) -> UpstreamPool:
    """One keep-alive pool for every upstream; no body timeout (SSE streams are long-lived). Bodies pass through as
    the upstream encoded them (nothing is decompressed)."""
    return UpstreamPool(limit=settings.pool_size, connect_timeout=settings.connect_timeout)


@lru_cache(maxsize=256)
def _upstream_target(upstream: str, bridged: str | None) -> tuple[Origin, str, str]:
    """(scheme, host, port), the request target's path and the Host value, parsed once per route URL. A route the
    gateway bridges (`bridged`: its name; a stdio command or an HTTP+SSE server) is served by its host's Unix
    socket (gateway.stdio)."""
    if bridged is not None:
        return ("unix", socket_path(bridged), 0), "/mcp", "localhost"
    url = urlsplit(upstream)
    scheme = url.scheme.lower()
    port = url.port or (443 if scheme == "https" else 80)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    return (scheme, url.hostname or "", port), path, url.netloc


async def open_upstream(
    http: UpstreamPool,
    request: web.Request,
    info: RouteInfo,
    context: RequestContext,
    body: bytes | None,
    *,
    public_proto: str,
    client_address: str,
    identity_jwt: str | None = None,
    last_event_id: str | None = None,
    request_id: str | None = None,
    credential: tuple[str, str] | None = None,
    trace_context: list[tuple[str, str]] | None = None,
) -> UpstreamResponse:
    """Send the request upstream and return once its status and headers arrived. `Last-Event-ID` goes only as
    `last_event_id`: the upstream id the client's header was checked to be bound to (gateway.mcp.event_ids).
    `trace_context` (traced requests: gateway.web.mcp_trace) replaces the client's `traceparent`/`tracestate`.

    Raises:
        UpstreamFailure: connection refused or reset (502), no response headers within the route timeout (504).
    """
    route = info.route
    origin, path, netloc = _upstream_target(route.upstream, route.name if route.bridged is not None else None)
    query = urlencode([(k, v) for k, v in request.query.items() if k not in _QUERY_DROP])
    headers = upstream_request_headers(
        request.headers,
        route,
        context,
        client_ip=client_address,
        proto=public_proto,
        host=request.host,
        upstream_host=netloc,
        identity_jwt=identity_jwt,
        request_id=request_id,
        public_host=info.host,
        last_event_id=last_event_id,  # never as the client sent it
        credential=credential,
    )
    if route.bridged is not None:  # its host takes requests from this gateway only (gateway.stdio.sockets)
        headers.append((BRIDGE_HEADER, BRIDGE_SECRET))
    if trace_context is not None:
        headers = [(k, v) for k, v in headers if k.lower() not in TRACE_HEADERS] + trace_context
    if query:
        path += ("&" if "?" in path else "?") + query
    try:
        return await http.request(request.method, origin, path, headers, body, route.timeout)
    except TimeoutError:
        raise UpstreamFailure(504, jsonrpc.UPSTREAM_TIMEOUT, "Upstream MCP server timed out") from None
    except UpstreamError as exc:
        logger.warning("upstream %s unreachable: %s", route.name, exc)  # (the pool's own words: no request data)
        raise UpstreamFailure(502, jsonrpc.UPSTREAM_UNAVAILABLE, "Upstream MCP server unavailable") from None


TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
WHOLE_BODY_BYTES = 256 * 1024  # a response no longer than this (by its Content-Length) is sent in one write


async def relay(
    request: web.Request,
    upstream: UpstreamResponse,
    list_filter: ListFilter | None = None,
    *,
    event_ids: EventIdBinding | None = None,
    watch: StreamWatch | None = None,
    own: tuple[str | None, dict[str, str] | None] = (None, None),
    observe: Observer | None = None,
) -> web.StreamResponse:
    """Copy status, headers and body to the client; a client that leaves closes the upstream. Every SSE stream
    is framed (gateway.mcp.sse) and its event ids bound to the caller (`event_ids`); an encoded one is refused
    (502). With `list_filter` (the route's policy is active) every response is filtered: an SSE stream event by
    event, anything else as one body of at most MAX_EVENT_BYTES. What the gateway cannot read fails closed: a
    JSON body becomes a 502, an SSE stream ends before the event. Once `watch` ends (the token was revoked or
    expired) a streamed body stops: the client sees a clean end of the response (it reconnects with a fresh
    token) and the upstream request is closed (MCP: closing a stream cancels it). A body read whole (filtered,
    or short by its Content-Length: the usual JSON-RPC answer) goes out with its head in one write. A streamed
    answer gets the gateway's own headers (`own`: request id and CORS, gateway.web.cors.stamp) before its head is sent;
    the caller stamps a whole one. `observe` sees the bytes the upstream sent (a whole body at once, a stream chunk
    by chunk), for the audit line; it changes nothing.

    Raises:
        UpstreamFailure: such a body broke off before anything was sent (502; the caller echoes the request id).
    """
    mode = _read_mode(upstream, filtered=list_filter is not None)
    if mode == "refuse":
        upstream.close()
        return _unfilterable()
    route = request[ROUTE_INFO_KEY].route
    if mode in ("json", "other") or (mode == "none" and _short(upstream)):
        headers = client_response_headers(upstream.headers, route, keep_length=False)  # (set from the body)
        return await _whole(upstream, headers, list_filter if mode != "none" else None, mode, observe)
    headers = client_response_headers(upstream.headers, route, keep_length=mode == "none")  # (else it changes)
    framer = _framer(list_filter, event_ids) if mode == "sse" else None
    return await _stream(request, upstream, headers, framer, watch, own, observe)


async def _whole(
    upstream: UpstreamResponse,
    headers: list[tuple[str, str]],
    list_filter: ListFilter | None,
    mode: str,
    observe: Observer | None,
) -> web.Response:
    completed = False
    try:
        body = await _read_bounded(upstream)
        completed = True
        if observe is not None:
            observe(body)
    except UpstreamBodyError:
        logger.warning("upstream response broke off")  # (nothing was sent yet: a clean 502, as if unreachable)
        raise UpstreamFailure(502, jsonrpc.UPSTREAM_UNAVAILABLE, "Upstream MCP server unavailable") from None
    finally:
        if completed:
            upstream.release()
        else:
            upstream.close()
    if list_filter is not None:
        try:
            body = list_filter.json_body(body)
        except FilterError as exc:
            if mode == "json" or len(body) > MAX_EVENT_BYTES:
                logger.warning("upstream response refused on a filtered route: %s", exc)
                return _unfilterable()
            # not JSON and not labelled JSON: no client reads it as JSON-RPC (an error page): pass it on
    return web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=body)


async def _stream(
    request: web.Request,
    upstream: UpstreamResponse,
    headers: list[tuple[str, str]],
    sse: SseFramer | None,
    watch: StreamWatch | None,
    own: tuple[str | None, dict[str, str] | None],
    observe: Observer | None,
) -> web.StreamResponse:
    """The body as it arrives. When the token ends, closing the upstream ends the copy (no task per stream waits
    for it): the client then sees a clean end of the response."""
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
    stamp(response.headers, *own)
    completed = False
    try:
        await response.prepare(request)
        if watch is not None:
            watch.on_end(upstream.close)
        try:
            await _copy_body(upstream, response, sse, observe)
            completed = True
        except UpstreamBodyError:
            if watch is None or watch.reason is None:
                raise
        finally:
            if watch is not None:
                watch.on_end(None)  # (before the connection may go back to the pool)
        await response.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        logger.debug("client went away; closing upstream stream")
    except UpstreamBodyError:
        logger.warning("upstream stream broke off")  # status already sent: end the response
    finally:
        if completed:
            upstream.release()
        else:
            upstream.close()  # cancels the upstream request
    return response


def _short(upstream: UpstreamResponse) -> bool:
    """A body of known length small enough to hold (HEAD, 204 and 304 answers stream: they have none)."""
    length = upstream.headers.get("Content-Length")
    return (
        length is not None
        and length.isdigit()
        and int(length) <= WHOLE_BODY_BYTES
        and upstream.status not in (204, 304)
    )


def _framer(list_filter: ListFilter | None, event_ids: EventIdBinding | None) -> SseFramer:
    """The list filter first (it may rewrite data: whole events, at most MAX_EVENT_BYTES each), then the id binding
    (it rewrites ids only: without a filter, only `id` lines are held and every other byte streams on)."""
    rewrites: list[EventRewrite] = [event_ids.rewrite] if event_ids is not None else []
    if list_filter is None:
        return SseFramer(rewrites, held_field=b"id", max_held_line=MAX_ID_LINE)
    return SseFramer([list_filter.event, *rewrites])


async def _copy_body(
    upstream: UpstreamResponse, response: web.StreamResponse, sse: SseFramer | None, observe: Observer | None
) -> None:
    try:
        async for chunk in upstream:
            if observe is not None:
                observe(chunk)
            await response.write(sse.feed(chunk) if sse is not None else chunk)
        if sse is not None:
            await response.write(sse.flush())
    except UnreadableEventError as exc:  # ends the stream here: nothing after an unreadable event is trusted
        logger.warning("SSE stream ended: %s", exc)
        await response.write(exc.passed)


def _read_mode(upstream: UpstreamResponse, *, filtered: bool) -> str:
    """How a response is read: "sse" (framed, on every route: its event ids are bound), "none" (passed as it is,
    unfiltered routes only), on a filtered route "json" or "other" (filtered if it parses as JSON, else passed
    on), or "refuse" when clients could read it in a way the gateway does not: on any route an encoded SSE stream
    or a Content-Type naming both JSON and SSE (the TypeScript SDK looks for text/event-stream anywhere in it
    first, the Python SDK for a leading application/json), on a filtered route any encoded body."""
    encodings = {v.strip().lower() for v in upstream.headers.getall("Content-Encoding", [])} - {"", "identity"}
    content_type = _content_type(upstream)
    sse = is_event_stream(upstream)
    if (sse or filtered) and (encodings or (sse and "json" in content_type)):
        return "refuse"
    if sse or not filtered:
        return "sse" if sse else "none"
    return "json" if "json" in content_type else "other"


def is_event_stream(upstream: UpstreamResponse) -> bool:
    """Whether the response is relayed as an SSE stream (framed; ended with its token): one answer for both."""
    return "event-stream" in _content_type(upstream)


def _content_type(upstream: UpstreamResponse) -> str:
    return ",".join(upstream.headers.getall("Content-Type", [])).lower()


async def _read_bounded(upstream: UpstreamResponse) -> bytes:
    """The whole body; one byte more than MAX_EVENT_BYTES when it is larger (the caller refuses it)."""
    chunks, size = [], 0
    async for chunk in upstream:
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_EVENT_BYTES:
            return b"".join(chunks)[: MAX_EVENT_BYTES + 1]
    return b"".join(chunks)


def _unfilterable() -> web.Response:
    return jsonrpc_error(
        502, jsonrpc.UPSTREAM_UNAVAILABLE, "Upstream response could not be checked against the route's policy"
    )


def upstream_failure_response(failure: UpstreamFailure, request_id: jsonrpc.RequestId) -> web.Response:
    return jsonrpc_error(failure.status, failure.code, failure.message, request_id)
