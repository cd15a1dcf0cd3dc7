"""The deadline a connection's requests move: late once, at the deadline last set, never when cleared."""

from __future__ import annotations

import asyncio

from gateway.deadline import LazyDeadline


async def test_late_once_at_the_deadline_last_set() -> None:
    loop = asyncio.get_running_loop()
    late: list[float] = []
    deadline = LazyDeadline(loop, lambda: late.append(loop.time()))
    start = loop.time()
    deadline.set(start + 0.05)
    await asyncio.sleep(0.02)
    deadline.set(start + 0.12)  # moved on: the first timer fires early and waits on
    await asyncio.sleep(0.2)
    assert len(late) == 1 and late[0] >= start + 0.12 - 0.002
    assert deadline.due is None


async def test_an_earlier_deadline_gets_its_own_timer() -> None:
    loop = asyncio.get_running_loop()
    late: list[float] = []
    deadline = LazyDeadline(loop, lambda: late.append(loop.time()))
    start = loop.time()
    deadline.set(start + 5)
    deadline.set(start + 0.03)
    await asyncio.sleep(0.1)
    assert len(late) == 1 and late[0] < start + 1


async def test_cleared_or_cancelled_never_late() -> None:
    loop = asyncio.get_running_loop()
    late: list[str] = []
    cleared = LazyDeadline(loop, lambda: late.append("cleared"))
    cleared.set_in(0.02)
    cleared.clear()
    cancelled = LazyDeadline(loop, lambda: late.append("cancelled"))
    cancelled.set_in(0.02)
    cancelled.cancel()
    await asyncio.sleep(0.08)
    assert late == []
    cleared.set_in(0.01)  # usable again after it was cleared
    await asyncio.sleep(0.05)
    assert late == ["cleared"]
