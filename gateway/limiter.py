"""Per-user MCP rate limits without a Redis round trip per request for busy users.

The limits live in Redis (GCRA, `Store.take_cells`), shared by every gateway instance. A user who sends a
steady stream of requests to this process gets a few cells reserved ahead with each Redis call: up to a quarter
second of their recent rate, never more than a tenth of the limit. Requests then spend those cells locally.
Cells not spent within `LEASE_SECONDS` are handed back to Redis, so nobody loses budget for long:

- never more requests than the limit: every request spends a cell that Redis charged first, and a refund gives
  back only the part of a reservation still ahead of the clock (cells whose time has passed were already
  forgiven by GCRA itself, and refunding them again would admit more than the limit);
- reserving never refuses a request: each request first takes its own cells exactly as without reservations,
  and only what still fits after that is reserved;
- a user at their limit on two instances may be refused on one while the other still holds reserved cells,
  for at most `LEASE_SECONDS`;
- a user sending less than 1 / LEASE_SECONDS requests per second reserves nothing: every request asks Redis,
  exactly as before (so do all first requests, and any burst before a rate is known).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field

from gateway.store.base import Store

logger = logging.getLogger(__name__)
LEASE_SECONDS = 0.25
MOST_OF_LIMIT = 0.1  # reserve at most this share of a limit at once
MOST_CELLS = 256


@dataclass
class _Lease:
    limit: int
    period: float
    cells: int = 0  # reserved in Redis, not spent yet (all from one reservation)
    until: int = 0  # where that reservation ended on the key's schedule (server ms): what a refund may give back
    expires: float = 0.0
    window: float = 0.0  # start of the current one-second counting window
    hits: int = 0  # requests in that window
    rate: float = 0.0  # requests per second in the previous window

    def count(self, now: float, hits: int) -> None:
        if now - self.window >= 1.0:
            self.rate = self.hits / max(now - self.window, 1.0) if self.window else 0.0
            self.window, self.hits = now, 0
        self.hits += hits

    def ahead(self) -> int:
        """Cells to reserve beyond this request's: a quarter second of the recent rate, bounded."""
        cap = min(MOST_CELLS, int(self.limit * MOST_OF_LIMIT))
        return max(0, min(cap, math.floor(self.rate * LEASE_SECONDS)))


@dataclass
class LeasedLimiter:
    store: Store
    _leases: dict[tuple[str, str], _Lease] = field(default_factory=dict)
    _swept: float = 0.0
    _refunds: set[asyncio.Task[None]] = field(default_factory=set)

    async def take(self, subject: str, buckets: list[tuple[str, int, float]]) -> float:
        """0 when the request may pass (every bucket charged), else the seconds to wait (nothing charged)."""
        if not buckets:
            return 0.0
        now = time.monotonic()
        self._sweep(now)
        needs = Counter(bucket for bucket, _, _ in buckets)
        leases: dict[str, _Lease] = {}
        for bucket, limit, period in buckets:
            lease = self._leases.get((subject, bucket))
            if lease is None or lease.limit != limit or lease.period != period:  # new, or the limit changed
                if lease is not None and lease.cells:
                    self._refund(subject, bucket, lease, lease.cells, lease.until)
                lease = self._leases[(subject, bucket)] = _Lease(limit, period)
            leases[bucket] = lease
        for bucket, lease in leases.items():
            lease.count(now, needs[bucket])
            if lease.cells and now >= lease.expires:
                self._refund(subject, bucket, lease, lease.cells, lease.until)
        # set local cells aside now (other requests run while this one waits for Redis), remembering whose they are
        spent = {b: min(lease.cells, needs[b]) for b, lease in leases.items()}
        origin = {b: lease.until for b, lease in leases.items()}
        for bucket, lease in leases.items():
            lease.cells -= spent[bucket]
        short = [b for b in leases if spent[b] < needs[b]]
        if not short:  # everything was reserved already: no Redis call
            return 0.0
        entries = []
        for bucket in short:
            lease = leases[bucket]
            entries.append((bucket, lease.limit, lease.period, 1 + lease.ahead()))
            entries += [(bucket, lease.limit, lease.period, 1)] * (needs[bucket] - spent[bucket] - 1)
        try:
            wait, taken, untils = await self.store.take_cells(subject, entries)
        except BaseException:
            self._put_back(subject, leases, spent, origin)
            raise
        if wait > 0:  # refused: the local cells set aside are not spent either
            self._put_back(subject, leases, spent, origin)
            return wait
        for (bucket, _, _, _), cells, until in zip(entries, taken, untils, strict=True):
            if cells > 1:  # (only the first entry of a bucket reserves)
                self._reserved(subject, bucket, leases[bucket], cells - 1, until)
        return 0.0

    async def close(self) -> None:
        """Hand back every reserved cell (shutdown) and wait for the refunds in flight."""
        for (subject, bucket), lease in list(self._leases.items()):
            if lease.cells:
                self._refund(subject, bucket, lease, lease.cells, lease.until)
        self._leases.clear()
        if self._refunds:
            await asyncio.gather(*self._refunds, return_exceptions=True)

    def _reserved(self, subject: str, bucket: str, lease: _Lease, cells: int, until: int) -> None:
        if lease.cells:  # cells of an older reservation came back meanwhile: return them first (one origin each)
            self._refund(subject, bucket, lease, lease.cells, lease.until)
        lease.cells, lease.until = cells, until
        lease.expires = time.monotonic() + LEASE_SECONDS
        asyncio.get_running_loop().call_later(LEASE_SECONDS, self._expire, subject, bucket, lease, until)

    def _expire(self, subject: str, bucket: str, lease: _Lease, until: int) -> None:
        """A reservation's time is up: hand back what is left of it, even if no request comes to notice."""
        if lease.until == until and lease.cells:
            self._refund(subject, bucket, lease, lease.cells, until)

    def _put_back(self, subject: str, leases: dict[str, _Lease], spent: dict[str, int], origin: dict[str, int]) -> None:
        for bucket, lease in leases.items():
            if not spent[bucket]:
                continue
            if lease.until == origin[bucket]:
                lease.cells += spent[bucket]
            else:  # the lease moved on to a newer reservation meanwhile: these belong to the old one
                self._give_back(subject, bucket, lease, spent[bucket], origin[bucket])

    def _sweep(self, now: float) -> None:
        """Once a second: refund expired reservations and forget idle users (bounded memory)."""
        if now - self._swept < 1.0:
            return
        self._swept = now
        for key, lease in list(self._leases.items()):
            if now >= lease.expires:
                if lease.cells:
                    self._refund(*key, lease, lease.cells, lease.until)
                if now - lease.window > 2.0:
                    del self._leases[key]

    def _refund(self, subject: str, bucket: str, lease: _Lease, cells: int, until: int) -> None:
        lease.cells -= cells
        self._give_back(subject, bucket, lease, cells, until)

    def _give_back(self, subject: str, bucket: str, lease: _Lease, cells: int, until: int) -> None:
        async def give_back() -> None:
            try:
                await self.store.refund_cells(subject, bucket, lease.limit, lease.period, cells, until)
            except Exception as exc:  # noqa: BLE001 - lost cells only make the limit stricter for a moment
                logger.debug("rate-limit refund failed: %s", type(exc).__name__)

        task = asyncio.ensure_future(give_back())
        self._refunds.add(task)
        task.add_done_callback(self._refunds.discard)
