"""The real Redis store, whose next bearer lookup holds its answer until the test lets it go on.

Orders events without sleeping: a revocation lands after Redis answered a lookup and before the gateway acts on
that answer (token cache put, stream registration)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.store.records import AccessTokenRecord, SessionOwnerRecord
from gateway.store.redis import RedisStore


class PausingStore(RedisStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answered = asyncio.Event()  # set once the paused lookup has Redis's answer
        self.resume = asyncio.Event()  # set by the test to hand that answer to the gateway
        self._pause = False

    def pause_next_lookup(self) -> None:
        self._pause = True
        self.answered.clear()
        self.resume.clear()

    async def load_access_token_with_session(
        self, token_hash: str, session_id: str | None
    ) -> tuple[AccessTokenRecord | None, SessionOwnerRecord | None]:
        answer = await super().load_access_token_with_session(token_hash, session_id)
        if self._pause:
            self._pause = False
            self.answered.set()
            await self.resume.wait()
        return answer


async def open_pausing_store(url: str, key_prefix: str) -> PausingStore:
    """Connected as the gateway's own store is (a cluster client learns its nodes first)."""
    store = PausingStore.from_url(url, key_prefix, timeout=2.0)
    await store.connect()
    return store
