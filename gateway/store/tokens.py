"""Tokens in Redis: access tokens, authorization codes, refresh-token families (grants).

Revocation is a separate key (`at-rev:`, `rt-rev:`, `grant-rev:`), never a read-modify-write of a record:
the bearer check stays one MGET, and revoking is a blind, idempotent SET.
"""

from __future__ import annotations

import asyncio
import math

from redis.asyncio.client import Pipeline

from gateway.config import REVOCATIONS_KEPT_SECONDS
from gateway.oauth.sealing import seal, unseal
from gateway.store.errors import StoreUnavailableError
from gateway.store.records import (
    AccessTokenRecord,
    AuthorizationCodeRecord,
    CodeOutcome,
    RefreshTokenRecord,
    Rotation,
    SessionOwnerRecord,
)
from gateway.store.redis_base import GC_GRACE_SECONDS, digest, reachable
from gateway.store.revocation_feed import RevocationFeedMixin

# Single use, atomically: the winner takes the code and leaves a "used" marker holding the record, so a
# replay can name the grant whose tokens must be revoked (OAuth 2.1 §4.1.3).
_CONSUME_CODE = """
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], v, 'EX', ARGV[1])
  return {1, v}
end
local used = redis.call('GET', KEYS[2])
if used then return {2, used} end
return {0, false}
"""

# Compare-and-set of a refresh token's record (KEYS: record, revocation mark; ARGV: expected, new, ttl).
_SWAP_REFRESH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""

GRANT_INDEX_TTL = REVOCATIONS_KEPT_SECONDS
USER_GRANTS = "user-grants"  # a user's grants (refresh families): `users revoke` and admin listings (gateway.admin)
SESSION_OWNER_TTL = 24 * 3600  # idle: an upstream session unused this long is forgotten (clients re-initialize)


def _ttl(expires_at: float, now: float) -> int:
    return max(1, math.ceil(expires_at - now)) + GC_GRACE_SECONDS


