"""gateway.limiter: the one rate-limit entry point; per-user limits reserve cells ahead for busy users, on a real
Redis (every store kind).

The store is the real RedisStore; a subclass only counts how often the limiter asked Redis."""

from __future__ import annotations

import asyncio
import secrets
import time

from gateway.limiter import LEASE_SECONDS, RateLimiter
from gateway.store.redis import RedisStore


class CountingStore(RedisStore):
    calls = 0

    async def take_cells(self, subject, entries):  # type: ignore[no-untyped-def]
        self.calls += 1
        return await super().take_cells(subject, entries)


def counting(store: RedisStore) -> CountingStore:
    spy = CountingStore(store._redis, store._prefix)  # noqa: SLF001 (same client and keys)
    return spy


async def ask_redis(store: RedisStore, subject: str, buckets: list[tuple[str, int, float]]) -> float:
    """One take straight from Redis (no reservation), as the per-address limits ask."""
    return await RateLimiter(store).take(subject, buckets, reserve=False)


async def steady(
    limiter: RateLimiter,
    subject: str,
    bucket: str,
    limit: int,
    seconds: float,
    per_second: int,
    period: float = 3600.0,
) -> tuple[int, int]:
    """Requests at about `per_second` for `seconds`: (admitted, refused)."""
    admitted = refused = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(per_second // 20):
            if await limiter.take(subject, [(bucket, limit, period)]) == 0:
                admitted += 1
            else:
                refused += 1
        await asyncio.sleep(0.05)
    return admitted, refused


async def test_a_busy_user_mostly_spends_reserved_cells_without_asking_redis(store: RedisStore) -> None:
    spy = counting(store)
    limiter = RateLimiter(spy)
    subject = f"local:{secrets.token_hex(4)}"
    await steady(limiter, subject, "mcp:alpha", 1_000_000, 1.1, 400)  # the first second asks every time
    spy.calls = 0
    admitted, refused = await steady(limiter, subject, "mcp:alpha", 1_000_000, 1.0, 400)
    await limiter.close()
    assert refused == 0 and admitted > 200
    assert spy.calls < admitted / 5, (spy.calls, admitted)  # (about 1 in 100 when the machine keeps up)


async def test_concurrent_requests_of_a_busy_user_wait_for_one_reservation_instead_of_each_asking_redis(
    store: RedisStore,
) -> None:
    """32 requests at once (a client with 32 connections) when the reserved cells have run out: one Redis call
    reserves for the burst and the others spend its cells, instead of 32 calls each reserving (and refunding)."""
    spy = counting(store)
    limiter = RateLimiter(spy)
    subject, buckets = f"local:{secrets.token_hex(4)}", [("mcp:alpha", 1_000_000, 3600.0)]
    await steady(limiter, subject, "mcp:alpha", 1_000_000, 1.1, 400)  # a known rate: reservations are made
    admitted = bursts = 0
    spy.calls = 0
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        results = await asyncio.gather(*(limiter.take(subject, buckets) for _ in range(32)))
        admitted += results.count(0.0)
        bursts += 1
        await asyncio.sleep(0.01)
    await limiter.close()
    assert admitted == 32 * bursts
    assert spy.calls < bursts, (spy.calls, bursts)  # (without waiting: up to 32 per burst once cells run out)


async def test_first_requests_ask_redis_every_time(store: RedisStore) -> None:
    """No rate known yet (a new user, a burst): exact, one Redis call per request, as without reservations."""
    spy = counting(store)
    limiter = RateLimiter(spy)
    subject = f"local:{secrets.token_hex(4)}"
    for _ in range(10):
        assert await limiter.take(subject, [("mcp:alpha", 1000, 3600.0)]) == 0
    assert spy.calls == 10
    await limiter.close()


async def test_a_bucket_named_twice_is_charged_twice_from_reserved_cells_too(store: RedisStore) -> None:
    """A batch calling one tool twice names its bucket twice: two cells, also when the busy user's reserved cells
    would cover one (the fast path for reserved cells takes only buckets named once)."""
    subject, limit, period = f"local:{secrets.token_hex(4)}", 2000, 864_000.0  # (no refill while it runs)
    limiter = RateLimiter(store)
    admitted, refused = await steady(limiter, subject, "mcp:alpha", limit, 1.1, 400, period)  # a rate, reservations
    assert await limiter.take(subject, [("mcp:alpha", limit, period)] * 2) == 0
    await limiter.close()
    left = 0
    while await ask_redis(store, subject, [("mcp:alpha", limit, period)]) == 0:
        left += 1
    assert refused == 0 and admitted + 2 + left == limit


async def test_two_instances_never_admit_more_than_the_limit_and_unused_cells_come_back(store: RedisStore) -> None:
    """Two processes' limiters on one Redis, both busy, limit 120 per hour: together they admit at most 120.
    After they hand back their reserved cells (close), exactly the unused budget is left in Redis."""
    subject, limit = f"local:{secrets.token_hex(4)}", 120
    first, second = RateLimiter(store), RateLimiter(store)
    results = await asyncio.gather(
        steady(first, subject, "mcp:alpha", limit, 1.6, 200), steady(second, subject, "mcp:alpha", limit, 1.6, 200)
    )
    admitted = sum(a for a, _ in results)
    assert 0 < admitted <= limit
    await first.close()
    await second.close()
    left = 0
    while await ask_redis(store, subject, [("mcp:alpha", limit, 3600.0)]) == 0:
        left += 1
    assert admitted + left == limit  # reserved but unused cells were all handed back


async def test_reservations_expire_and_are_handed_back(store: RedisStore) -> None:
    subject, limit, period = f"local:{secrets.token_hex(4)}", 10_000, 864_000.0  # (no refill while it runs)
    limiter = RateLimiter(store)
    admitted, _ = await steady(limiter, subject, "mcp:alpha", limit, 1.3, 400, period)
    await asyncio.sleep(LEASE_SECONDS + 1.0)  # expired; the next call sweeps and refunds
    assert await limiter.take(subject, [("other", limit, period)]) == 0
    await asyncio.sleep(0.2)  # the refund runs in the background
    _, cells, _ = await store.take_cells(subject, [("mcp:alpha", limit, period, limit)])
    assert cells == [limit - admitted]  # everything not spent is back in Redis
    await limiter.close()


async def test_a_refused_request_keeps_its_local_cells(store: RedisStore) -> None:
    """Two buckets: one has reserved cells, the other is exhausted; the refusal must not spend the first's."""
    subject = f"local:{secrets.token_hex(4)}"
    limiter = RateLimiter(store)
    await steady(limiter, subject, "mcp:alpha", 1_000_000, 1.3, 400)  # reserves cells for mcp:alpha
    assert await limiter.take(subject, [("tool:alpha:add", 1, 3600.0)]) == 0
    before = limiter._leases[(subject, "mcp:alpha")].cells  # noqa: SLF001
    wait = await limiter.take(subject, [("mcp:alpha", 1_000_000, 3600.0), ("tool:alpha:add", 1, 3600.0)])
    assert wait > 0
    assert limiter._leases[(subject, "mcp:alpha")].cells == before  # noqa: SLF001
    await limiter.close()


async def test_reserving_never_refuses_a_request_that_fits(store: RedisStore) -> None:
    """A batch calling one tool twice, with two cells left: admitted, whatever the first entry would like to
    reserve (the reservation only takes what is left after every entry got its cell)."""
    subject, period = f"local:{secrets.token_hex(4)}", 864_000.0
    for _ in range(98):
        assert await ask_redis(store, subject, [("tool:alpha:add", 100, period)]) == 0
    wait, cells, _ = await store.take_cells(
        subject, [("tool:alpha:add", 100, period, 6), ("tool:alpha:add", 100, period, 1)]
    )
    assert wait == 0 and cells == [1, 1]
    assert await ask_redis(store, subject, [("tool:alpha:add", 100, period)]) > 0  # and now it is full


async def test_a_late_refund_gives_back_nothing_the_clock_already_gave_back(store: RedisStore) -> None:
    """Cells reserved and left unused until their time has passed were refilled by GCRA itself; refunding them
    afterwards would admit more than the limit."""
    subject, limit, period = f"local:{secrets.token_hex(4)}", 1000, 100.0  # one cell per 100 ms
    _, cells, untils = await store.take_cells(subject, [("mcp:alpha", limit, period, 11)])
    assert cells == [11]  # 1 spent, 10 reserved: their time runs out within about a second
    await asyncio.sleep(1.2)
    await store.take_cells(subject, [("mcp:alpha", limit, period, limit)])  # another instance takes everything
    await store.refund_cells(subject, "mcp:alpha", limit, period, 10, untils[0])  # too late: owes nothing
    assert await ask_redis(store, subject, [("mcp:alpha", limit, period)]) > 0  # still full: no second credit


async def test_an_idle_instance_hands_back_its_reservation_without_another_request(store: RedisStore) -> None:
    subject, limit, period = f"local:{secrets.token_hex(4)}", 10_000, 864_000.0
    limiter = RateLimiter(store)
    admitted, _ = await steady(limiter, subject, "mcp:alpha", limit, 1.3, 400, period)
    await asyncio.sleep(LEASE_SECONDS + 0.3)  # no request: the reservation's own timer hands it back
    _, cells, _ = await store.take_cells(subject, [("mcp:alpha", limit, period, limit)])
    assert cells == [limit - admitted]
    await limiter.close()


async def test_an_unreserved_take_asks_redis_every_time_and_keeps_nothing_here(store: RedisStore) -> None:
    """reserve=False (addresses, user names): exact, one Redis call per request however busy the subject, and no
    lease kept for it (a spray of addresses cannot grow the lease table)."""
    spy = counting(store)
    limiter = RateLimiter(spy)
    for _ in range(20):
        assert await limiter.take("203.0.113.9", [("ip", 1000, 60.0)], reserve=False) == 0
    assert spy.calls == 20
    assert limiter._leases == {}  # noqa: SLF001
    await limiter.close()


async def test_a_receipt_lets_refund_give_exactly_those_cells_back(store: RedisStore) -> None:
    """sign_in_limits: a successful sign-in hands back the cells its attempt took (only failures count); a
    refused take fills no receipt and charges nothing."""
    subject, period = f"name:{secrets.token_hex(4)}", 600.0
    buckets = [("failed_sign_in:from:203.0.113.9", 2, period), ("failed_sign_in", 20, period)]
    limiter = RateLimiter(store)
    receipt: list[int] = []
    assert await limiter.take(subject, buckets, receipt=receipt) == 0
    assert len(receipt) == 2
    await limiter.refund(subject, buckets, receipt)
    for _ in range(2):  # the refunded cell is back: the full burst of 2 fits again
        assert await limiter.take(subject, buckets, receipt=[]) == 0
    refused: list[int] = []
    assert await limiter.take(subject, buckets, receipt=refused) > 0
    assert refused == []
    assert await ask_redis(store, subject, [("failed_sign_in", 20, period)]) == 0  # refusal charged nothing: 3 of 20
