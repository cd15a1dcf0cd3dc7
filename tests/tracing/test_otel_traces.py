"""OpenTelemetry: a real OTLP/HTTP receiver on loopback gets the spans of real SDK client sessions through the gateway
(the SDK's own exporter, configured only by the standard OTEL_* variables), and the upstream (the real demo server,
over HTTP and over stdio) sees the propagated context: the `traceparent` header and `_meta.traceparent`."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.app_state import MCP_KEY, TRACING_KEY
from tests.conftest import route
from tests.support.mcp_wire import modern_call
from tests.support.tokens import issue

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
STEPS = {"bearer", "policy", "limiter", "policy.verdict", "upstream", "relay"}
SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent: str
    kind: int
    attributes: dict[str, Any]
    service: str


class Receiver:
    """OTLP/HTTP's trace endpoint (protobuf), keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.headers.get("Content-Type", ""))
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        for resource_spans in export.resource_spans:
            service = {a.key: _value(a.value) for a in resource_spans.resource.attributes}.get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Span(
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.kind,
                            {a.key: _value(a.value) for a in span.attributes},
                            service,
                        )
                    )
        return web.Response(content_type="application/x-protobuf", body=b"")

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[Span]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = [s for s in self.spans if predicate(s)]
            if found:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no such span among {[s.name for s in self.spans]}")


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    """The receiver on loopback, and the standard variables naming it (what the operator sets)."""
    collector = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", collector.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", str(server.make_url("")).rstrip("/"))
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    yield collector
    await server.close()


async def echo_headers(server: TestServer, token: str, path: str, **headers: str) -> dict[str, str]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", **headers}, timeout=30)
    async with http, Client(streamable_http_client(str(server.make_url(path)), http_client=http)) as client:
        result = await client.call_tool("echo_headers", {})
    return json.loads(result.content[0].text)


def parent_of(traceparent: str) -> tuple[str, str]:
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and flags == "01"
    return trace_id, span_id


async def test_one_sdk_session_is_one_trace_under_the_clients_span_and_the_upstream_sees_the_gateways(
    start_gateway, upstream, store, receiver
):
    server = await start_gateway([route("notes", upstream.url)])
    token = await issue(store, server, "notes", user="alice")
    seen = await echo_headers(server, token, "/notes/mcp", traceparent=CLIENT_TRACEPARENT, tracestate="vendor=1")

    calls = await receiver.wait_for(lambda s: s.name == "tools/call echo_headers" and s.kind == SERVER)
    call = calls[0]
    assert (call.trace_id, call.parent) == (CLIENT_TRACE, CLIENT_SPAN)
    assert call.service == "gateway-under-test"
    assert call.attributes["mcp.method.name"] == "tools/call"
    assert call.attributes["gen_ai.tool.name"] == "echo_headers"
    assert call.attributes["http.request.method"] == "POST"
    assert call.attributes["http.route"] == "/notes/mcp"
    assert call.attributes["http.response.status_code"] == 200
    assert call.attributes["mcp_gateway.route"] == "notes"
    assert call.attributes["jsonrpc.request.id"]
    assert call.attributes["enduser.id"].startswith("hmac-sha256:")  # hashed by default, never the id itself
    assert "alice" not in json.dumps(call.attributes)

    children = await receiver.wait_for(lambda s: s.parent == call.span_id and s.name == "relay")
    children = [s for s in receiver.spans if s.parent == call.span_id]
    assert {s.name for s in children} >= STEPS
    assert all(s.trace_id == CLIENT_TRACE for s in children)
    (upstream_span,) = [s for s in children if s.name == "upstream"]
    assert upstream_span.kind == CLIENT
    assert upstream_span.attributes["http.response.status_code"] == 200
    assert upstream_span.attributes["server.address"] == "127.0.0.1"

    # the upstream saw the gateway's upstream span as its parent, in the client's trace, and not the client's state
    assert parent_of(seen["traceparent"]) == (CLIENT_TRACE, upstream_span.span_id)
    assert "tracestate" not in seen or seen["tracestate"] == "vendor=1"
    # every request of the session is in the client's trace (the session's other POSTs and its GET, if any)
    servers = [s for s in receiver.spans if s.kind == SERVER]
    assert {s.trace_id for s in servers} == {CLIENT_TRACE}
    assert {s.name for s in servers} >= {"tools/call echo_headers"}
    assert all(t.startswith("application/x-protobuf") for t in receiver.requests)


