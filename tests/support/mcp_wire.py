"""Raw MCP messages for tests that need to see HTTP itself (statuses, headers, SSE chunks)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientResponse

MODERN = "2026-07-28"


def modern_call(
    request_id: int, tool: str, arguments: dict[str, Any], progress_token: str | None = None
) -> tuple[dict[str, str], dict[str, Any]]:
    """Headers and body of a stateless 2026-07-28 `tools/call` (mirrored headers included)."""
    meta: dict[str, Any] = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    if progress_token is not None:
        meta["progressToken"] = progress_token
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta},
    }
    return headers, body


def legacy_initialize(request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"},
        },
    }


async def read_sse_event(response: ClientResponse) -> dict[str, Any]:
    """The next `data:` event of an SSE response, parsed as JSON (comments and ids skipped)."""
    data: list[str] = []
    while True:
        line = (await response.content.readline()).decode()
        if line in ("\n", "\r\n", ""):
            if data:
                return json.loads("\n".join(data))
            if line == "":
                raise EOFError("stream ended")
            continue
        if line.startswith("data:"):
            data.append(line[5:].strip())


async def tool_result_text(response: ClientResponse) -> str:
    """The first text content of the tools/call result in an SSE or JSON response."""
    if response.content_type == "text/event-stream":
        while True:
            event = await read_sse_event(response)
            if "result" in event or "error" in event:
                break
    else:
        event = await response.json()
    assert "result" in event, event
    return str(event["result"]["content"][0]["text"])
