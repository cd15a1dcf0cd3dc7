"""Filter list results so a caller sees only what policy lets them use, in JSON bodies and SSE streams
(WHATWG HTML §9.2.6 "Interpreting an event stream"; MCP Streamable HTTP).

By shape, not by request: every JSON-RPC result whose `tools`, `prompts`, `resources`, `resourceTemplates` or
`contents` member is present is filtered by that member's kind, whatever id it answers and on whichever stream it comes
(a POST's answer, a GET stream, a replay after `Last-Event-ID`). What cannot be read the way a client would read
it fails closed (`FilterError`): a body or event that is not strict JSON (duplicate keys, NaN, nesting deeper
than strict_json.MAX_DEPTH), an SSE event
larger than MAX_EVENT_BYTES. Other bytes pass unchanged, event by event."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from gateway.mcp.strict_json import loads_strict

Allowed = Callable[[str, str], bool]  # (kind, name or URI) -> may the caller use it
MAX_EVENT_BYTES = 4 * 1024 * 1024  # one SSE event or one JSON body the gateway holds to filter
# result member -> (policy kind, item key); `contents` is resources/read's (a directory read MAY answer with the
# contents of several resources, MCP server/resources "Reading Resources")
LIST_FIELDS = {
    "tools": ("tools", "name"),
    "prompts": ("prompts", "name"),
    "resources": ("resources", "uri"),
    "resourceTemplates": ("resources", "uriTemplate"),
    "contents": ("resources", "uri"),
}
_LINE_END = re.compile(rb"[\r\n]")
_BOM = b"\xef\xbb\xbf"


class FilterError(Exception):
    """A response on a filtered route the gateway cannot read as the client would: it must not reach the client.
    `passed`: what came before it in the same chunk and may still go out (SseRewriter)."""

    def __init__(self, message: str, passed: bytes = b"") -> None:
        super().__init__(message)
        self.passed = passed


class ListFilter:
    """Rewrites list results; returns the very same object when nothing changes (so bytes can pass as they came)."""

    def __init__(self, allowed: Allowed) -> None:
        self._allowed = allowed

    def message(self, message: Any) -> Any:
        if not isinstance(message, dict) or not isinstance(message.get("result"), dict):
            return message
        result = message["result"]
        changed: dict[str, list[Any]] = {}
        for field, (kind, key) in LIST_FIELDS.items():
            if field not in result:
                continue
            items = result[field]
            if not isinstance(items, list):
                changed[field] = []  # not a list of anything policy could judge: nothing of it is shown
                continue
            kept = [
                i for i in items if isinstance(i, dict) and isinstance(i.get(key), str) and self._allowed(kind, i[key])
            ]
            if len(kept) != len(items):
                changed[field] = kept
        return {**message, "result": {**result, **changed}} if changed else message

    def messages(self, decoded: Any) -> Any:
        """A single message or a batch array (arrays inside arrays too: no reader gets an unfiltered copy)."""
        if not isinstance(decoded, list):
            return self.message(decoded)
        rewritten = [self.messages(m) for m in decoded]
        return decoded if all(new is old for new, old in zip(rewritten, decoded, strict=True)) else rewritten

    def json_body(self, body: bytes) -> bytes:
        """A whole JSON body, filtered; unchanged bytes when nothing is hidden.

        Raises:
            FilterError: the body is not strict UTF-8 JSON.
        """
        if not body.strip():
            return body
        try:
            decoded = loads_strict(body.decode("utf-8"))
            rewritten = self.messages(decoded)
        except (ValueError, RecursionError):
            raise FilterError("the upstream's JSON body is not strict JSON") from None
        return body if rewritten is decoded else _dumps(rewritten)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class SseRewriter:
    """Incremental event-stream parser (WHATWG §9.2.6: lines end in CRLF, LF or CR, mixed within one stream; a
    blank line ends an event; `data:` with or without one space; a leading BOM is dropped). Complete events go
    out as soon as they are complete: unchanged byte for byte, or rewritten when a list in them is filtered. An
    event still incomplete when the stream ends is dropped (clients discard it too).

    Raises (from feed):
        FilterError: an event's data is not strict JSON, or an event outgrows MAX_EVENT_BYTES: send its `passed`
            bytes, then end the stream.
    """

    def __init__(self, list_filter: ListFilter, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._filter = list_filter
        self._max = max_event_bytes
        self._buffer = b""  # the current, incomplete event
        self._scanned = 0  # how far into it lines have been split off
        self._lines: list[bytes] = []  # its complete lines, without line ends
        self._started = False  # past the optional BOM

    def feed(self, chunk: bytes) -> bytes:
        return self._parse(chunk, final=False)

    def flush(self) -> bytes:
        """End of stream: a last CR ends its line; whatever event is still incomplete is dropped."""
        out = self._parse(b"", final=True)
        self._buffer, self._scanned, self._lines = b"", 0, []
        return out

    def _parse(self, chunk: bytes, *, final: bool) -> bytes:
        buffer = self._buffer + chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer) and not final:
                self._buffer = buffer
                return b""
            buffer = buffer.removeprefix(_BOM)
            self._started = True
        out, start, position = [], 0, self._scanned
        while (match := _LINE_END.search(buffer, position)) is not None:
            end = match.end()
            if buffer[match.start()] == 0x0D:  # CR: a CRLF pair is one line end
                if end == len(buffer) and not final:
                    break  # the LF may be in the next chunk
                if buffer[end : end + 1] == b"\n":
                    end += 1
            line = buffer[position : match.start()]
            position = end
            if line:
                self._lines.append(line)
                continue
            try:
                out.append(self._event(buffer[start:end], self._lines))
            except FilterError as exc:
                raise FilterError(str(exc), b"".join(out)) from None
            start, self._lines = end, []
        self._buffer, self._scanned = buffer[start:], position - start
        if len(self._buffer) > self._max:
            raise FilterError(f"an SSE event is larger than {self._max} bytes", b"".join(out))
        return b"".join(out)

    def _event(self, raw: bytes, lines: list[bytes]) -> bytes:
        data = b"\n".join(_data_value(line) for line in lines if _field(line) == b"data")
        if not data:
            return raw  # empty data (a priming event, a comment): nothing is dispatched to the client
        try:
            message = loads_strict(data.decode("utf-8", errors="replace"))  # as the client decodes it
            rewritten = self._filter.messages(message)
        except (ValueError, RecursionError):
            raise FilterError("an SSE event's data is not strict JSON") from None
        if rewritten is message:
            return raw
        kept = [line for line in lines if _field(line) != b"data"]  # id, event, retry, comments
        return b"\n".join([*kept, b"data: " + _dumps(rewritten)]) + b"\n\n"


def _field(line: bytes) -> bytes | None:
    return None if line.startswith(b":") else line.partition(b":")[0]


def _data_value(line: bytes) -> bytes:
    value = line.partition(b":")[2]
    return value[1:] if value.startswith(b" ") else value
