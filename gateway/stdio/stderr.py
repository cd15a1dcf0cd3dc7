"""A stdio server's stderr, line by line into the gateway's log: each line cut to MAX_LINE characters, at most
MAX_LINES per WINDOW seconds (a server that floods it costs the log one line saying how many were dropped)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import IO

logger = logging.getLogger("gateway.stdio.stderr")
MAX_LINE = 1000
MAX_LINES = 100
WINDOW = 10.0
MAX_PARTIAL = 64 * 1024  # a "line" longer than this is logged in pieces


class _Reader(asyncio.Protocol):
    def __init__(self, label: str) -> None:
        self.label, self.partial = label, b""
        self.window_start, self.lines, self.dropped = time.monotonic(), 0, 0

    def data_received(self, data: bytes) -> None:
        *lines, self.partial = (self.partial + data).split(b"\n")
        if len(self.partial) > MAX_PARTIAL:
            lines.append(self.partial)
            self.partial = b""
        for line in lines:
            self._log(line)

    def eof_received(self) -> bool:
        if self.partial:
            self._log(self.partial)
        self._flush()
        return False

    def _log(self, line: bytes) -> None:
        now = time.monotonic()
        if now - self.window_start > WINDOW:
            self._flush()
            self.window_start, self.lines = now, 0
        self.lines += 1
        if self.lines > MAX_LINES:
            self.dropped += 1
            return
        text = line.decode("utf-8", errors="replace").rstrip("\r")[:MAX_LINE]
        logger.info("stdio %s: %s", self.label, text.encode("unicode_escape").decode("ascii"))

    def _flush(self) -> None:
        if self.dropped:
            logger.warning(
                "stdio %s: %d stderr lines dropped (more than %d in %gs)", self.label, self.dropped, MAX_LINES, WINDOW
            )
            self.dropped = 0


class StderrLog:
    """A pipe the process writes its stderr to (`writer`, handed to the SDK's stdio client) and the loop reads."""

    def __init__(self, label: str) -> None:
        read_fd, write_fd = os.pipe()
        self.writer: IO[str] = os.fdopen(write_fd, "w")
        self._read = os.fdopen(read_fd, "rb", buffering=0)
        self._transport: asyncio.ReadTransport | None = None
        self._label = label

    def spawned(self) -> None:
        """The process holds its end now: the gateway's copy is closed (the pipe ends when the process does)."""
        self.writer.close()
        loop = asyncio.get_running_loop()
        asyncio.ensure_future(self._connect(loop))

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._read.closed:
            self._transport, _ = await loop.connect_read_pipe(lambda: _Reader(self._label), self._read)

    def close(self) -> None:
        """After the process ended: a pipe being read ends by itself at its end of file (nothing it wrote last is
        lost); one never read is closed."""
        if not self.writer.closed:
            self.writer.close()
        if self._transport is None and not self._read.closed:
            self._read.close()
