"""The bounds on fetching Client ID Metadata Documents that need no network (security review 2, R6)."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from gateway.clients.cimd_limits import (
    MAX_REMEMBERED_FAILURES,
    CimdBusyError,
    FetchSlots,
    OwnThreadLookups,
    RememberedFailures,
)


def test_remembered_failures_are_bounded_and_expire() -> None:
    """Anyone chooses the URLs, so the memory keeps at most MAX_REMEMBERED_FAILURES, forgetting the oldest."""
    failures = RememberedFailures(60)
    for n in range(MAX_REMEMBERED_FAILURES + 5):
        failures.remember(f"https://h{n}.example/meta", f"failed {n}", now=0)
    assert failures.recall("https://h0.example/meta", now=1) is None  # the oldest were forgotten
    last = f"https://h{MAX_REMEMBERED_FAILURES + 4}.example/meta"
    assert failures.recall(last, now=59) == f"failed {MAX_REMEMBERED_FAILURES + 4}"
    assert failures.recall(last, now=60) is None  # expired
    off = RememberedFailures(0)
    off.remember(last, "failed", now=0)
    assert off.recall(last, now=0) is None


def test_slots_refuse_beyond_either_cap_and_come_back_after_errors() -> None:
    slots = FetchSlots(total=2, per_host=1)
    with slots.take("a.example"):
        with pytest.raises(CimdBusyError):
            with slots.take("a.example"):
                pass
        with pytest.raises(ZeroDivisionError), slots.take("b.example"):
            raise ZeroDivisionError
        with slots.take("b.example"), pytest.raises(CimdBusyError), slots.take("c.example"):
            pass
    with slots.take("a.example"), slots.take("c.example"):
        pass


async def test_name_lookups_beyond_the_threads_are_refused_at_once_and_come_back() -> None:
    """A lookup that never answers keeps its thread after its fetch gave up: with every thread taken, the next
    lookup is refused at once (CimdBusyError, 503) instead of queueing behind it; when the thread is free, lookups
    work again."""
    started, answer = threading.Event(), threading.Event()

    def stuck_resolver(*args):  # the system resolver of a name server that does not answer (until told)
        started.set()
        answer.wait(10)
        return socket.getaddrinfo(*args)

    lookups = OwnThreadLookups(1, getaddrinfo=stuck_resolver)
    try:
        first = asyncio.ensure_future(lookups.resolve("127.0.0.1", 443, socket.AF_INET))
        async with asyncio.timeout(5):
            while not started.is_set():
                await asyncio.sleep(0.01)  # polling for the lookup to be on its thread, bounded
        first.cancel()  # its fetch timed out; the thread is still in getaddrinfo
        with pytest.raises(CimdBusyError):
            await lookups.resolve("127.0.0.1", 443, socket.AF_INET)
        answer.set()
        async with asyncio.timeout(5):
            while True:
                try:
                    answers = await lookups.resolve("127.0.0.1", 443, socket.AF_INET)
                    break
                except CimdBusyError:
                    await asyncio.sleep(0.01)  # polling for the thread to finish, bounded
        assert answers[0]["host"] == "127.0.0.1"
    finally:
        lookups.close()
