"""An open-loop load generator: requests start on a fixed schedule (rate per second), whatever the answers do.

Latency is measured from each request's scheduled start, not from when it was sent, so a stall is charged to
every request it delayed (no coordinated omission, as wrk2 does it). Written for bench/compare.py, which runs it
against direct, nginx and the gateway in one run; the client's own cost is the same for all three, so compare
the differences.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp


async def fixed_rate(
    url: str, headers: dict[str, str], body: bytes, rate: float, seconds: float, connections: int = 64
) -> tuple[float, float, float, int]:
    """(achieved requests/s, p50 ms, p99 ms, failures) for `seconds` of `rate` POSTs per second."""
    latencies: list[float] = []
    failures = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def one(scheduled: float) -> None:
            nonlocal failures
            try:
                async with http.post(url, data=body) as response:
                    await response.read()
                    if response.status != 200:
                        failures += 1
            except aiohttp.ClientError:
                failures += 1
            latencies.append((time.perf_counter() - scheduled) * 1000)

        for _ in range(3):  # open the pool's connections before the clock starts (connecting is not measured)
            await asyncio.gather(*(one(time.perf_counter()) for _ in range(connections)))
        latencies.clear()
        failures = 0
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter()
        count = int(rate * seconds)
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(scheduled)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return len(ordered) / elapsed, ordered[len(ordered) // 2], p99, failures
