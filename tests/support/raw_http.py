"""Send an HTTP/1.1 request as raw bytes (what aiohttp's client refuses to send: bytes that are not UTF-8)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class RawReply:
    status: int
    headers: dict[str, str]  # lower-case names, last value wins
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


async def raw_request(host: str, port: int, request: bytes) -> RawReply:
    """One request on its own connection (`Connection: close` is added); the whole reply, within 5 s."""
    head, _, body = request.partition(b"\r\n\r\n")
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
    status_line, _, rest = data.partition(b"\r\n")
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in header_block.split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawReply(int(status_line.split()[1]), headers, payload)
