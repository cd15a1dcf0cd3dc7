"""The MCP requests in flight, by access token, so a token's open streams end when it is revoked or expires.

Our checklist's RS-17 lets a stream inherit its token for as long as it stays open; issue 10 (#16) overrides it:
a revoked or expired token must not keep an SSE stream (a POST's response stream or a GET stream) open for days.
A request is watched from the moment its token is read, before the store lookup, so a revocation that lands while
the lookup is in flight is not missed; its stream also gets a timer at the token's `expires_at`. Revocations
arrive from this process's store at once and from every other instance through the revocation feed
(token_cache.follow_revocations); after the feed (re)subscribes, the open streams' tokens are read again, so a
revocation published while the feed was down is caught too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

from gateway.store.base import TokenStore
from gateway.store.errors import StoreUnavailableError

logger = logging.getLogger(__name__)
EndReason = Literal["revoked", "expired"]
_RECHECK_BATCH = 100  # tokens read at once when re-checking after the feed (re)subscribed


class StreamWatch:
    """One request's hold on its token: ended once the token is revoked or expires. A relay reacts through
    `on_end` (one callback, no task per stream); `ended` is an event for those that wait."""

    __slots__ = ("token_hash", "reason", "_owner", "_timer", "_event", "_on_end")

    def __init__(self, owner: OpenStreams, token_hash: str) -> None:
        self.token_hash = token_hash
        self.reason: EndReason | None = None
        self._owner = owner
        self._timer: asyncio.TimerHandle | None = None
        self._event: asyncio.Event | None = None  # made when first asked for (most requests never wait)
        self._on_end: Callable[[], None] | None = None

    @property
    def ended(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
            if self.reason is not None:
                self._event.set()
        return self._event

    def end(self, reason: EndReason) -> None:
        if self.reason is None:
            self.reason = reason
            if self._event is not None:
                self._event.set()
            if self._on_end is not None:
                callback, self._on_end = self._on_end, None
                callback()

    def on_end(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` when the token ends (at once if it has); None takes a callback back (the stream is
        over: what it would close may be reused)."""
        self._on_end = callback
        if callback is not None and self.reason is not None:
            self._on_end = None
            callback()

    def expire_in(self, seconds: float) -> None:
        """End after `seconds` (the token's remaining lifetime, by the gateway's clock)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(max(0.0, seconds), self.end, "expired")

    def release(self) -> None:
        """The request is over: forget it (idempotent)."""
        self._on_end = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._owner._forget(self)  # noqa: SLF001 (its own registry)


class OpenStreams:
    """Watches by token hash. As many entries as requests in flight (bounded by the listener's connection caps)."""

    def __init__(self) -> None:
        self._watches: dict[str, set[StreamWatch]] = {}

    def watch(self, token_hash: str) -> StreamWatch:
        watch = StreamWatch(self, token_hash)
        self._watches.setdefault(token_hash, set()).add(watch)
        return watch

    def revoked(self, token_hash: str) -> None:
        """End every request of this token (a revocation listener: called for every revoked token, known or not)."""
        for watch in list(self._watches.get(token_hash, ())):
            watch.end("revoked")

    def token_hashes(self) -> list[str]:
        return list(self._watches)

    def __len__(self) -> int:
        return sum(len(w) for w in self._watches.values())

    async def recheck(self, store: TokenStore, clock: Callable[[], float]) -> None:
        """Read every watched token again and end the requests of those no longer usable (revoked, expired or gone)
        - what the feed may have missed while it was not subscribed."""
        hashes = self.token_hashes()
        try:
            for start in range(0, len(hashes), _RECHECK_BATCH):
                batch = hashes[start : start + _RECHECK_BATCH]
                records = await asyncio.gather(*(store.load_access_token(h) for h in batch))
                now = clock()
                for token_hash, record in zip(batch, records, strict=True):
                    if record is None or not record.usable(now):
                        self.revoked(token_hash)
        except StoreUnavailableError:
            logger.warning("could not re-check open streams' tokens (store unavailable)")

    def _forget(self, watch: StreamWatch) -> None:
        watches = self._watches.get(watch.token_hash)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del self._watches[watch.token_hash]
