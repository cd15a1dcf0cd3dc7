"""A per-process cache of validated access tokens, so the hot path of a known token reads no Redis.

Safety: entries live at most `token_cache_seconds`; every revocation is published on a Redis channel and
evicted here at once (all instances subscribe); if the subscription breaks, the whole cache is dropped and it is
re-established. Requests naming an upstream session still read Redis (the session owner is checked there)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict

from gateway.store.base import Store
from gateway.store.records import AccessTokenRecord

logger = logging.getLogger(__name__)
MAX_ENTRIES = 50_000


class TokenCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: OrderedDict[str, tuple[AccessTokenRecord, float]] = OrderedDict()
        self.connected = False  # only trusted while the revocation subscription is live

    def get(self, token_hash: str) -> AccessTokenRecord | None:
        if not self.connected or self.seconds <= 0:
            return None
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        record, stored_at = entry
        if time.monotonic() - stored_at > self.seconds:
            self._entries.pop(token_hash, None)
            return None
        return record

    def put(self, token_hash: str, record: AccessTokenRecord) -> None:
        if not self.connected or self.seconds <= 0:
            return
        self._entries[token_hash] = (record, time.monotonic())
        self._entries.move_to_end(token_hash)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    def evict(self, token_hash: str) -> None:
        self._entries.pop(token_hash, None)

    def clear(self) -> None:
        self._entries.clear()

    async def follow(self, store: Store, stop: asyncio.Event) -> None:
        """Follow the revocation feed and evict until `stop` is set; on any break drop everything and retry."""
        while not stop.is_set():
            try:
                async for token_hash in store.revocations(on_subscribed=self._subscribed, stop=stop):
                    self.evict(token_hash)
            except Exception as exc:  # noqa: BLE001 - any break in the feed: stop trusting the cache
                logger.warning("revocation feed interrupted (%s); token cache dropped", type(exc).__name__)
            finally:
                self.connected = False
                self.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1)

    def _subscribed(self) -> None:
        self.connected = True
