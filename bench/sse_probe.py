"""Many SSE streams open at once (bench/compare.py): memory per open stream, event delay, and whether every
stream got every event (bench/fast_upstream.py sends one a second on each, stamped with its send time).

"Lossless" is the issue's target: every stream that opened received at least `listen - 1` events while all of
them were open (one a second, less one for the window's edges) and none ended or failed early.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import aiohttp

from bench.measure import rss_kib
from gateway.fd_limit import raise_descriptor_limit

BATCH = 200  # streams opened at once
SKIP = 1.5  # seconds: the first event of each stream is sent at connect time and queued while the rest open


@dataclass
class SseRun:
    opened: float  # seconds to open them all
    grown: int  # RSS growth of the measured process tree, KiB
    total: int  # its RSS with all streams open, KiB
    delays: list[float]  # ms from the upstream's send time to arrival, one per event, sorted
    events: list[int]  # events each stream received while listening
    failed: int  # streams that ended or failed while listening
    listen: float

    @property
    def lossless(self) -> bool:
        return not self.failed and all(count >= self.listen - 1 for count in self.events)

    def per_stream(self) -> float:
        """KiB of RSS growth per open stream."""
        return self.grown / max(1, len(self.events))

    def pct(self, pct: float) -> float:
        return _pct(self.delays, pct)


def _pct(values: list[float], pct: float) -> float:
    return values[min(len(values) - 1, int(len(values) * pct))] if values else float("nan")


async def sse_probe(url: str, token: str, count: int, pid: int | None, listen: float = 4.0) -> SseRun:
    """Open `count` SSE streams (BATCH at a time, each must answer 200), then listen to all of them for `listen`
    seconds; `pid`: the process tree whose memory to measure (None: none)."""
    raise_descriptor_limit()  # this client holds `count` sockets at once
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None, sock_read=None)
    )
    responses: list[aiohttp.ClientResponse] = []
    delays: list[float] = []
    before = rss_kib(pid) if pid else 0

    async def one() -> None:
        response = await session.get(url, headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
        if response.status != 200:  # (a refused stream must not pass for an open one)
            raise SystemExit(f"stream refused: {response.status} {await response.text()}")
        responses.append(response)

    events: list[int] = []
    failed = 0
    counting = False

    async def listen_to(index: int, response: aiohttp.ClientResponse) -> None:
        nonlocal failed
        try:
            async for line in response.content:
                if line.startswith(b"data:") and counting:
                    delays.append((time.time() - json.loads(line[5:])["params"]["t"]) * 1000)
                    events[index] += 1
        except (aiohttp.ClientError, ValueError, KeyError):
            pass
        failed += 1  # the stream ended (or broke) while we still listened: not lossless

    try:
        started = time.monotonic()
        for batch in range(0, count, BATCH):
            await asyncio.gather(*(one() for _ in range(min(BATCH, count - batch))))
        opened = time.monotonic() - started
        total = rss_kib(pid) if pid else 0
        events[:] = [0] * len(responses)
        readers = [asyncio.ensure_future(listen_to(i, r)) for i, r in enumerate(responses)]
        await asyncio.sleep(SKIP)
        counting = True
        await asyncio.sleep(listen)
        counting = False
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        return SseRun(opened, total - before if pid else 0, total, sorted(delays), events, failed, listen)
    finally:
        for response in responses:
            response.close()
        await session.close()