class TokenStoreMixin(RevocationFeedMixin):
    """`TokenStore` on Redis (the pub/sub feed of revocations in its own module)."""

    # -- access tokens ------------------------------------------------------------------------------------

    async def save_access_token(self, token_hash: str, record: AccessTokenRecord, *, now: float) -> bool:
        """Store the token; False (and the token marked revoked) when its grant was revoked meanwhile.

        The token is indexed under its grant *before* the grant's flag is read, and `revoke_grant` sets the flag
        before reading the index: whichever runs second sees the other (closing the code-replay race) without a
        transaction spanning hash slots."""
        ttl = _ttl(record.expires_at, now)
        async with reachable():
            async with self.batch() as pipe:
                pipe.set(self.key("at", token_hash), record.model_dump_json(exclude={"revoked"}), ex=ttl)
                pipe.sadd(self.key("user-at", record.user_id), token_hash)
                if record.grant_id:
                    self._add_to_grant(pipe, record.grant_id, f"at:{token_hash}", ttl)
                await pipe.execute()
            revoked = record.grant_id is not None and await self._grant_revoked(record.grant_id)
        if revoked:  # (revoke_access_token also publishes the eviction)
            await self.revoke_access_token(token_hash)
            return False
        return True

    async def load_access_token(self, token_hash: str) -> AccessTokenRecord | None:
        record, _ = await self.load_access_token_with_session(token_hash, None)
        return record

    async def load_access_token_with_session(
        self, token_hash: str, session_id: str | None
    ) -> tuple[AccessTokenRecord | None, SessionOwnerRecord | None]:
        """One round trip for the bearer check: record, its revocation mark and the session's owner (whose idle
        expiry slides with each use)."""
        keys = [self.key("at", token_hash), self.key("at-rev", token_hash)]  # one hash slot: one MGET
        async with reachable():
            if session_id is None:
                values = await self._redis.mget(keys)
            elif self.cluster:  # another slot, likely another node: both at once (cluster pipelines refuse MGET)
                owner_key = self.key("sess", digest(session_id))
                values, owner_raw = await asyncio.gather(
                    self._redis.mget(keys), self._redis.getex(owner_key, ex=SESSION_OWNER_TTL)
                )
                values = [*values, owner_raw]
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.mget(keys)
                    pipe.getex(self.key("sess", digest(session_id)), ex=SESSION_OWNER_TTL)
                    values, owner_raw = await pipe.execute()
                values = [*values, owner_raw]
        token = None
        if values[0]:
            token = AccessTokenRecord.model_validate_json(values[0])
            if values[1]:
                token = token.model_copy(update={"revoked": True})
        owner = SessionOwnerRecord.model_validate_json(values[2]) if len(values) > 2 and values[2] else None
        return token, owner

    async def revoke_access_token(self, token_hash: str) -> bool:
        """Mark revoked; the record stays until its TTL (audits can still tell it apart). Idempotent."""
        async with reachable():
            ttl = await self._redis.ttl(self.key("at", token_hash))
            if ttl == -2:  # no such key
                return False
            await self._redis.set(self.key("at-rev", token_hash), "1", ex=max(ttl, 1))
            await self._redis.publish(self.revocation_channel, token_hash)  # evict from every instance's cache
        self._revoked_locally([token_hash])
        return True

    async def list_access_tokens(self, user_id: str) -> list[tuple[str, AccessTokenRecord]]:
        index = self.key("user-at", user_id)
        async with reachable():
            hashes = sorted(str(h) for h in await self._redis.smembers(index))
            keys = [k for h in hashes for k in (self.key("at", h), self.key("at-rev", h))]
            values = await self.mget_any(keys)
            gone = [h for i, h in enumerate(hashes) if values[2 * i] is None]
            if gone:
                await self._redis.srem(index, *gone)  # GC'd by TTL: drop from the index
        found = []
        for i, h in enumerate(hashes):
            raw, revoked = values[2 * i], values[2 * i + 1]
            if raw is not None:
                record = AccessTokenRecord.model_validate_json(raw)
                found.append((h, record.model_copy(update={"revoked": bool(revoked)})))
        return found

    async def find_access_token_hashes(self, token_id: str) -> list[str]:
        """Hashes starting with `token_id` (admin lookups only: this SCANs)."""
        if not token_id or any(c not in "0123456789abcdef" for c in token_id):
            return []
        prefix = self.key("at", "")[:-1]  # "…:at:{"
        async with reachable():
            keys = [k async for k in self._redis.scan_iter(match=prefix + token_id + "*", count=1000)]
        return [k[len(prefix) : -1] for k in keys if k.endswith("}")]

    # -- upstream MCP sessions (read with the token: load_access_token_with_session) ----------------------------

    async def save_session_owner(self, session_id: str, record: SessionOwnerRecord, ttl: int) -> None:
        """First writer wins (SET NX): a session id is never re-bound to someone else."""
        async with reachable():
            await self._redis.set(self.key("sess", digest(session_id)), record.model_dump_json(), ex=ttl, nx=True)

    async def delete_session_owner(self, session_id: str) -> None:
        async with reachable():
            await self._redis.delete(self.key("sess", digest(session_id)))

    # -- authorization codes --------------------------------------------------------------------------------

    async def save_code(self, code_hash: str, record: AuthorizationCodeRecord, *, now: float) -> None:
        async with reachable():
            await self._redis.set(
                self.key("code", code_hash), record.model_dump_json(), ex=max(1, math.ceil(record.expires_at - now))
            )

    async def consume_code(self, code_hash: str) -> tuple[CodeOutcome, AuthorizationCodeRecord | None]:
        """Take the code exactly once. A replay returns the original record so its grant can be revoked."""
        keys = [self.key("code", code_hash), self.key("code-used", code_hash)]
        async with reachable():
            status, raw = await self.script(_CONSUME_CODE)(keys=keys, args=[24 * 3600])
        if status == 0:
            return "unknown", None
        record = AuthorizationCodeRecord.model_validate_json(raw)
        return ("redeemed" if status == 1 else "replayed"), record

    # -- refresh tokens and grants --------------------------------------------------------------------------

    async def save_refresh_token(self, token_hash: str, record: RefreshTokenRecord, *, now: float) -> None:
        ttl = _ttl(record.expires_at, now)
        async with reachable(), self.batch() as pipe:
            pipe.set(self.key("rt", token_hash), record.model_dump_json(), ex=ttl)
            self._add_to_grant(pipe, record.grant_id, f"rt:{token_hash}", ttl)
            self._index_grant(pipe, record, ttl)
            await pipe.execute()

    async def load_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        """The record when the token is live (not revoked, its grant not revoked); else None."""
        async with reachable():
            raw, revoked = await self._redis.mget([self.key("rt", token_hash), self.key("rt-rev", token_hash)])
            if raw is None or revoked:
                return None
            record = RefreshTokenRecord.model_validate_json(raw)
            if await self._grant_revoked(record.grant_id):
                return None
        return record

    async def rotate_refresh_token(
        self, old_token: str, successor: str, *, now: float, ttl: int, grace: float
    ) -> Rotation:
        """Exchange `old_token` for `successor` atomically. Within `grace` seconds of a rotation the same successor is
        returned again; later use of a rotated token is reuse (the caller revokes the family). The successor gets a
        fresh idle window `ttl`.

        The successor is written first (unusable until handed out), then the old record is swapped for its rotated
        form by a compare-and-set script on the old token's slot: of concurrent callers exactly one wins, the others
        re-read and see the rotation. No transaction spans hash slots, so this also runs on a cluster."""
        old_hash, new_hash = digest(old_token), digest(successor)
        old_keys = [self.key("rt", old_hash), self.key("rt-rev", old_hash)]
        for _ in range(5):  # a lost swap means the record changed (rotated): the next pass answers from it
            async with reachable():
                raw, revoked = await self._redis.mget(old_keys)
                if raw is None:
                    return Rotation("invalid")
                record = RefreshTokenRecord.model_validate_json(raw)
                if revoked or now >= record.expires_at or await self._grant_revoked(record.grant_id):
                    return Rotation("invalid", record)
            if record.rotated_at is not None:
                if now - record.rotated_at <= grace and record.successor_sealed:
                    return Rotation("grace", record, unseal(old_token, record.successor_sealed))
                return Rotation("reused", record)
            fresh = record.model_copy(update={"issued_at": now, "expires_at": now + ttl})
            rotated = record.model_copy(update={"rotated_at": now, "successor_sealed": seal(old_token, successor)})
            keep = _ttl(fresh.expires_at, now)
            async with reachable():
                async with self.batch() as pipe:
                    pipe.set(self.key("rt", new_hash), fresh.model_dump_json(), ex=keep)
                    self._add_to_grant(pipe, record.grant_id, f"rt:{new_hash}", keep)
                    self._index_grant(pipe, record, keep)
                    await pipe.execute()
                # kept past the successor's life: later reuse of the old token must still be detected
                swapped = await self.script(_SWAP_REFRESH)(keys=old_keys, args=[raw, rotated.model_dump_json(), keep])
                if not swapped:
                    await self._redis.delete(self.key("rt", new_hash))
                    continue
                if await self._grant_revoked(record.grant_id):  # revoked meanwhile (see save_access_token)
                    await self._redis.set(self.key("rt-rev", new_hash), "1", ex=keep)
                    return Rotation("invalid", record)
            return Rotation("rotated", record, successor)
        raise StoreUnavailableError("refresh token kept changing")

    async def _grant_revoked(self, grant_id: str) -> bool:
        return bool(await self._redis.exists(self.key("grant-rev", grant_id)))

    async def revoke_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        """Revoke the token and its whole grant (RFC 7009 §2.1: its access tokens too)."""
        async with reachable():
            raw = await self._redis.get(self.key("rt", token_hash))
        if raw is None:
            return None
        record = RefreshTokenRecord.model_validate_json(raw)
        await self.revoke_grant(record.grant_id)
        return record

    async def revoke_grant(self, grant_id: str, ttl: int = REVOCATIONS_KEPT_SECONDS) -> None:
        """Revoke every token of one authorization (code replay, refresh reuse, refresh revocation)."""
        grant_key = self.key("grant", grant_id)
        async with reachable():
            await self._redis.set(self.key("grant-rev", grant_id), "1", ex=ttl)
            members = [str(m) for m in await self._redis.smembers(grant_key)]
            async with self._redis.pipeline(transaction=False) as pipe:
                for member in members:
                    kind, token_hash = member.split(":", 1)
                    pipe.set(self.key(f"{kind}-rev", token_hash), "1", ex=ttl)
                await pipe.execute()
            access = [m.split(":", 1)[1] for m in members if m.startswith("at:")]
            if access:
                await self._redis.publish(self.revocation_channel, " ".join(access))
        self._revoked_locally(access)

    def _revoked_locally(self, token_hashes: list[str]) -> None:
        for listener in self.revocation_listeners:
            for token_hash in token_hashes:
                listener(token_hash)

    def _add_to_grant(self, pipe: Pipeline, grant_id: str, member: str, ttl: int) -> None:
        # EXPIRE GT/NX need Redis 7 and the embedded server is 6.2: every write slides the index to a floor
        # that outlives access tokens; refresh-token revocation also has the grant-rev flag to fall back on.
        pipe.sadd(self.key("grant", grant_id), member)
        pipe.expire(self.key("grant", grant_id), max(ttl, GRANT_INDEX_TTL))

    def _index_grant(self, pipe: Pipeline, record: RefreshTokenRecord, ttl: int) -> None:
        # refresh families outlive their access tokens (and so the `user-at` index): a user's grants are found here
        # (gone ones are dropped by the listing, gateway.store.grants)
        index = self.key(USER_GRANTS, record.principal.user_id)
        pipe.sadd(index, record.grant_id)
        pipe.expire(index, max(ttl, GRANT_INDEX_TTL))
