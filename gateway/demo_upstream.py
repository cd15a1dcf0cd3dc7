"""A real, unmodified MCP server for the demo and the tests: the `mcp` SDK's MCPServer over Streamable HTTP.

Run as a subprocess (`python -m gateway.demo_upstream --port N`); the process boundary is what the
gateway is for. Tools:
- ``echo_headers`` returns the HTTP headers this server received (oauth2-proxy's echo upstream);
- ``slow_progress`` sends progress notifications with pauses, to show streaming is unbuffered (and can close its
  stream midway, to show resumption);
- ``add`` adds two integers;
- ``confirm_add`` adds them once the user confirms: it first answers with an ``input_required`` result asking for
  an elicitation (MCP 2026-07-28 multi round-trip requests), and adds when the retried call carries the answer.

Lists and ``server/discover`` say they are the same for everyone (``cacheScope: "public"``, fresh for an hour), as
a server with no per-user data would; reads are private (the SDK's default).

Resources: ``file:///public/readme.md`` and ``file:///secret/keys.txt`` (listed), and the template
``file:///{+path}``, which reads any path the way a file server does: the SDK percent-decodes the variable, the
path is normalized (``public/../secret`` is ``secret``) and looked up case-insensitively (as on macOS or Windows).
A ``greeting`` prompt with completion of its ``name`` argument. ``--event-store`` keeps every SSE event in
memory, so a client can resume a stream with ``Last-Event-ID`` (MCP 2025-11-25 resumability); like most
servers it replays to whoever presents an id, which is why the gateway binds ids to the caller (gateway.mcp.event_ids).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import posixpath
from typing import Any

from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.types import (
    Completion,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    PromptReference,
)

PUBLIC = CacheHint(ttl_ms=3_600_000, scope="public")
LISTS = ("server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list")
server = MCPServer(name="upstream-echo", version="1.0", cache_hints=dict.fromkeys(LISTS, PUBLIC))
FILES = {"public/readme.md": "# Public readme\nAnyone may read this.", "secret/keys.txt": "top-secret-key-material"}


@server.tool()
async def echo_headers(ctx: Context) -> str:
    """Return the request headers this server received, as a JSON object (lowercase names)."""
    request = ctx.request_context.request
    headers = {} if request is None else {k.lower(): v for k, v in request.headers.items()}
    return json.dumps(headers, sort_keys=True)


@server.tool()
async def slow_progress(ctx: Context, steps: int = 3, delay: float = 0.3, interrupt: bool = False) -> str:
    """Report ``steps`` progress notifications ``delay`` seconds apart, then return "done". With ``interrupt`` (and
    ``--event-store``) the response stream is closed after the first one: the client resumes with Last-Event-ID."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        if interrupt and step == 1:
            await ctx.close_sse_stream()
        await asyncio.sleep(delay)
    return "done"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def confirm_add(ctx: Context, a: int, b: int) -> str | InputRequiredResult:
    """Add two integers once the user confirms (an input_required result first; the retry carries the answer)."""
    answer = (ctx.input_responses or {}).get("confirm")
    if isinstance(answer, ElicitResult):
        return str(a + b) if answer.action == "accept" else "declined"
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    ask = ElicitRequestFormParams(message=f"Add {a} and {b}?", requested_schema=schema)
    return InputRequiredResult(input_requests={"confirm": ElicitRequest(params=ask)}, request_state="confirm-add")


@server.resource("file:///public/readme.md", name="readme", mime_type="text/markdown")
def readme() -> str:
    return FILES["public/readme.md"]


@server.resource("file:///secret/keys.txt", name="keys")
def keys() -> str:
    return FILES["secret/keys.txt"]


@server.resource("file:///{+path}", name="files")
def files(path: str) -> str:
    """Any file by path, read as a forgiving file server would."""
    found = {name.casefold(): text for name, text in FILES.items()}.get(posixpath.normpath(path).casefold())
    if found is None:
        raise ResourceError(f"no such file: {path}")
    return found


@server.prompt()
def greeting(name: str) -> str:
    """Greet someone by name."""
    return f"Say hello to {name}."


@server.completion()  # type: ignore[no-untyped-call, untyped-decorator]
async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
    if isinstance(ref, PromptReference) and ref.name == "greeting":
        return Completion(values=[n for n in ("alice", "bob") if n.startswith(argument.value)])
    return None


class MemoryEventStore(EventStore):
    """Every event of every stream, in memory (tests and demos only)."""

    def __init__(self) -> None:
        self._events: list[tuple[str, str, Any]] = []  # (event id, stream id, message or None for priming)
        self._ids = itertools.count(1)

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = str(next(self._ids))
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        position = next((i for i, (event_id, _, _) in enumerate(self._events) if event_id == last_event_id), None)
        if position is None:
            return None
        stream_id = self._events[position][1]
        for event_id, stream, message in self._events[position + 1 :]:
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


async def whoami(ctx: Context) -> str:
    """(stdio and HTTP+SSE only) Who the gateway says the caller is: the MCP_GATEWAY_* and DEMO_* environment
    variables of this process, its pid, uid and working directory, the identity in the request's _meta and (HTTP+SSE)
    the headers of the request."""
    meta = ctx.request_context.meta
    request = ctx.request_context.request
    headers = {} if request is None else {k.lower(): v for k, v in request.headers.items()}
    names = sorted(k for k in os.environ if k.startswith(("MCP_GATEWAY_", "DEMO_")))
    said = dict(meta or {}) if not hasattr(meta, "model_dump") else meta.model_dump(by_alias=True, exclude_none=True)
    answer = {
        "env": {k: os.environ[k] for k in names},
        "meta": said,
        "pid": os.getpid(),
        "uid": os.getuid(),
        "cwd": os.getcwd(),
        "headers": headers,
    }
    return json.dumps(answer, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Demo upstream MCP server (Streamable HTTP).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--path", default="/mcp")
    parser.add_argument("--stateless", action="store_true", help="no Mcp-Session-Id (stateless HTTP)")
    parser.add_argument("--json-response", action="store_true", help="answer POSTs with JSON instead of SSE")
    parser.add_argument(
        "--event-store", action="store_true", help="keep SSE events: streams resume on GET with Last-Event-ID"
    )
    parser.add_argument("--stdio", action="store_true", help="speak MCP on stdin/stdout (a stdio server)")
    parser.add_argument("--sse", action="store_true", help="speak the legacy HTTP+SSE transport (GET /sse)")
    args = parser.parse_args()
    if args.stdio or args.sse:
        server.add_tool(whoami)
    if args.stdio:
        server.run("stdio")
        return
    if args.sse:
        server.run("sse", host=args.host, port=args.port)
        return
    server.run(
        "streamable-http",
        host=args.host,
        port=args.port,
        streamable_http_path=args.path,
        stateless_http=args.stateless,
        json_response=args.json_response,
        event_store=MemoryEventStore() if args.event_store else None,
    )


if __name__ == "__main__":
    main()
