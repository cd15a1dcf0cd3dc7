"""Filter list results (tools/list, prompts/list, resources/list, resources/templates/list) so a caller sees
only what policy lets them use; JSON bodies and SSE-framed responses alike. Other messages pass unchanged."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from gateway.mcp.jsonrpc import LISTS

Allowed = Callable[[str, str], bool]  # (kind, name or URI) -> may the caller use it
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class ListFilter:
    """Knows which request ids asked for which list, and rewrites their results."""

    def __init__(self, lists: dict[str | int | float, str], allowed: Allowed) -> None:
        self._lists = lists  # request id -> list method
        self._allowed = allowed

    def message(self, message: Any) -> Any:
        if not isinstance(message, dict) or not isinstance(message.get("result"), dict):
            return message
        request_id = message.get("id")
        if not isinstance(request_id, (str, int, float)) or isinstance(request_id, bool) or \
                request_id not in self._lists:  # 1 and 1.0 are the same key, as in JSON
            return message
        kind, field, key = LISTS[self._lists[message["id"]]]
        items = message["result"].get(field)
        if not isinstance(items, list):
            return message
        kept = [i for i in items if isinstance(i, dict) and isinstance(i.get(key), str) and
                self._allowed(kind, i[key])]
        return {**message, "result": {**message["result"], field: kept}}

    def json_body(self, body: bytes) -> bytes:
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return body
        return json.dumps(self.messages(decoded), separators=(",", ":")).encode()

    def messages(self, decoded: Any) -> Any:
        """A single message or a batch array."""
        return [self.message(m) for m in decoded] if isinstance(decoded, list) else self.message(decoded)


class SseRewriter:
    """Incremental SSE pass: complete events are parsed only when their data is a filtered response; every other
    byte goes out as it came (events are forwarded as soon as they are complete: no buffering beyond one)."""

    def __init__(self, list_filter: ListFilter) -> None:
        self._filter = list_filter
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        self._buffer += chunk
        out = []
        while (match := _EVENT_END.search(self._buffer)) is not None:
            event, self._buffer = self._buffer[:match.end()], self._buffer[match.end():]
            out.append(self._event(event, match.group()))
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest

    def _event(self, event: bytes, terminator: bytes) -> bytes:
        lines = event[: -len(terminator)].splitlines()
        data = [line[5:].lstrip(b" ") for line in lines if line.startswith(b"data:")]
        if not data:
            return event
        try:
            message = json.loads(b"\n".join(data))
        except (ValueError, RecursionError):
            return event
        rewritten = self._filter.messages(message)
        if rewritten == message:
            return event
        other = [line for line in lines if not line.startswith(b"data:")]
        payload = json.dumps(rewritten, separators=(",", ":")).encode()
        return b"\n".join([*other, b"data: " + payload]) + b"\n\n"
