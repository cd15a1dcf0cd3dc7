"""JSON-RPC 2.0 peeking and error bodies for MCP routes (JSON-RPC 2.0 §5.1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Implementation-defined server errors live in -32000..-32099 (JSON-RPC 2.0 §5.1).
UNAUTHORIZED = -32001
FORBIDDEN = -32003
NOT_FOUND = -32004
PAYLOAD_TOO_LARGE = -32013
REQUEST_TIMEOUT = -32008  # the body stalled (HTTP 408)
UPSTREAM_UNAVAILABLE = -32002
UPSTREAM_TIMEOUT = -32005
STORE_UNAVAILABLE = -32006
INTERNAL_ERROR = -32603

RequestId = str | int | float | None  # JSON-RPC ids are strings or Numbers (1.0 included)


def peek_id(body: bytes) -> RequestId:
    """The `id` of a single JSON-RPC request in `body`, or None when unreadable (batches, notifications)."""
    if not body or body.lstrip()[:1] != b"{":
        return None
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: pathologically nested input
        return None
    return _id(message.get("id")) if isinstance(message, dict) else None


def _id(value: Any) -> RequestId:
    return value if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def error_body(code: int, message: str, request_id: RequestId = None, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


PARSE_ERROR = -32700
HEADER_MISMATCH = -32009
RATE_LIMITED = -32029

# What each method touches: tools/call -> ("tools", name); the list methods whose results are filtered.
TARGETS = {"tools/call": ("tools", "name"), "prompts/get": ("prompts", "name"),
           "resources/read": ("resources", "uri"), "resources/subscribe": ("resources", "uri"),
           "resources/unsubscribe": ("resources", "uri")}
LISTS = {"tools/list": ("tools", "tools", "name"), "prompts/list": ("prompts", "prompts", "name"),
         "resources/list": ("resources", "resources", "uri"),
         "resources/templates/list": ("resources", "resourceTemplates", "uriTemplate")}


@dataclass(frozen=True)
class Message:
    """One JSON-RPC request or notification from a POST body, reduced to what policy needs."""

    id: RequestId
    method: str
    target: tuple[str, str] | None  # (kind, name or URI) for calls that touch one named thing
    arguments: Any = None


def parse_messages(body: bytes) -> list[Message] | None:
    """The requests in a single or batch body; None when the body is not JSON-RPC (left to the upstream)."""
    try:
        decoded = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(decoded, (dict, list)):
        return None
    items = decoded if isinstance(decoded, list) else [decoded]
    messages = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("method"), str):
            continue  # responses (to server requests) and junk pass through untouched
        method = item["method"]
        params: dict[str, Any] = item["params"] if isinstance(item.get("params"), dict) else {}
        target = None
        if method in TARGETS:
            kind, field = TARGETS[method]
            value = params.get(field)
            target = (kind, value if isinstance(value, str) else "")
        messages.append(Message(_id(item.get("id")), method, target, params.get("arguments")))
    return messages


def header_mismatch(messages: list[Message], method_header: str | None, name_header: str | None) -> str | None:
    """Why the 2026-07-28 mirrored headers disagree with the body, or None (MCP RS-14)."""
    if method_header is None and name_header is None:
        return None
    if len(messages) != 1:
        return "Mcp-Method/Mcp-Name headers need a single JSON-RPC message"
    message = messages[0]
    if method_header is not None and method_header != message.method:
        return "Mcp-Method header does not match the body's method"
    if name_header is not None and (message.target is None or name_header != message.target[1]):
        return "Mcp-Name header does not match the body"
    return None
