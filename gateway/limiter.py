"""Rate limits: `RateLimiter.take` is the one entry point, for every limit the gateway applies.

Its callers: MCP per-user and per-tool limits (`web.mcp_policy.rate_limited`), OAuth per-address limits
(`web.ratelimit`), sign-in limits per address and per (name, address) (`web.sign_in_limits`) and registrations per
address (`web.oauth`). Underneath is one store primitive, GCRA cells in Redis (`RateLimitStore.take_cells`,
`refund_cells`), shared by every gateway instance. Whatever the caller:

- a request is admitted only when every one of its buckets admits it, and then each is charged (all or nothing,
  one atomic script): a request refused by one limit never uses up another;
- when Redis cannot be reached, `take` raises `StoreUnavailableError` (503, fail closed), unless every cell the
  request needs was reserved ahead already (below): those were charged in Redis before.

Per-user MCP limits (`reserve=True`, the default) avoid a Redis round trip per request for busy users. A user who
sends a steady stream of requests to this process gets a few cells reserved ahead with each Redis call: up to a
quarter second of their recent rate, never more than a tenth of the limit. Requests then spend those cells
locally. Cells not spent within `LEASE_SECONDS` are handed back to Redis, so nobody loses budget for long:

- never more requests than the limit: every request spends a cell that Redis charged first, and a refund gives
  back only the part of a reservation still ahead of the clock (cells whose time has passed were already
  forgiven by GCRA itself, and refunding them again would admit more than the limit);
- reserving never refuses a request: each request first takes its own cells exactly as without reservations,
  and only what still fits after that is reserved;
- a user at their limit on two instances may be refused on one while the other still holds reserved cells,
  for at most `LEASE_SECONDS`;
- a user sending less than 1 / LEASE_SECONDS requests per second reserves nothing: every request asks Redis,
  exactly as before (so do all first requests, and any burst before a rate is known);
- concurrent requests do not each ask Redis when the reserved cells run out: while one request's reservation is
  in flight, the others of that user wait for it (at most WAITS_BEHIND times) and spend its cells.

Limits of unauthenticated subjects (addresses, user names) pass `reserve=False`: every request asks Redis, and no
state is kept for them here (a spray of addresses cannot grow this process's lease table). With a `receipt`, a
take also records where each cell ends on its bucket's schedule, so that `refund` can hand exactly those cells
back (a successful sign-in does not count against the failed-sign-in limit).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.store.base import RateLimitStore

logger = logging.getLogger(__name__)
LEASE_SECONDS = 0.25
MOST_OF_LIMIT = 0.1  # reserve at most this share of a limit at once
MOST_CELLS = 256
WAITS_BEHIND = 2  # times a request waits for another's reservation in flight before asking Redis itself
Bucket = tuple[str, int, float]  # (name, limit, period in seconds): one GCRA limit of a subject


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
    pending: asyncio.Future[None] | None = None  # a reservation of this bucket in flight (set while Redis answers)

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
class RateLimiter:
    """The gateway's rate limits (one per app, `app_state.LIMITER_KEY`); see the module docstring."""

    store: RateLimitStore
    _leases: dict[tuple[str, str], _Lease] = field(default_factory=dict)
    _swept: float = 0.0
    _refunds: set[asyncio.Task[None]] = field(default_factory=set)

    async def take(
        self, subject: str, buckets: Sequence[Bucket], *, reserve: bool = True, receipt: list[int] | None = None
    ) -> float:
        """One request of `subject` against its `buckets` (a bucket named twice is charged twice): 0 when it may
        pass (every bucket charged), else the seconds to wait (nothing charged).

        `reserve=False` asks Redis every time and keeps nothing here. A `receipt` (implies `reserve=False`) is filled,
        when admitted, with what `refund` needs to give these cells back.

        Raises:
            StoreUnavailableError: Redis cannot be reached (fail closed: 503).
        """
        if not reserve or receipt is not None:
            wait, _, untils = await self.store.take_cells(subject, [(name, lim, per, 1) for name, lim, per in buckets])
            if receipt is not None and wait <= 0:
                receipt[:] = untils
            return wait
        if not buckets or self._spend_reserved(subject, buckets):
            return 0.0
        needs = _needs(buckets)
        for _ in range(WAITS_BEHIND):
            in_flight = self._in_flight(subject, buckets, needs)
            if in_flight is None:
                break
            await asyncio.wait(in_flight)  # (their outcome is theirs: each request is judged below on its own)
        return await self._take_leased(subject, buckets, needs)

    def _spend_reserved(self, subject: str, buckets: Sequence[Bucket]) -> bool:
        """The busy user's usual request: each bucket named once, its lease current and holding a cell. Spent here,
        with no await between the checks and the spending (what `_take_leased` does for it, without its
        bookkeeping for cells that fall short); anything else: False, and nothing was spent."""
        now = time.monotonic()
        leases = []
        for bucket, limit, period in buckets:
            lease = self._leases.get((subject, bucket))
            if lease is None or lease.cells < 1 or now >= lease.expires:
                return False
            if lease.limit != limit or lease.period != period:  # (the limit changed: the general path remakes it)
                return False
            leases.append(lease)
        if len(leases) > 1 and len({name for name, _, _ in buckets}) != len(leases):
            return False  # a bucket named twice is charged twice: the general path
        self._sweep(now)
        for lease in leases:
            lease.count(now, 1)
            lease.cells -= 1
        return True

    def _in_flight(
        self, subject: str, buckets: Sequence[Bucket], needs: dict[str, int]
    ) -> list[asyncio.Future[None]] | None:
        """The reservations in flight that this request waits for instead of asking Redis itself: when its local
        cells do not cover it and every bucket it is short of is being reserved by another request right now (a
        burst of concurrent requests then makes one Redis call, not one each)."""
        waits = []
        for bucket, limit, period in buckets:
            lease = self._leases.get((subject, bucket))
            if lease is None or lease.limit != limit or lease.period != period:
                return None
            if lease.cells < needs[bucket]:
                if lease.pending is None:
                    return None
                waits.append(lease.pending)
        return waits or None

    async def _take_leased(self, subject: str, buckets: Sequence[Bucket], needs: dict[str, int]) -> float:
        now = time.monotonic()
        self._sweep(now)
        leases = self._current_leases(subject, buckets, needs, now)
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
            wait, taken, untils = await self._reserving([leases[b] for b in short], subject, entries)
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

    def _current_leases(
        self, subject: str, buckets: Sequence[Bucket], needs: dict[str, int], now: float
    ) -> dict[str, _Lease]:
        """This request's lease of each bucket (made, or remade when its limit changed), counted, expired ones
        handed back."""
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
        return leases

    async def _reserving(
        self, short: list[_Lease], subject: str, entries: list[tuple[str, int, float, int]]
    ) -> tuple[float, list[int], list[int]]:
        """`take_cells`, marked as in flight on the leases it reserves for (others wait for it: `_in_flight`)."""
        reserving = asyncio.get_running_loop().create_future()
        for lease in short:
            if lease.pending is None and lease.ahead():
                lease.pending = reserving
        try:
            return await self.store.take_cells(subject, entries)
        finally:
            for lease in short:
                if lease.pending is reserving:
                    lease.pending = None
            reserving.set_result(None)

    async def refund(self, subject: str, buckets: Sequence[Bucket], receipt: Sequence[int]) -> None:
        """Give back the cells of an admitted `take(subject, buckets, receipt=receipt)`: only the part of each that
        is still ahead of the clock (a refund never admits more than the limit)."""
        for (name, limit, period), until_ms in zip(buckets, receipt, strict=True):
            await self.store.refund_cells(subject, name, limit, period, 1, until_ms)

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


def _needs(buckets: Sequence[Bucket]) -> dict[str, int]:
    """Cells per bucket name (a name listed twice is charged twice)."""
    needs: dict[str, int] = {}
    for name, _, _ in buckets:
        needs[name] = needs.get(name, 0) + 1
    return needs
