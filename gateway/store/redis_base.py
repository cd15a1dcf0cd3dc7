"""What every Redis-backed store part shares: the client, the key layout and the "Redis is down" translation."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.store.base import StoreUnavailableError

GC_GRACE_SECONDS = 3600  # keep expired/revoked records a little past expiry: one answer for all three


class RedisBase:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix
        # told synchronously of revocations made through this store (other processes learn them by pub/sub)
        self.revocation_listeners: list[Callable[[str], None]] = []
        self._scripts: dict[str, Any] = {}

    def script(self, source: str) -> Any:
        """A registered Lua script: sent once, then called by SHA (EVALSHA, reloaded if Redis forgot it)."""
        if source not in self._scripts:
            self._scripts[source] = self._redis.register_script(source)
        return self._scripts[source]

    @property
    def revocation_channel(self) -> str:
        """Pub/sub channel carrying the hash of every revoked access token (cache eviction)."""
        return f"{self._prefix}:revocations"

    def key(self, kind: str, ident: str) -> str:
        """`{prefix}:{kind}:{ident}`; secrets appear here only as SHA-256 digests."""
        return f"{self._prefix}:{kind}:{ident}"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@asynccontextmanager
async def reachable() -> AsyncIterator[None]:
    """Translate "Redis is not there" into StoreUnavailableError; other RedisErrors are bugs and propagate."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailableError(type(exc).__name__) from exc
    except RedisError as exc:
        if any(state in str(exc) for state in ("LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN")) \
                or type(exc).__name__ == "ReadOnlyError":  # mid-failover: a 503, not a 500
            raise StoreUnavailableError(type(exc).__name__) from exc
        raise
