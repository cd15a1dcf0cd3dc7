"""The spans of one traced MCP request (only when tracing is on: gateway.tracing), and what goes upstream of it.

A SERVER span for the request, named as the MCP semantic conventions say (`tools/call get_weather`, or
`POST /notes/mcp` before the body is known or for a batch), with the HTTP and MCP attributes; one child span per
step: `bearer` (and `dpop`), `policy` (the body judged), `limiter`, `policy.verdict`, `upstream` (a CLIENT span,
until the upstream's head arrives) and `relay` (the answer, or the stream, to the client). The parent is the
client's `traceparent` header or, where it sent none, the `_meta.traceparent` of its first message (2026-07-28):
known only once the body is read, so the server span opens then, back-dated to the request's start, with the
steps already done replayed under it. Upstream the gateway's own context replaces the client's: the
`traceparent`/`tracestate` headers, and `_meta.traceparent` in each message that carries a `_meta` of 2026-07-28
or already named a `traceparent` there. The user id is an attribute only as `tracing.user_id` says (keyed hash
by default).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.mcp import jsonrpc
from gateway.store.errors import StoreUnavailableError
from gateway.tracing import Tracing
from gateway.web.errors import Refusal

if TYPE_CHECKING:
    from gateway.web.mcp_state import McpCall

CONTEXT_HEADERS = ("traceparent", "tracestate")
_TARGET_ATTRIBUTE = {"tools/call": "gen_ai.tool.name", "prompts/get": "gen_ai.prompt.name"}  # (and name the span)


class CallTrace:
    """The trace of one MCP request: its server span (once its parent is known) and its steps' spans."""

    __slots__ = ("tracing", "steps", "started", "span", "parent", "pending", "upstream_context")

    def __init__(self, tracing: Tracing, request: web.BaseRequest, steps: bool = True) -> None:
        self.tracing = tracing
        self.steps = steps  # a span per step (tracing.step_spans), or only the request's and the upstream's
        self.started = time.time_ns()
        self.span: Any = None
        self.parent: Any = tracing.propagator.extract(request.headers) if "traceparent" in request.headers else None
        self.pending: list[tuple[str, int, int, str | None]] = []  # steps before the span opened
        self.upstream_context: list[tuple[str, str]] | None = None  # the headers that carry ours upstream

    def open(self, call: McpCall) -> None:
        """Start the server span (back-dated), under the client's context, and replay the steps done so far."""
        if self.span is not None:
            return
        from opentelemetry.trace import SpanKind

        request = call.request
        parent = self.parent if self.parent is not None else self._body_context(call.body)
        name = f"{request.method} {call.info.route.path if call.info is not None else request.path}"
        self.span = self.tracing.tracer.start_span(name, parent, SpanKind.SERVER, start_time=self.started)
        if not self.span.is_recording():  # not sampled: nothing to replay, only the context to pass on
            self.pending.clear()
        for step, started, ended, refused in self.pending:
            child = self._child(step, started)
            if refused is not None:
                child.set_attribute("mcp_gateway.refused", refused)
            child.end(ended)
        self.pending.clear()
        self.upstream_context = self.headers(self.span)

    @contextmanager
    def step(self, name: str, client: bool = False) -> Iterator[Any]:
        """One step as a child span (or, before the server span opened, its times kept to replay); nothing for a
        request that is not sampled, nor for the steps but `upstream` when `tracing.step_spans` is off."""
        if (self.span is not None and not self.span.is_recording()) or (not self.steps and name != "upstream"):
            yield None
            return
        started = time.time_ns()
        span = self._child(name, started, client) if self.span is not None else None
        refused: str | None = None
        try:
            yield span
        except Refusal as refusal:  # a spec-shaped answer, not a failure of the gateway: named, status unset
            refused = refusal.reason or str(refusal.response.status)
            raise
        except BaseException as exc:
            if span is not None:
                span.record_exception(exc)
                span.set_status(_error_status())
            raise
        finally:
            if span is None:
                self.pending.append((name, started, time.time_ns(), refused))
            else:
                if refused is not None:
                    span.set_attribute("mcp_gateway.refused", refused)
                span.end()

    def headers(self, span: Any) -> list[tuple[str, str]]:
        """`traceparent` (and `tracestate`) naming `span` as the parent, for a request upstream."""
        from opentelemetry.trace import set_span_in_context

        carrier: dict[str, str] = {}
        self.tracing.propagator.inject(carrier, set_span_in_context(span))
        return list(carrier.items())

    async def finish(self, call: McpCall, response: web.StreamResponse | None) -> None:
        """The request is over: its attributes, its status, and the span ended."""
        self.open(call)
        span = self.span
        if not span.is_recording():
            span.end()
            return
        attributes = _request_attributes(call)
        if call.info is not None:
            attributes["http.route"] = call.info.route.path
            attributes["mcp_gateway.route"] = call.info.route.name
        if call.grant is not None:
            record = call.grant.context.record
            attributes["oauth.client_id"] = record.client_id[:256]
            try:
                if (user := await _user_attribute(call, record.user_id)) is not None:
                    attributes["enduser.id"] = user
            except StoreUnavailableError:  # (the hash's key not loaded yet, and the store down: no user id)
                pass
        if call.inspection is not None:
            self._describe(call.inspection.messages, attributes)
        if response is not None:
            attributes["http.response.status_code"] = response.status
            if response.status >= 500:
                attributes["error.type"] = str(response.status)
                span.set_status(_error_status())
        span.set_attributes(attributes)
        span.end()

    def _describe(self, messages: list[jsonrpc.Message], attributes: dict[str, Any]) -> None:
        """The MCP attributes and span name of a single message (a batch keeps the HTTP name)."""
        if len(messages) != 1:
            if messages:
                attributes["mcp_gateway.batch_size"] = len(messages)
            return
        message = messages[0]
        attributes["mcp.method.name"] = message.method[:128]
        if message.id is not None:
            attributes["jsonrpc.request.id"] = str(message.id)[:128]
        name = message.method[:128]
        if message.target is not None:
            kind, target = message.target
            if message.method in _TARGET_ATTRIBUTE:
                attributes[_TARGET_ATTRIBUTE[message.method]] = target[:256]
                name = f"{name} {target[:128]}"
            elif kind == "resources":  # (a URI: an attribute, never the span's name)
                attributes["mcp.resource.uri"] = target[:1024]
        self.span.update_name(name)

    def _child(self, name: str, started: int, client: bool = False) -> Any:
        from opentelemetry.trace import SpanKind, set_span_in_context

        kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
        return self.tracing.tracer.start_span(name, set_span_in_context(self.span), kind, start_time=started)

    def _body_context(self, body: bytes | None) -> Any:
        """The context a 2026-07-28 client put in its first message's `_meta` (None: a new trace)."""
        if not body or b"traceparent" not in body:
            return None
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return None
        first = decoded[0] if isinstance(decoded, list) and decoded else decoded
        params = first.get("params") if isinstance(first, dict) else None
        meta = params.get("_meta") if isinstance(params, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("traceparent"), str):
            return None
        carrier = {k: meta[k] for k in CONTEXT_HEADERS if isinstance(meta.get(k), str)}
        return self.tracing.propagator.extract(carrier)


