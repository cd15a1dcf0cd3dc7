"""`Store` on redis.asyncio. Key layout: `{prefix}:{kind}:{sha256(secret)}`; TTLs are garbage collection only."""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis
from redis.asyncio.client import Pipeline
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from gateway.store.base import StoreUnavailableError
from gateway.store.records import AccessTokenRecord, SessionOwnerRecord, UserRecord

GC_GRACE_SECONDS = 3600  # keep expired/revoked records a little past expiry: one answer for all three


class RedisStore:
    """All gateway state in one Redis; every failure to reach it becomes `StoreUnavailableError`."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._redis = client
        self._prefix = key_prefix

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

    def key(self, kind: str, ident: str) -> str:
        return f"{self._prefix}:{kind}:{ident}"

    async def ping(self) -> None:
        async with _reachable():
            await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    # -- access tokens ------------------------------------------------------------------------------------

    async def save_access_token(self, token_hash: str, record: AccessTokenRecord, *, now: float) -> None:
        ttl = max(1, math.ceil(record.expires_at - now)) + GC_GRACE_SECONDS
        async with _reachable(), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("at", token_hash), record.model_dump_json(), ex=ttl)
            pipe.sadd(self.key("user-at", record.user_id), token_hash)
            await pipe.execute()

    async def load_access_token(self, token_hash: str) -> AccessTokenRecord | None:
        record, _ = await self.load_access_token_with_session(token_hash, None)
        return record

    async def load_access_token_with_session(
        self, token_hash: str, session_id: str | None
    ) -> tuple[AccessTokenRecord | None, SessionOwnerRecord | None]:
        """One round trip for the bearer check and, when the request names one, its session's owner."""
        keys = [self.key("at", token_hash)]
        if session_id is not None:
            keys.append(self.key("sess", _digest(session_id)))
        async with _reachable():
            values = await self._redis.mget(keys)
        token = AccessTokenRecord.model_validate_json(values[0]) if values[0] else None
        owner = SessionOwnerRecord.model_validate_json(values[1]) if len(values) > 1 and values[1] else None
        return token, owner

    async def revoke_access_token(self, token_hash: str) -> bool:
        """Mark revoked (kept until its TTL, so a revoked token stays distinguishable in audits). Atomic."""
        key = self.key("at", token_hash)
        found = False

        async def mark(pipe: Pipeline) -> None:
            nonlocal found
            raw = await pipe.get(key)
            found = raw is not None
            if raw is None:
                return
            record = AccessTokenRecord.model_validate_json(raw).model_copy(update={"revoked": True})
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(key, record.model_dump_json(), keepttl=True)

        async with _reachable():
            await self._redis.transaction(mark, key)
        return found

    async def list_access_tokens(self, user_id: str) -> list[tuple[str, AccessTokenRecord]]:
        index = self.key("user-at", user_id)
        async with _reachable():
            hashes = sorted(str(h) for h in await self._redis.smembers(index))
            values = await self._redis.mget([self.key("at", h) for h in hashes]) if hashes else []
            gone = [h for h, v in zip(hashes, values, strict=True) if v is None]
            if gone:
                await self._redis.srem(index, *gone)  # GC'd by TTL: drop from the index
        pairs = zip(hashes, values, strict=True)
        return [(h, AccessTokenRecord.model_validate_json(v)) for h, v in pairs if v is not None]

    async def find_access_token_hashes(self, token_id: str) -> list[str]:
        """Hashes starting with `token_id` (admin lookups only: this SCANs)."""
        if not token_id or any(c not in "0123456789abcdef" for c in token_id):
            return []
        prefix = self.key("at", "")
        async with _reachable():
            return [k[len(prefix):] async for k in self._redis.scan_iter(match=prefix + token_id + "*", count=1000)]

    # -- users ------------------------------------------------------------------------------------------

    async def save_user(self, record: UserRecord) -> None:
        async with _reachable(), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("user", record.name), record.model_dump_json())
            pipe.sadd(self.key("users", "all"), record.name)
            await pipe.execute()

    async def load_user(self, name: str) -> UserRecord | None:
        async with _reachable():
            raw = await self._redis.get(self.key("user", name))
        return UserRecord.model_validate_json(raw) if raw else None

    async def delete_user(self, name: str) -> bool:
        async with _reachable(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.key("user", name))
            pipe.srem(self.key("users", "all"), name)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def list_users(self) -> list[UserRecord]:
        async with _reachable():
            names = sorted(str(n) for n in await self._redis.smembers(self.key("users", "all")))
            values = await self._redis.mget([self.key("user", n) for n in names]) if names else []
        return [UserRecord.model_validate_json(v) for v in values if v]

    # -- upstream sessions ------------------------------------------------------------------------------

    async def save_session_owner(self, session_id: str, record: SessionOwnerRecord, ttl: int) -> None:
        """First writer wins (SET NX): a session id is never re-bound to someone else."""
        async with _reachable():
            await self._redis.set(self.key("sess", _digest(session_id)), record.model_dump_json(), ex=ttl, nx=True)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    """Translate "Redis is not there" into StoreUnavailableError; other RedisErrors are bugs and propagate."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailableError(type(exc).__name__) from exc
    except RedisError as exc:
        if "LOADING" in str(exc) or "MASTERDOWN" in str(exc):
            raise StoreUnavailableError(type(exc).__name__) from exc
        raise
