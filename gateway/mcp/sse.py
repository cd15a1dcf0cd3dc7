"""The one event-stream framer (WHATWG HTML §9.2.6 "Interpreting an event stream"; MCP Streamable HTTP): every SSE
response the gateway relays is read by it, so the list filter (gateway.mcp.filtering) and the event-id binding
(gateway.mcp.event_ids) see the same events a client dispatches.

Lines end in CRLF, LF or CR, mixed within one stream (a CR at the end of a chunk waits for a possible LF); a blank
line ends an event; a leading BOM is dropped; an event still incomplete at the end of the stream is dropped (a
client never dispatches it). Each event is one buffer of at most `max_event_bytes`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

MAX_EVENT_BYTES = 4 * 1024 * 1024  # one SSE event (or one JSON body) the gateway holds to read it
_LINE_END = re.compile(rb"[\r\n]")
_BOM = b"\xef\xbb\xbf"

# An event's lines (without their line ends) -> the lines to send: the very same list when nothing changes, so the
# event goes out byte for byte as it came. May raise UnreadableEventError.
EventRewrite = Callable[[list[bytes]], list[bytes]]


class UnreadableEventError(Exception):
    """An event the gateway cannot read as the client would (too large, or refused by a rewrite): the stream ends
    before it. `passed`: what came before it in the same chunk and may still go out."""

    def __init__(self, message: str, passed: bytes = b"") -> None:
        super().__init__(message)
        self.passed = passed


def field_name(line: bytes) -> bytes | None:
    """The field a line sets (`data`, `id`, `event`, `retry`, anything else), None for a comment."""
    return None if line.startswith(b":") else line.partition(b":")[0]


def field_value(line: bytes) -> bytes:
    """The value after the colon, without one leading space (no colon: the empty value)."""
    value = line.partition(b":")[2]
    return value[1:] if value.startswith(b" ") else value


def data(lines: list[bytes]) -> bytes:
    """The event's data as a client assembles it: its `data` values joined by LF."""
    return b"\n".join(field_value(line) for line in lines if field_name(line) == b"data")


class SseFramer:
    """Incremental framer: complete events go out as soon as they are complete, each through `rewrites` in order.

    Raises (from feed and flush):
        UnreadableEventError: an event outgrew `max_event_bytes` or a rewrite refused it; send its `passed` bytes,
            then end the stream (nothing after an unreadable event is trusted).
    """

    def __init__(self, rewrites: Sequence[EventRewrite], max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._rewrites = tuple(rewrites)
        self._max = max_event_bytes
        self._buffer = bytearray()  # the current, incomplete event (grown in place: linear in what arrives)
        self._scanned = 0  # how far into it lines have been split off
        self._searched = 0  # how far it holds no line end (a long line is not searched again)
        self._lines: list[bytes] = []  # its complete lines, without line ends
        self._started = False  # past the optional BOM

    def feed(self, chunk: bytes) -> bytes:
        return self._parse(chunk, final=False)

    def flush(self) -> bytes:
        """End of stream: a last CR ends its line; whatever event is still incomplete is dropped."""
        out = self._parse(b"", final=True)
        self._buffer, self._scanned, self._searched, self._lines = bytearray(), 0, 0, []
        return out

    def _parse(self, chunk: bytes, *, final: bool) -> bytes:
        buffer = self._buffer
        buffer += chunk
        if not self._started:
            if len(buffer) < len(_BOM) and _BOM.startswith(buffer) and not final:
                return b""
            if buffer.startswith(_BOM):
                del buffer[: len(_BOM)]
            self._started = True
        out, start, position = [], 0, self._scanned
        search = max(position, self._searched)
        while (match := _LINE_END.search(buffer, search)) is not None:
            end = match.end()
            if buffer[match.start()] == 0x0D:  # CR: a CRLF pair is one line end
                if end == len(buffer) and not final:
                    search = match.start()  # the LF may be in the next chunk
                    break
                if buffer[end : end + 1] == b"\n":
                    end += 1
            line = bytes(buffer[position : match.start()])
            position = search = end
            if line:
                self._lines.append(line)
                continue
            try:
                out.append(self._event(bytes(buffer[start:end]), self._lines))
            except UnreadableEventError as exc:
                exc.passed = b"".join(out)
                raise
            start, self._lines = end, []
        else:
            search = len(buffer)
        del buffer[:start]
        self._scanned, self._searched = position - start, search - start
        if len(buffer) > self._max:
            raise UnreadableEventError(f"an SSE event is larger than {self._max} bytes", b"".join(out))
        return b"".join(out)

    def _event(self, raw: bytes, lines: list[bytes]) -> bytes:
        rewritten = lines
        for rewrite in self._rewrites:
            rewritten = rewrite(rewritten)
        return raw if rewritten is lines else b"\n".join(rewritten) + b"\n\n"
