"""A per-process cache of validated access tokens, so the hot path of a known token reads no Redis.

Safety: entries live at most `token_cache_seconds`; every revocation is published on a Redis channel and
evicted here at once (all instances subscribe); if the subscription breaks, the whole cache is dropped and it is
re-established. Eviction wins over a lookup in flight: a lookup takes a `ticket` before it reads Redis, and its
`put` is refused when anything was evicted since (else a record read just before a revocation, stored just after
its eviction, would be served for `token_cache_seconds`). Upstream sessions' owners are kept the same way: a binding
never changes once made (first writer wins), so a cached owner can only be stale by still naming a session the
upstream has ended, and the upstream answers that one itself (404).

The same feed also ends the open streams of revoked tokens (open_streams), so it runs even with the cache off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.open_streams import OpenStreams
from gateway.store.base import TokenStore
from gateway.store.records import AccessTokenRecord, SessionOwnerRecord

logger = logging.getLogger(__name__)
MAX_ENTRIES = 50_000
T = TypeVar("T")


class CachedToken:
    """A cached access token and what was worked out from it per route (gateway.oauth.bearer `Grant`s, keyed by
    route name: at most one per configured route); evicted together."""

    __slots__ = ("record", "grants")

    def __init__(self, record: AccessTokenRecord) -> None:
        self.record = record
        self.grants: dict[str, Any] = {}


class TokenCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: OrderedDict[str, tuple[CachedToken, float]] = OrderedDict()
        self._owners: OrderedDict[str, tuple[SessionOwnerRecord, float]] = OrderedDict()
        self._generation = 0  # bumped by every eviction: a put holding an older ticket is refused
        self.connected = False  # only trusted while the revocation subscription is live

    def ticket(self) -> int:
        """Take before reading Redis; hand to `put`/`put_owner` with what was read."""
        return self._generation

    def get(self, token_hash: str) -> CachedToken | None:
        return self._get(self._entries, token_hash)

    def put(self, token_hash: str, record: AccessTokenRecord, ticket: int) -> CachedToken | None:
        """Keep `record` (read with `ticket`); the entry kept, or None when it may not be (see the module docstring)."""
        entry = CachedToken(record)
        return entry if self._put(self._entries, token_hash, entry, ticket) else None

    def get_owner(self, session_id: str) -> SessionOwnerRecord | None:
        return self._get(self._owners, session_id)

    def put_owner(self, session_id: str, owner: SessionOwnerRecord, ticket: int) -> None:
        self._put(self._owners, session_id, owner, ticket)

    def evict(self, token_hash: str) -> None:
        self._generation += 1
        self._entries.pop(token_hash, None)

    def evict_owner(self, session_id: str) -> None:
        self._generation += 1
        self._owners.pop(session_id, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._owners.clear()

    def _get(self, entries: OrderedDict[str, tuple[T, float]], key: str) -> T | None:
        if not self.connected or self.seconds <= 0:
            return None
        entry = entries.get(key)
        if entry is None:
            return None
        value, stored_at = entry
        if time.monotonic() - stored_at > self.seconds:
            entries.pop(key, None)
            return None
        return value

    def _put(self, entries: OrderedDict[str, tuple[T, float]], key: str, value: T, ticket: int) -> bool:
        if not self.connected or self.seconds <= 0 or ticket != self._generation:
            return False  # (an eviction since the read: what was read may be what was just revoked)
        entries[key] = (value, time.monotonic())
        entries.move_to_end(key)
        while len(entries) > MAX_ENTRIES:
            entries.popitem(last=False)
        return True


async def follow_revocations(
    store: TokenStore, stop: asyncio.Event, cache: TokenCache, streams: OpenStreams, clock: Callable[[], float]
) -> None:
    """Follow the revocation feed until `stop` is set: evict each revoked token and end its open streams. On any
    break drop the cache and retry, backing off (1 s doubling to 30 s) and logging only the break of a feed that
    was up, not every failed retry (a store down at start is reported once by `open_store`); on each
    (re)subscription re-check the open streams' tokens (messages missed meanwhile)."""
    rechecks: set[asyncio.Future[None]] = set()

    def subscribed() -> None:
        cache.connected = True
        if len(streams):
            recheck = asyncio.ensure_future(streams.recheck(store, clock))
            rechecks.add(recheck)
            recheck.add_done_callback(rechecks.discard)

    delay = 1.0
    try:
        while not stop.is_set():
            was_connected = False
            try:
                async for token_hash in store.revocations(on_subscribed=subscribed, stop=stop):
                    cache.evict(token_hash)
                    streams.revoked(token_hash)
            except Exception as exc:  # noqa: BLE001 - any break in the feed: stop trusting the cache
                was_connected = cache.connected
                if was_connected:
                    logger.warning(
                        "revocation feed interrupted (%s); token cache dropped until it is back", type(exc).__name__
                    )
            finally:
                was_connected = was_connected or cache.connected
                cache.connected = False
                cache.clear()
            delay = 1.0 if was_connected else delay
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 30.0)
    finally:
        for recheck in list(rechecks):
            recheck.cancel()
