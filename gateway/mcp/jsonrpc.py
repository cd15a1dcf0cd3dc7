"""JSON-RPC 2.0 peeking and error bodies for MCP routes (JSON-RPC 2.0 §5.1)."""

from __future__ import annotations

import json
from typing import Any

# Implementation-defined server errors live in -32000..-32099 (JSON-RPC 2.0 §5.1).
UNAUTHORIZED = -32001
FORBIDDEN = -32003
NOT_FOUND = -32004
PAYLOAD_TOO_LARGE = -32013
UPSTREAM_UNAVAILABLE = -32002
UPSTREAM_TIMEOUT = -32005
STORE_UNAVAILABLE = -32006
INTERNAL_ERROR = -32603

RequestId = str | int | None


def peek_id(body: bytes) -> RequestId:
    """The `id` of a single JSON-RPC request in `body`, or None when unreadable (batches, notifications)."""
    if not body or body.lstrip()[:1] != b"{":
        return None
    try:
        message = json.loads(body)
    except ValueError:
        return None
    value = message.get("id") if isinstance(message, dict) else None
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def error_body(code: int, message: str, request_id: RequestId = None, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}
