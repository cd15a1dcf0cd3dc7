"""The feed of revoked access tokens across gateway instances: Redis pub/sub on `{prefix}:revocations`.

Revoking publishes the hashes (`store.tokens`); every instance follows the feed to evict them from its token
cache and end their open streams (`token_cache.follow_revocations`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable

import redis.asyncio as redis

from gateway.store.redis_base import RedisBase, reachable


class RevocationFeedMixin(RedisBase):
    async def revocations(self, on_subscribed: Callable[[], None], stop: asyncio.Event) -> AsyncIterator[str]:
        """Hashes of access tokens as they are revoked anywhere (pub/sub); `on_subscribed` once listening.
        Ends when `stop` is set (checked between short polls: cancelling redis-py's pubsub mid-read can hang)."""
        listener = self._subscriber_client()
        pubsub = listener.pubsub()
        try:
            async with reachable():
                await pubsub.subscribe(self.revocation_channel)
            on_subscribed()
            while not stop.is_set():
                async with reachable():  # short polls: the connection's socket timeout must not fire
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None and message.get("type") == "message":
                    for token_hash in str(message["data"]).split():  # one message per revoked grant
                        yield token_hash
        finally:
            # bounded: cancelled mid-subscribe, redis-py's pubsub close can wait on a connection that never comes
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await listener.aclose(close_connection_pool=True)

    def _subscriber_client(self) -> redis.Redis:
        """A dedicated connection outside the request pool (a long-lived subscriber must not hold a pooled slot).
        On a cluster any node will do: PUBLISH reaches subscribers on every node."""
        if self.cluster:
            node = random.choice(self._redis.get_nodes())
            kwargs, connection_class = dict(node.connection_kwargs), node.connection_class
            kwargs.update(host=node.host, port=node.port)
        else:
            kwargs, connection_class = (
                dict(self._redis.connection_pool.connection_kwargs),
                self._redis.connection_pool.connection_class,
            )
        return redis.Redis(
            connection_pool=redis.ConnectionPool(connection_class=connection_class, max_connections=1, **kwargs)
        )
