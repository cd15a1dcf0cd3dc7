"""The one event-stream framer (WHATWG HTML §9.2.6 "Interpreting an event stream"; MCP Streamable HTTP): every SSE
response the gateway relays is read by it, so the list filter (gateway.mcp.filtering) and the event-id binding
(gateway.mcp.event_ids) see the same events a client dispatches.

Lines end in CRLF, LF or CR, mixed within one stream (a CR at the end of a chunk waits for a possible LF); a blank
line ends an event; a leading BOM is dropped; an event still incomplete at the end of the stream is dropped (a
client never dispatches it). Two modes: whole events (the list filter reads their data), each one buffer of at
most `max_event_bytes`; or, with `held_field` (the event-id binding alone rewrites one field), line by line: a
line setting another field goes on as its bytes arrive, whatever its size, and only a `held_field` line is held,
at most `max_held_line` bytes (a longer one goes on with its value empty)."""

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
    """Incremental framer: complete events go out as soon as they are complete, each through `rewrites` in order
    (with `held_field`: each complete line of that field, as a one-line event, and every other byte at once).

    Raises (from feed and flush):
        UnreadableEventError: an event outgrew `max_event_bytes` or a rewrite refused it; send its `passed` bytes,
            then end the stream (nothing after an unreadable event is trusted).
    """

    def __init__(
        self,
        rewrites: Sequence[EventRewrite],
        max_event_bytes: int = MAX_EVENT_BYTES,
        *,
        held_field: bytes | None = None,
        max_held_line: int = 0,
    ) -> None:
        self._rewrites = tuple(rewrites)
        self._max = max_event_bytes
        self._line_mode = held_field is not None
        self._held = held_field or b""
        self._held_prefix = self._held + b":"
        self._max_held = max_held_line
        self._head = b""  # the first bytes while they may still be a BOM
        self._line = bytearray()  # line mode: the current line while it is (or may be) a held one
        self._passing = False  # line mode: the current line is not held and goes on as it arrives
        self._skipping = False  # line mode: the current held line outgrew max_held_line (its bytes are dropped)
        self._skip_lf = False  # line mode: a dropped line ended in CR; an LF right after it is its line end
        self._buffer = bytearray()  # the current, incomplete event (grown in place: linear in what arrives)
        self._scanned = 0  # how far into it lines have been split off
        self._searched = 0  # how far it holds no line end (a long line is not searched again)
        self._lines: list[bytes] = []  # its complete lines, without line ends
        self._started = False  # past the optional BOM

    def feed(self, chunk: bytes) -> bytes:
        return self._parse(chunk, final=False)

    def flush(self) -> bytes:
        """End of stream: a last CR ends its line; whatever event is still incomplete is dropped (in line mode what
        already went on stays sent; a held line without its line end, which no client reads, is dropped)."""
        out = self._parse(b"", final=True)
        self._buffer, self._scanned, self._searched, self._lines = bytearray(), 0, 0, []
        self._line, self._passing, self._skipping = bytearray(), False, False
        return out

    def _begin(self, chunk: bytes, *, final: bool) -> bytes | None:
        """The chunk without a leading BOM; None while the first bytes may still be one."""
        if self._started:
            return chunk
        head = self._head + chunk
        if len(head) < len(_BOM) and _BOM.startswith(head) and not final:
            self._head = head
            return None
        self._started, self._head = True, b""
        return head.removeprefix(_BOM)

    def _parse(self, chunk: bytes, *, final: bool) -> bytes:
        begun = self._begin(chunk, final=final)
        if begun is None:
            return b""
        if self._line_mode:
            return self._parse_lines(begun)
        buffer = self._buffer
        buffer += begun
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
            if end - start > self._max:  # (one that arrived whole within a chunk too)
                raise UnreadableEventError(f"an SSE event is larger than {self._max} bytes", b"".join(out))
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

    def _parse_lines(self, chunk: bytes) -> bytes:
        """Line mode: CR and LF each end a line here (a CRLF's LF then ends an empty line, which sets nothing)."""
        out, i, line = bytearray(), 0, self._line
        while i < len(chunk):
            if self._skip_lf:
                self._skip_lf = False
                if chunk[i] == 0x0A:
                    i += 1
                    continue
            match = _LINE_END.search(chunk, i)
            stop = match.start() if match is not None else len(chunk)
            if self._passing:
                out += chunk[i:stop]
            elif not self._skipping:
                line += chunk[i:stop]
                if line.startswith(self._held_prefix):
                    if len(line) > self._max_held:
                        line.clear()
                        self._skipping = True
                elif not self._held_prefix.startswith(line):  # not (the start of) a held line: it goes on
                    out += line
                    line.clear()
                    self._passing = True
            if match is None:
                break
            end, i = chunk[stop : stop + 1], stop + 1
            if self._passing or not (self._skipping or line == self._held or line.startswith(self._held_prefix)):
                out += line + end  # (a line that never became a held one: "", "i"...)
            else:
                rewritten = [self._held] if self._skipping else [bytes(line)]
                for rewrite in self._rewrites:
                    rewritten = rewrite(rewritten)
                out += b"".join(part + end for part in rewritten)
                self._skip_lf = not rewritten and end == b"\r"
            line.clear()
            self._passing = self._skipping = False
        return bytes(out)

    def _event(self, raw: bytes, lines: list[bytes]) -> bytes:
        rewritten = lines
        for rewrite in self._rewrites:
            rewritten = rewrite(rewritten)
        return raw if rewritten is lines else b"\n".join(rewritten) + b"\n\n"
