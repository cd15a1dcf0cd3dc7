"""`Store` on redis.asyncio: one client, the key layout of each concept in its own mixin."""

from __future__ import annotations

import redis.asyncio as redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from gateway.store.accounts import AccountStoreMixin
from gateway.store.clients import ClientStoreMixin
from gateway.store.redis_base import reachable
from gateway.store.tokens import TokenStoreMixin


class RedisStore(TokenStoreMixin, AccountStoreMixin, ClientStoreMixin):
    """All gateway state in one Redis; every failure to reach it becomes `StoreUnavailableError`."""

    @classmethod
    def from_url(cls, url: str, key_prefix: str, timeout: float) -> RedisStore:
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1),
            health_check_interval=30,
        )
        return cls(client, key_prefix)

    async def ping(self) -> None:
        async with reachable():
            await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
