"""What every Redis-backed store part shares: the client, the key layout and the "Redis is down" translation.

Key layout: `{prefix}:{kind}:{{tag}}[:{ident}]`. The braces are a Redis Cluster hash tag: every kind of key
about one thing (a token's record and its revocation mark, a code and its used marker, a user's rate-limit
buckets) lands in one hash slot, so the Lua scripts that touch several of them also run on a cluster.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.store.errors import StoreUnavailableError

GC_GRACE_SECONDS = 3600  # keep expired/revoked records a little past expiry: one answer for all three
_UNAVAILABLE_STATES = ("LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN")
_UNAVAILABLE_ERRORS = {
    "ReadOnlyError",
    "ClusterDownError",
    "MasterDownError",
    "SlotNotCoveredError",
    "TryAgainError",
    "ClusterError",
}

Client = redis.Redis | RedisCluster


class RedisBase:
    def __init__(self, client: Client, key_prefix: str) -> None:
        self._redis: Any = client  # redis.Redis or RedisCluster: the same commands, typed loosely
        self._prefix = key_prefix
        self.cluster = isinstance(client, RedisCluster)
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
        """Pub/sub channel carrying the hashes of revoked access tokens (cache eviction)."""
        return f"{self._prefix}:revocations"

    def key(self, kind: str, tag: str, ident: str | None = None) -> str:
        """`{prefix}:{kind}:{{tag}}` or `…:{{tag}}:{ident}`; secrets appear here only as SHA-256 digests."""
        base = f"{self._prefix}:{kind}:{{{tag}}}"
        return base if ident is None else f"{base}:{ident}"

    def batch(self) -> Any:
        """A pipeline that is a MULTI transaction on one Redis; on a cluster its keys may live on several nodes,
        so it is a plain pipeline there (callers never rely on it for atomicity, only for one round trip)."""
        return self._redis.pipeline(transaction=not self.cluster)

    async def mget_any(self, keys: list[str]) -> list[Any]:
        """MGET of keys from any hash slots (admin listings): split per slot on a cluster."""
        if not keys:
            return []
        return list(await (self._redis.mget_nonatomic(keys) if self.cluster else self._redis.mget(keys)))


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
        if any(state in str(exc) for state in _UNAVAILABLE_STATES) or type(exc).__name__ in _UNAVAILABLE_ERRORS:
            raise StoreUnavailableError(type(exc).__name__) from exc  # mid-failover or resharding: 503, not 500
        raise
