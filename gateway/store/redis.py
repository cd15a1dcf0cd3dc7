"""`Store` on redis.asyncio: one client, each seam of `store.base` (its key layout and scripts) in its own mixin."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from gateway.store.accounts import AccountStoreMixin
from gateway.store.clients import ClientStoreMixin
from gateway.store.credentials import CredentialStoreMixin
from gateway.store.grants import GrantListingMixin
from gateway.store.keys import KeyStoreMixin
from gateway.store.rate_limits import RateLimitStoreMixin
from gateway.store.redis_base import reachable
from gateway.store.tokens import TokenStoreMixin


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    """`[user:password@]host:port,host:port…` → [(host, port), …] (IPv6 in brackets)."""
    hosts = []
    for entry in netloc.rsplit("@", 1)[-1].split(","):
        host, colon, port = entry.rpartition(":")
        if not colon or host.endswith(":"):  # no port given (or a bare IPv6 address)
            host, port = entry, ""
        hosts.append((host.strip("[]") or "127.0.0.1", int(port or default_port)))
    return hosts


def _cluster(url: str, options: dict[str, Any], pool_size: int) -> RedisCluster:
    """A Redis Cluster from any of its nodes; the client learns the others and follows slot moves and failovers."""
    parts = urlsplit(url)
    nodes = [ClusterNode(host, port) for host, port in _hosts(parts.netloc, 6379)]
    return RedisCluster(
        startup_nodes=nodes,
        max_connections=pool_size,
        ssl=url.startswith("rediss+"),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        **{k: v for k, v in options.items() if k != "health_check_interval"},
    )


def _sentinel_master(url: str, options: dict[str, Any], timeout: float) -> tuple[redis.Redis, Sentinel]:
    """The current master of a Sentinel-monitored service; failovers are followed by the connection pool."""
    parts = urlsplit(url)
    sentinels = _hosts(parts.netloc, 26379)
    segments = [p for p in parts.path.split("/") if p]
    if not segments:
        raise ValueError("redis+sentinel:// needs the monitored service name as its path")
    password = unquote(parts.password) if parts.password else None
    sentinel = Sentinel(sentinels, socket_timeout=timeout, socket_connect_timeout=timeout)  # type: ignore[no-untyped-call]
    master: redis.Redis = sentinel.master_for(
        segments[0], db=int(segments[1]) if len(segments) > 1 else 0, password=password, **options
    )
    return master, sentinel


class RedisStore(
    TokenStoreMixin,
    GrantListingMixin,
    AccountStoreMixin,
    ClientStoreMixin,
    RateLimitStoreMixin,
    KeyStoreMixin,
    CredentialStoreMixin,
):
    """All gateway state in one Redis; every failure to reach it becomes `StoreUnavailableError`."""

    @classmethod
    def from_url(cls, url: str, key_prefix: str, timeout: float, pool_size: int = 256) -> RedisStore:
        """redis://, rediss://, unix://, redis+sentinel://[:password@]host:port[,host:port…]/service[/db], or
        redis+cluster:// (rediss+cluster://) [user:password@]host:port[,host:port…] naming any cluster nodes."""
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1),
            "health_check_interval": 30,
        }
        if url.startswith("redis+sentinel://"):
            master, sentinel = _sentinel_master(url, {**options, "max_connections": pool_size}, timeout)
            store = cls(master, key_prefix)
            store._sentinel = sentinel
            return store
        if url.startswith(("redis+cluster://", "rediss+cluster://")):
            return cls(_cluster(url, options, pool_size), key_prefix)
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=pool_size, timeout=timeout, **{k: v for k, v in options.items() if k != "retry"}
        )
        return cls(redis.Redis(connection_pool=pool, retry=options["retry"]), key_prefix)

    async def connect(self) -> None:
        """Read a cluster's slot map before the first request: concurrent first commands on a client that has not
        read it yet can race in redis-py (MOVED storms that close in-flight connections). A no-op otherwise."""
        if self.cluster:
            async with reachable():
                await self._redis.initialize()

    async def ping(self) -> None:
        async with reachable():
            await self._redis.ping()

    _sentinel: Sentinel | None = None

    async def close(self) -> None:
        await (self._redis.aclose() if self.cluster else self._redis.aclose(close_connection_pool=True))
        if self._sentinel is not None:
            for client in self._sentinel.sentinels:
                await client.aclose()
