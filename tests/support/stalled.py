"""A stand-in for a hung upstream: accepts connections, reads the request, never answers.

It records when each connection is closed by the peer, so tests can see the gateway hang up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class StalledServer:
    port: int
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    closed_by_peer: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"


@asynccontextmanager
async def stalled_server() -> AsyncIterator[StalledServer]:
    state: list[StalledServer] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state[0].connected.set()
        while await reader.read(65536):  # b"" once the gateway closes its side
            pass
        state[0].closed_by_peer.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.append(StalledServer(server.sockets[0].getsockname()[1]))
    try:
        yield state[0]
    finally:
        server.close()
        await server.wait_closed()
