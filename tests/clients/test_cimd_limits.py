"""The bounds on fetching Client ID Metadata Documents that need no network (security review 2, R6)."""

from __future__ import annotations

import pytest

from gateway.clients.cimd_limits import MAX_REMEMBERED_FAILURES, CimdBusyError, FetchSlots, RememberedFailures


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