def with_meta_context(body: bytes, context: list[tuple[str, str]]) -> bytes:
    """`body` with `context` as `_meta.traceparent` (and `tracestate`) of each message whose `_meta` is of
    2026-07-28 or already named a `traceparent`; the body unchanged when none does, when it is not JSON, or when
    writing it again would change what it says (non-finite numbers, lone surrogates). Numbers are re-written as
    the doubles they denote (`0.30000000000000000001` goes as `0.3`), as JSON readers upstream read them anyway."""
    if not body or (b"traceparent" not in body and jsonrpc.VERSION_META.encode() not in body):
        return body
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return body
    changed = False
    for message in decoded if isinstance(decoded, list) else [decoded]:
        params = message.get("params") if isinstance(message, dict) else None
        meta = params.get("_meta") if isinstance(params, dict) else None
        if isinstance(meta, dict) and ("traceparent" in meta or jsonrpc.VERSION_META in meta):
            for name in CONTEXT_HEADERS:
                meta.pop(name, None)
            meta.update(context)
            changed = True
    if not changed:
        return body
    try:  # (a lone surrogate, or a number beyond a double such as 1e400: the body goes as it came, the header
        # still carries the context)
        return json.dumps(decoded, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (ValueError, UnicodeEncodeError):
        return body


def _request_attributes(call: McpCall) -> dict[str, Any]:
    """The HTTP request's attributes (HTTP semantic conventions) and the MCP ones its headers carry."""
    request = call.request
    attributes: dict[str, Any] = {
        "http.request.method": request.method,
        "url.path": request.path,
        "url.scheme": call.mcp.public_proto or "http",
        "network.protocol.version": f"{request.version.major}.{request.version.minor}",
    }
    if call.client_ip:
        attributes["client.address"] = call.client_ip
    if agent := request.headers.get("User-Agent"):
        attributes["user_agent.original"] = agent[:256]
    if (version := request.headers.get("MCP-Protocol-Version")) is not None:
        attributes["mcp.protocol.version"] = version[:64]
    if (session := request.headers.get("Mcp-Session-Id")) is not None:
        attributes["mcp.session.id"] = session[:128]
    return attributes


async def _user_attribute(call: McpCall, user_id: str) -> str | None:
    """`enduser.id` as `tracing.user_id` says: a keyed hash (the audit log's key), the id itself, or nothing."""
    mode = call.mcp.settings.tracing.user_id
    if mode == "omit":
        return None
    if mode == "plain":
        return user_id
    return await call.mcp.digester.digest(user_id)


def _error_status() -> Any:
    from opentelemetry.trace import Status, StatusCode

    return Status(StatusCode.ERROR)
