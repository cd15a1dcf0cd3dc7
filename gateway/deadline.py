"""A deadline that successive waits on one connection move, served by one event-loop timer.

A kept-alive connection sets a deadline per request (the next request's headers, the upstream's answer). A timer
per request, created and cancelled, cost more than the rest of the request's deadline; here the deadline is a
number the requests move, and the one timer is moved only when it fires early (or set anew for an earlier
deadline)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

TIMER_SLACK: Final = 0.001  # seconds: a timer firing this close to the deadline counts as on time (libuv: ms)


class LazyDeadline:
    """`on_late` runs once the loop's clock passes the deadline last set (and not cleared since)."""

    __slots__ = ("_loop", "_on_late", "_timer", "due")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_late: Callable[[], None]) -> None:
        self._loop, self._on_late = loop, on_late
        self._timer: asyncio.TimerHandle | None = None  # at or before `due`
        self.due: float | None = None  # loop time; None: nothing is due

    def set(self, when: float) -> None:
        self.due = when
        if self._timer is not None and self._timer.when() > when:
            self._timer.cancel()
            self._timer = None
        if self._timer is None:
            self._timer = self._loop.call_at(when, self._fired)

    def set_in(self, seconds: float) -> None:
        self.set(self._loop.time() + seconds)

    def clear(self) -> None:
        self.due = None  # (a pending timer finds nothing due and stops)

    def cancel(self) -> None:
        """Nothing is due and the timer goes (the connection is closed)."""
        self.due = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fired(self) -> None:
        self._timer = None
        due = self.due
        if due is None:
            return
        if due - self._loop.time() > TIMER_SLACK:  # moved on since the timer was set: wait for the current one
            self._timer = self._loop.call_at(due, self._fired)
            return
        self.due = None
        self._on_late()
