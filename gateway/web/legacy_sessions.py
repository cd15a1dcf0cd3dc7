"""The open sessions of legacy HTTP+SSE clients (gateway.web.legacy_sse) in this gateway process: bounded in all and
per user, each with a bounded queue of messages for its stream."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from gateway.mcp import jsonrpc
from gateway.web.errors import Refusal, jsonrpc_error

logger = logging.getLogger(__name__)
MAX_SESSIONS = 10_000  # in this process
MAX_PER_USER = 16
MAX_QUEUED = 1024  # messages waiting for a slow stream: beyond this the session ends (its client is not reading)


@dataclass
class LegacySession:
    id: str
    user: str
    client: str
    route: str
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED))
    upstream_session: str | None = None  # the Mcp-Session-Id its initialize opened upstream
    protocol_version: str | None = None
    initialize_id: Any = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def push(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            logger.warning("legacy SSE session on %s ended: its client does not read its stream", self.route)
            self.end()

    def end(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class LegacySessions:
    """The open sessions of this process, by id."""

    def __init__(self) -> None:
        self._sessions: dict[str, LegacySession] = {}

    def open(self, user: str, client: str, route: str) -> LegacySession:
        if len(self._sessions) >= MAX_SESSIONS or sum(s.user == user for s in self._sessions.values()) >= MAX_PER_USER:
            raise Refusal(jsonrpc_error(429, jsonrpc.RATE_LIMITED, "Too many open HTTP+SSE sessions", None))
        session = LegacySession(secrets.token_urlsafe(24), user, client, route)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> LegacySession | None:
        return self._sessions.get(session_id or "")

    def close(self, session: LegacySession) -> None:
        self._sessions.pop(session.id, None)
        for task in session.tasks:
            task.cancel()
