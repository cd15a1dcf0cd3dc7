"""People in Redis: local users, login sessions, remembered consents, pending authorizations, upstream sign-ins."""

from __future__ import annotations

from gateway.store.records import (
    BrowserSessionRecord,
    ConsentRecord,
    IdpStateRecord,
    PendingAuthorizationRecord,
    UserRecord,
)
from gateway.store.redis_base import RedisBase, digest, reachable

MAX_SESSIONS_PER_USER = 64  # login sessions kept per user (browsers, devices); a new sign-in ends the oldest
# Read and drop a user's session index at once: a sign-in indexed meanwhile is either taken here or kept.
_TAKE_INDEX = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return members
"""


def _identity(user: UserRecord) -> tuple[object, ...]:
    """What a login session vouches for: changing any of it ends the sessions."""
    return user.password_hash, user.email, user.email_verified, user.groups


class AccountStoreMixin(RedisBase):
    """`AccountStore` on Redis."""

    # -- local users ----------------------------------------------------------------------------------------

    async def save_user(self, record: UserRecord) -> None:
        """Create or replace; replacing it with another password, email or groups ends the user's login sessions
        (a session is for the account as it was when the person signed in)."""
        async with reachable():
            async with self.batch() as pipe:
                pipe.get(self.key("user", record.name))
                pipe.set(self.key("user", record.name), record.model_dump_json())
                pipe.sadd(self.key("users", "all"), record.name)
                previous_raw, _, _ = await pipe.execute()
        previous = UserRecord.model_validate_json(previous_raw) if previous_raw else None
        if previous is not None and _identity(previous) != _identity(record):
            await self.end_user_sessions(record.user_id)

    async def load_user(self, name: str) -> UserRecord | None:
        async with reachable():
            raw = await self._redis.get(self.key("user", name))
        return UserRecord.model_validate_json(raw) if raw else None

    async def delete_user(self, name: str) -> bool:
        async with reachable(), self.batch() as pipe:
            pipe.delete(self.key("user", name))
            pipe.srem(self.key("users", "all"), name)
            pipe.set(self.key("user-removed", name), "1")  # the id local:<name> is never handed to a stranger
            deleted, _, _ = await pipe.execute()
        await self.end_user_sessions(f"local:{name}")
        return bool(deleted)

    async def user_was_removed(self, name: str) -> bool:
        async with reachable():
            return bool(await self._redis.exists(self.key("user-removed", name)))

    async def list_users(self) -> list[UserRecord]:
        async with reachable():
            names = sorted(str(n) for n in await self._redis.smembers(self.key("users", "all")))
            values = await self.mget_any([self.key("user", n) for n in names])
        return [UserRecord.model_validate_json(v) for v in values if v]

    # -- login sessions (cookie value -> digest) --------------------------------------------------------------

    async def save_browser_session(
        self, session_hash: str, record: BrowserSessionRecord, ttl: int, *, max_age: int
    ) -> None:
        """Store the session; a signed-in one is also indexed under its user (so that removing or changing the
        user ends it). The index keeps the sessions of the last `max_age` seconds, at most
        MAX_SESSIONS_PER_USER of them: signing in once more ends the oldest."""
        async with reachable():
            await self._redis.set(self.key("bs", session_hash), record.model_dump_json(), ex=ttl)
            if record.principal is None:
                return
            index = self.key("user-bs", record.principal.user_id)
            async with self.batch() as pipe:
                pipe.zremrangebyscore(index, "-inf", f"({record.created_at - max_age}")
                pipe.zadd(index, {session_hash: record.created_at})
                pipe.expire(index, max_age)
                pipe.zrange(index, 0, -(MAX_SESSIONS_PER_USER + 1))
                *_, evicted = await pipe.execute()
            if evicted:
                await self._redis.zrem(index, *evicted)
                await self._delete_sessions([str(h) for h in evicted])

    async def load_browser_session(self, session_hash: str, idle_ttl: int) -> BrowserSessionRecord | None:
        """Load and slide the idle expiry in one command (GETEX)."""
        async with reachable():
            raw = await self._redis.getex(self.key("bs", session_hash), ex=idle_ttl)
        return BrowserSessionRecord.model_validate_json(raw) if raw else None

    async def delete_browser_session(self, session_hash: str) -> None:
        async with reachable():
            await self._redis.delete(self.key("bs", session_hash))  # (its index entry ages out or is a no-op)

    async def end_user_sessions(self, user_id: str) -> int:
        """End every login session of this user (removed or changed account); how many there were."""
        async with reachable():
            hashes = [str(h) for h in await self.script(_TAKE_INDEX)(keys=[self.key("user-bs", user_id)])]
            return await self._delete_sessions(hashes)

    async def list_user_sessions(self, user_id: str) -> list[tuple[str, BrowserSessionRecord]]:
        """The user's login sessions still stored, oldest first (at most MAX_SESSIONS_PER_USER: the index keeps no
        more); ended or expired ones are dropped from the index as they are found."""
        index = self.key("user-bs", user_id)
        async with reachable():
            hashes = [str(h) for h in await self._redis.zrange(index, 0, -1)]
            values = await self.mget_any([self.key("bs", h) for h in hashes])
            gone = [h for h, v in zip(hashes, values, strict=True) if v is None]
            if gone:
                await self._redis.zrem(index, *gone)
        return [(h, BrowserSessionRecord.model_validate_json(v)) for h, v in zip(hashes, values, strict=True) if v]

    async def _delete_sessions(self, session_hashes: list[str]) -> int:
        if not session_hashes:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:  # one key per hash slot: no transaction
            for session_hash in session_hashes:
                pipe.delete(self.key("bs", session_hash))
            return sum(int(n) for n in await pipe.execute())

    # -- consents -------------------------------------------------------------------------------------------

    def _consent_key(self, user_id: str, client_id: str, route: str) -> str:
        return self.key("consent", digest(f"{user_id}\n{client_id}\n{route}"))

    async def save_consent(self, user_id: str, client_id: str, route: str, record: ConsentRecord, ttl: int) -> None:
        async with reachable():
            await self._redis.set(self._consent_key(user_id, client_id, route), record.model_dump_json(), ex=ttl)

    async def load_consent(self, user_id: str, client_id: str, route: str) -> ConsentRecord | None:
        async with reachable():
            raw = await self._redis.get(self._consent_key(user_id, client_id, route))
        return ConsentRecord.model_validate_json(raw) if raw else None

    # -- pending authorization requests ------------------------------------------------------------------------

    async def save_pending(self, request_id: str, record: PendingAuthorizationRecord, ttl: int) -> None:
        async with reachable():
            await self._redis.set(self.key("authz", digest(request_id)), record.model_dump_json(), ex=ttl)

    async def load_pending(self, request_id: str) -> PendingAuthorizationRecord | None:
        async with reachable():
            raw = await self._redis.get(self.key("authz", digest(request_id)))
        return PendingAuthorizationRecord.model_validate_json(raw) if raw else None

    async def consume_pending(self, request_id: str) -> PendingAuthorizationRecord | None:
        """Single use (GETDEL): a consent form cannot be submitted twice."""
        async with reachable():
            raw = await self._redis.getdel(self.key("authz", digest(request_id)))
        return PendingAuthorizationRecord.model_validate_json(raw) if raw else None

    # -- upstream identity-provider sign-ins in flight --------------------------------------------------------

    async def save_idp_state(self, state: str, record: IdpStateRecord, ttl: int) -> None:
        async with reachable():
            await self._redis.set(self.key("idp", digest(state)), record.model_dump_json(), ex=ttl)

    async def consume_idp_state(self, state: str) -> IdpStateRecord | None:
        """Single use (GETDEL): a replayed callback finds nothing (AUTHZ-7)."""
        async with reachable():
            raw = await self._redis.getdel(self.key("idp", digest(state)))
        return IdpStateRecord.model_validate_json(raw) if raw else None
