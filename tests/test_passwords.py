"""Password hashing off the event loop, `gateway.passwords` (security review 2, R5; our choice: argon2 on a
small thread pool with a cap on the jobs in flight, so wrong-password floods cannot stall other requests)."""

from __future__ import annotations

import asyncio

from gateway.passwords import MAX_PENDING, PasswordWorkBusyError, hash_password, verify_in_pool

HASH = hash_password("correct-horse-battery")


async def test_verifying_yields_the_event_loop_while_argon2_runs() -> None:
    """The loop keeps running other work while a verification is in flight (it is not one blocking step)."""
    verification = asyncio.ensure_future(verify_in_pool(HASH, "correct-horse-battery"))
    await asyncio.sleep(0)  # one loop turn: a verification on the loop would have finished within it
    assert not verification.done()
    assert await verification is True
    assert await verify_in_pool(HASH, "wrong") is False


async def test_password_work_beyond_the_cap_is_refused_at_once_and_the_pool_recovers() -> None:
    """At most MAX_PENDING argon2 jobs run or wait per process; the next are refused, not queued."""
    burst = [asyncio.ensure_future(verify_in_pool(HASH, "wrong")) for _ in range(MAX_PENDING + 3)]
    results = await asyncio.gather(*burst, return_exceptions=True)
    assert [r for r in results if isinstance(r, PasswordWorkBusyError)] == results[MAX_PENDING:]
    assert results[:MAX_PENDING] == [False] * MAX_PENDING
    assert await verify_in_pool(HASH, "correct-horse-battery") is True  # slots come back
