"""GCRA rate limits in Redis, `RedisStore.take_cells` (our choice: one atomic Lua script per request, server
TIME), the primitive under `gateway.limiter.RateLimiter.take`; runs on every store kind. Periods are long (minutes)
so that the few milliseconds a test takes never refill a bucket: no clock, no sleeps."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from gateway.store.redis import RedisStore
from tests.support.redis_cluster import raw_client

PERIOD = 600.0  # seconds; interval = PERIOD / limit is far longer than any test run


def bucket(name: str) -> str:
    return f"{name}:{secrets.token_hex(4)}"


async def take(store: RedisStore, subject: str, buckets: list[tuple[str, int, float]]) -> float:
    """One cell of each bucket, as `RateLimiter.take(..., reserve=False)` asks: 0 when admitted, else the wait."""
    wait, _, _ = await store.take_cells(subject, [(name, limit, period, 1) for name, limit, period in buckets])
    return wait


async def burst(store: RedisStore, buckets: list[tuple[str, int, float]], count: int) -> list[float]:
    async with asyncio.timeout(5):
        return list(await asyncio.gather(*(take(store, "subject", buckets) for _ in range(count))))


@pytest.mark.parametrize("limit", [1, 3, 10])
async def test_concurrent_requests_admit_exactly_the_limit_and_tell_the_rest_how_long_to_wait(
    store: RedisStore, limit: int
) -> None:
    """RateLimit.limit is also the burst: of 3*limit simultaneous requests exactly `limit` get 0 (admitted); the
    others get a positive wait in seconds of at most one emission interval (period / limit)."""
    waits = await burst(store, [(bucket("burst"), limit, PERIOD)], 3 * limit)
    admitted = [w for w in waits if w == 0]
    refused = [w for w in waits if w != 0]
    assert len(admitted) == limit
    assert len(refused) == 2 * limit
    assert all(0 < w <= PERIOD / limit for w in refused)


async def test_a_refused_request_is_not_charged(store: RedisStore) -> None:
    """take_cells docstring: when refused, nothing is charged, so hammering a full bucket does not push its wait out."""
    name = bucket("refused")
    assert await take(store, "subject", [(name, 2, PERIOD)]) == 0
    assert await take(store, "subject", [(name, 2, PERIOD)]) == 0
    waits = [await take(store, "subject", [(name, 2, PERIOD)]) for _ in range(5)]
    assert all(0 < w <= PERIOD / 2 for w in waits)
    assert max(waits) - min(waits) < 5  # the same wait each time, less the time that passed


async def test_buckets_are_independent(store: RedisStore) -> None:
    """Each bucket name is its own counter: one user's (or IP's) exhausted bucket does not slow another's."""
    first, second = bucket("first"), bucket("second")
    assert await take(store, "subject", [(first, 1, PERIOD)]) == 0
    assert await take(store, "subject", [(first, 1, PERIOD)]) > 0
    assert await take(store, "subject", [(second, 1, PERIOD)]) == 0


async def test_several_buckets_in_one_call_are_all_or_nothing(store: RedisStore) -> None:
    """take_cells docstring: 0 when all admit the request (each is charged), else none is charged. mcp_policy relies on
    it: a tools/call refused by the per-tool limit must not use up the per-user route limit."""
    tight, roomy = bucket("tight"), bucket("roomy")
    assert await burst(store, [(tight, 2, PERIOD)], 2) == [0, 0]  # `tight` is now exhausted
    waits = await burst(store, [(roomy, 5, PERIOD), (tight, 2, PERIOD)], 12)
    assert all(w > 0 for w in waits)
    # none of the 12 refused calls charged `roomy`: it still admits its full burst of 5
    waits = await burst(store, [(roomy, 5, PERIOD)], 15)
    assert waits.count(0) == 5
    assert all(w > 0 for w in waits if w != 0)


async def test_a_call_admitted_by_every_bucket_charges_every_bucket(store: RedisStore) -> None:
    """take_cells docstring: when all admit, each is charged."""
    user, tool = bucket("user"), bucket("tool")
    assert await take(store, "subject", [(user, 3, PERIOD), (tool, 3, PERIOD)]) == 0
    assert (await burst(store, [(user, 3, PERIOD)], 6)).count(0) == 2
    assert (await burst(store, [(tool, 3, PERIOD)], 6)).count(0) == 2


async def test_the_wait_is_the_longest_among_the_refusing_buckets(store: RedisStore) -> None:
    """One answer for the whole request: Retry-After must cover the slowest bucket that refused."""
    short, long = bucket("short"), bucket("long")
    assert await take(store, "subject", [(short, 1, 60.0)]) == 0
    assert await take(store, "subject", [(long, 1, 600.0)]) == 0
    wait = await take(store, "subject", [(short, 1, 60.0), (long, 1, 600.0)])
    assert 540 < wait <= 600


async def test_a_bucket_named_twice_in_one_call_is_charged_twice(store: RedisStore) -> None:
    """mcp_policy.rate_limited adds one per-tool bucket per tools/call, so a JSON-RPC batch calling one tool
    N times names that bucket N times and must cost N. Pinned gap: the script reads each key's TAT once and
    SETs it per entry, so duplicates are checked and charged as one request."""
    name = bucket("dup")
    assert await take(store, "subject", [(name, 4, PERIOD), (name, 4, PERIOD)]) == 0
    assert await take(store, "subject", [(name, 4, PERIOD), (name, 4, PERIOD)]) == 0
    assert await take(store, "subject", [(name, 4, PERIOD)]) > 0  # 4 charged of 4


async def test_a_bucket_named_more_times_than_its_limit_refuses_the_call(store: RedisStore) -> None:
    """Same gap, from the other side: a batch of 5 calls to a tool limited to 2 cannot fit even an empty bucket."""
    name = bucket("dup-over")
    assert await take(store, "subject", [(name, 2, PERIOD)] * 5) > 0
    assert await take(store, "subject", [(name, 2, PERIOD)]) == 0  # refused calls are not charged


async def test_an_empty_list_of_buckets_admits_without_waiting(store: RedisStore) -> None:
    """take_cells docstring: no limits configured (both disabled) means no wait."""
    assert await take(store, "subject", []) == 0


async def test_buckets_are_kept_under_the_store_key_prefix(store: RedisStore, key_prefix: str, redis_url: str) -> None:
    """Redis keys `{prefix}:rl:{{subject}}:{bucket}` (the subject is the cluster hash tag), with a TTL as garbage
    collection."""
    name = bucket("layout")
    await take(store, "subject", [(name, 2, PERIOD)])
    client = raw_client(redis_url)
    try:
        ttl_ms = await client.pttl(f"{key_prefix}:rl:{{subject}}:{name}")
    finally:
        await client.aclose()
    assert 0 < ttl_ms <= PERIOD / 2 * 1000 + 1000  # one interval charged, plus a second of slack