async def test_a_2026_client_without_a_header_is_parented_by_its_meta_and_a_stdio_server_gets_the_meta(
    start_gateway, store, receiver
):
    """No traceparent header: the first message's `_meta.traceparent` is the parent; the stdio server (no HTTP
    headers there) reads the gateway's context in `_meta.traceparent` of the request it is given."""
    command = [sys.executable, "-m", "gateway.demo_upstream", "--stdio"]
    server = await start_gateway([{"name": "files", "path": "/files/mcp", "command": command, "scopes": []}])
    token = await issue(store, server, "files")
    headers, body = modern_call(1, "whoami", {})
    body["params"]["_meta"]["traceparent"] = CLIENT_TRACEPARENT
    async with httpx2.AsyncClient(timeout=30) as http:
        answer = await http.post(
            str(server.make_url("/files/mcp")), json=body, headers={**headers, "Authorization": f"Bearer {token}"}
        )
    assert answer.status_code == 200, answer.text
    text = answer.text if answer.headers["content-type"].startswith("application/json") else _sse_data(answer.text)
    said = json.loads(json.loads(text)["result"]["content"][0]["text"])

    (call,) = await receiver.wait_for(lambda s: s.name == "tools/call whoami")
    assert (call.trace_id, call.parent) == (CLIENT_TRACE, CLIENT_SPAN)
    (upstream_span,) = await receiver.wait_for(lambda s: s.name == "upstream" and s.parent == call.span_id)
    assert upstream_span.attributes["mcp_gateway.upstream"] == "bridge"
    assert parent_of(said["meta"]["traceparent"]) == (CLIENT_TRACE, upstream_span.span_id)


def _sse_data(text: str) -> str:
    return next(line[5:].strip() for line in text.splitlines() if line.startswith("data:") and line[5:].strip())


async def test_refusals_and_oauth_endpoints_are_traced_too(start_gateway, upstream, receiver):
    server = await start_gateway([route("notes", upstream.url)])
    async with httpx2.AsyncClient(timeout=10) as http:
        refused = await http.post(
            str(server.make_url("/notes/mcp")),
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"traceparent": CLIENT_TRACEPARENT},
        )
        metadata = await http.get(str(server.make_url("/.well-known/oauth-authorization-server")))
    assert refused.status_code == 401 and metadata.status_code == 200

    (post,) = await receiver.wait_for(lambda s: s.name == "POST /notes/mcp")
    assert post.attributes["http.response.status_code"] == 401 and post.parent == CLIENT_SPAN
    assert "enduser.id" not in post.attributes
    (bearer,) = await receiver.wait_for(lambda s: s.name == "bearer" and s.parent == post.span_id)
    assert bearer.attributes["mcp_gateway.refused"]
    (oauth,) = await receiver.wait_for(lambda s: s.name == "GET /.well-known/oauth-authorization-server")
    assert oauth.kind == SERVER and oauth.attributes["http.response.status_code"] == 200


@pytest.mark.parametrize(("mode", "expected"), [("plain", "local:alice"), ("omit", None)])
async def test_the_user_id_attribute_follows_tracing_user_id(start_gateway, upstream, store, receiver, mode, expected):
    server = await start_gateway([route("notes", upstream.url)], tracing={"user_id": mode})
    token = await issue(store, server, "notes", user="alice")
    await echo_headers(server, token, "/notes/mcp")
    (call,) = await receiver.wait_for(lambda s: s.name == "tools/call echo_headers")
    assert call.attributes.get("enduser.id") == expected


