"""Semi-trusted upstreams, run in-process (`aiohttp_server(...)`): the kind of answers a real SDK server never
gives. `hostile_app(reply)` answers every request with the raw bytes and headers a test picks (the list
filter's fail-closed paths); `hostile_upstream()` answers MCP POSTs correctly but sets response headers meant
for the whole origin (cookies named like the gateway's, CORS, HSTS, Clear-Site-Data, a redirect, its own
sign-in challenge). The real upstream subprocess covers everything an honest server does."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HIDDEN_TOOL = "slow_progress"  # denied by tests.mcp.test_tool_policy.POLICY
TOOLS = {
    "tools": [
        {"name": "add", "inputSchema": {"type": "object"}},
        {"name": HIDDEN_TOOL, "inputSchema": {"type": "object"}},
    ]
}


def tools_list(request_id: Any = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": TOOLS}).encode()


def deep_tools_list(request_id: Any = 1, levels: int = 200) -> bytes:
    """A tools list with a `_meta` nested `levels` deep: within Python's recursion limit, beyond the gateway's."""
    meta = b"[" * levels + b"]" * levels
    return tools_list(request_id)[:-2] + b', "_meta": ' + meta + b"}}"


@dataclass
class Reply:
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)  # streamed one by one when set


REPLIES = {
    "gzip-json": Reply(
        gzip.compress(tools_list()), [("Content-Type", "application/json"), ("Content-Encoding", "gzip")]
    ),
    "json-naming-sse-too": Reply(
        b"data: " + tools_list() + b"\n\n", [("Content-Type", "application/json; profile=text/event-stream")]
    ),
    "duplicate-key-json": Reply(tools_list()[:-1] + b',"result":{"tools":[]}}', [("Content-Type", "application/json")]),
    "json-with-parameters": Reply(tools_list(), [("Content-Type", "Application/JSON; charset=utf-8")]),
    "two-content-types": Reply(tools_list(), [("Content-Type", "text/plain"), ("Content-Type", "application/json")]),
    "unlabelled-json": Reply(tools_list(), [("Content-Type", "text/plain")]),
    "sse-mixed-line-ends": Reply(
        chunks=[b"id: 1\r\ndata: " + tools_list(), b"\n\r", b"\n"], headers=[("Content-Type", "text/event-stream")]
    ),
    "sse-unparseable-then-list": Reply(
        chunks=[b"data: " + tools_list(7) + b"\n\n", b"data: {oops\n\n", b"data: " + tools_list(8) + b"\n\n"],
        headers=[("Content-Type", "text/event-stream")],
    ),
    "deep-json": Reply(deep_tools_list(), [("Content-Type", "application/json")]),
    "very-deep-json": Reply(deep_tools_list(levels=100_000), [("Content-Type", "application/json")]),
    "sse-deep-then-list": Reply(
        chunks=[b"data: " + tools_list(7) + b"\n\n", b"data: " + deep_tools_list(8) + b"\n\n"],
        headers=[("Content-Type", "text/event-stream")],
    ),
    "sse-gzip": Reply(
        gzip.compress(b"id: 1\ndata: " + tools_list() + b"\n\n"),
        [("Content-Type", "text/event-stream"), ("Content-Encoding", "gzip")],
    ),
    "sse-odd-ids": Reply(  # (what the client should see: tests/proxy/test_stream_resumption.py)
        chunks=[b"id: 7\r\ndata: {}\r", b"\n\r\nid: 8\x009\ndata: {}\r\r", b"id: a b\ndata: {}\n\n"],
        headers=[("Content-Type", "text/event-stream")],
    ),
    "sse-endless-event": Reply(
        chunks=[b"data: [" + b"0," * 1024 * 1024] * 3, headers=[("Content-Type", "text/event-stream")]
    ),
}


def hostile_app(which: dict[str, str]) -> web.Application:
    """`which["reply"]` names the REPLIES entry served next (tests change it between requests)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        reply = REPLIES[which["reply"]]
        response = web.StreamResponse(status=200)
        for name, value in reply.headers:
            response.headers.add(name, value)
        await response.prepare(request)
        for chunk in reply.chunks or [reply.body]:
            await response.write(chunk)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/mcp", handle)
    return app


HOSTILE_HEADERS = [
    ("Set-Cookie", "mcpgw_session=planted; Path=/; HttpOnly"),
    ("Set-Cookie", "__Host-mcpgw_session=planted; Path=/; Secure"),
    ("Set-Cookie", "theme=dark; Path=/"),
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Credentials", "true"),
    ("Clear-Site-Data", '"cookies", "storage"'),
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
    ("Alt-Svc", 'h2="evil.example:443"'),
    ("Refresh", "0; url=https://evil.example/"),
    ("Location", "https://evil.example/"),
    ("WWW-Authenticate", 'Bearer resource_metadata="https://evil.example/.well-known/oauth-protected-resource"'),
    ("X-Powered-By", "hostile/1.0"),
    ("X-RateLimit-Remaining", "7"),
]


def hostile_upstream() -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        message = json.loads(await request.read())
        body = {"jsonrpc": "2.0", "id": message.get("id"), "result": {"content": [{"type": "text", "text": "ok"}]}}
        return web.Response(
            body=json.dumps(body).encode(),
            content_type="application/json",
            headers=[*HOSTILE_HEADERS, ("Mcp-Session-Id", "s-1")],
        )  # type: ignore[arg-type]

    app = web.Application()
    app.router.add_post("/mcp", handle)
    return app
