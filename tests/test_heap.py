"""Start-up's objects are kept out of the cyclic collector's view; a reload's retired ones are still collected."""

from __future__ import annotations

import gc
import weakref

from gateway.server import settle_heap


class _Node:
    def __init__(self) -> None:
        self.cycle = self


def test_what_lives_is_frozen_and_what_a_reload_retired_is_collected_next_time() -> None:
    try:
        retired = _Node()  # (a previous configuration: cyclic, alive while it serves)
        gone = weakref.ref(retired)
        settle_heap()
        assert gc.get_freeze_count() > 1000  # modules and the rest of this process: out of every collection
        del retired
        gc.collect()
        assert gone() is not None  # frozen: no collection walks it, cycles included
        settle_heap()  # once the reload retired it: unfrozen first, so that its cycle is collected
        assert gone() is None
    finally:
        gc.unfreeze()