async def test_off_by_default_the_clients_context_passes_unchanged(start_gateway, upstream, store, monkeypatch):
    """No OTEL_* endpoint: no tracer at all (the request path tests `is None` once), and the client's own
    traceparent/tracestate reach the upstream as it sent them (a proxy that does not trace)."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    server = await start_gateway([route("notes", upstream.url)])
    assert server.app[TRACING_KEY] is None and server.app[MCP_KEY].tracing is None
    token = await issue(store, server, "notes")
    seen = await echo_headers(server, token, "/notes/mcp", traceparent=CLIENT_TRACEPARENT, tracestate="vendor=1")
    assert seen["traceparent"] == CLIENT_TRACEPARENT and seen["tracestate"] == "vendor=1"


@pytest.mark.parametrize(
    "environment",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": " "},
        {},
    ],
)
def test_the_standard_variables_turn_it_off(environment):
    from gateway.tracing import tracing_from_environment

    assert tracing_from_environment(environment) is None


async def test_without_step_spans_only_the_request_and_the_upstream_are_spans(start_gateway, upstream, store, receiver):
    server = await start_gateway([route("notes", upstream.url)], tracing={"step_spans": False})
    token = await issue(store, server, "notes")
    seen = await echo_headers(server, token, "/notes/mcp", traceparent=CLIENT_TRACEPARENT)
    (call,) = await receiver.wait_for(lambda s: s.name == "tools/call echo_headers")
    (upstream_span,) = await receiver.wait_for(lambda s: s.parent == call.span_id)
    assert upstream_span.name == "upstream" and upstream_span.kind == CLIENT
    assert parent_of(seen["traceparent"]) == (CLIENT_TRACE, upstream_span.span_id)
    assert not [s for s in receiver.spans if s.name in STEPS - {"upstream"}]


async def test_a_request_the_sampler_drops_records_nothing_but_still_passes_the_trace_on(
    start_gateway, upstream, store, receiver, monkeypatch
):
    """OTEL_TRACES_SAMPLER=always_off: no span is exported, and the upstream still joins the client's trace (the
    flags say "not sampled")."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    server = await start_gateway([route("notes", upstream.url)])
    token = await issue(store, server, "notes")
    seen = await echo_headers(server, token, "/notes/mcp", traceparent=f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-00")
    version, trace_id, _, flags = seen["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", CLIENT_TRACE, "00")
    await asyncio.sleep(0.5)  # (the batch processor exports every 50 ms here)
    assert not [s for s in receiver.spans if s.name.startswith("tools/call")]


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"t":"\\ud800"},'
        b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"n":1e400},'
        b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}',
        b"not json",
        b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
    ],
)
def test_a_body_that_cannot_be_written_again_as_it_was_goes_unchanged(body):
    from gateway.web.mcp_trace import with_meta_context

    assert with_meta_context(body, [("traceparent", CLIENT_TRACEPARENT)]) == body


def test_a_2026_body_gets_the_gateways_context_in_its_meta():
    from gateway.web.mcp_trace import with_meta_context

    headers, message = modern_call(1, "add", {"a": 1, "b": 2})
    message["params"]["_meta"]["tracestate"] = "client=1"
    written = json.loads(with_meta_context(json.dumps(message).encode(), [("traceparent", CLIENT_TRACEPARENT)]))
    assert written["params"]["_meta"]["traceparent"] == CLIENT_TRACEPARENT
    assert "tracestate" not in written["params"]["_meta"]  # (ours had none: the client's is not passed on as ours)
    assert written["params"]["arguments"] == {"a": 1, "b": 2}


async def test_a_lone_surrogate_in_a_traced_request_is_relayed_not_a_500(start_gateway, upstream, store, receiver):
    server = await start_gateway([route("notes", upstream.url)])
    token = await issue(store, server, "notes")
    headers, message = modern_call(1, "add", {"a": 1, "b": 2})
    message["params"]["_meta"]["note"] = "\ud800"
    body = json.dumps(message).encode()  # (ensure_ascii: the surrogate as the escape \\ud800, as JSON.stringify does)
    async with httpx2.AsyncClient(timeout=30) as http:
        answer = await http.post(
            str(server.make_url("/notes/mcp")),
            content=body,
            headers={**headers, "Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    assert answer.status_code == 200, answer.text
