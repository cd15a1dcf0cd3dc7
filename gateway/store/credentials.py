"""Upstream credentials in Redis (gateway.vault encrypts them; this part stores what it is given).

A user's credentials are one hash, `ucred:{<user>}`, one field per slot (`route:<name>`, `provider:<name>`), so
listing and dropping them all is one command and a cluster keeps them in one slot. The refresh lock of a slot is
`ucred-lock:{<user>}:<slot>` (SET NX PX, released only by its holder). The gateway's registered clients at upstream
authorization servers are `uclient:{<route>}:<issuer digest>`; upstream authorizations in flight `uflight:{<state
digest>}` (single use)."""

from __future__ import annotations

from gateway.store.records import UpstreamFlightRecord
from gateway.store.redis_base import RedisBase, digest, reachable

USERS_INDEX = ("ucred-users", "all")
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_SAVE_IF = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""
_DROP_ALL = """
local values = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return values
"""
_TAKE = """
local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
return value
"""


class CredentialStoreMixin(RedisBase):
    """`CredentialStore` on Redis."""

    async def save_credential(self, user_id: str, slot: str, sealed: str, *, only_if: str | None = None) -> bool:
        """Keep a credential; `only_if`: only while the slot still holds that sealed value (a refresh or an expiry
        mark must not bring back one disconnected meanwhile, nor overwrite a newer one). False: not saved."""
        key = self.key("ucred", user_id)
        async with reachable():
            if only_if is not None:
                return bool(await self.script(_SAVE_IF)(keys=[key], args=[slot, only_if, sealed]))
            async with self.batch() as pipe:
                pipe.hset(key, slot, sealed)
                pipe.sadd(self.key(*USERS_INDEX), user_id)
                await pipe.execute()
        return True

    async def load_credential(self, user_id: str, slot: str) -> str | None:
        async with reachable():
            value = await self._redis.hget(self.key("ucred", user_id), slot)
        return str(value) if value is not None else None

    async def delete_credential(self, user_id: str, slot: str, *, only_if: str | None = None) -> bool:
        """Drop one credential (`only_if`: only while it is still this sealed value, not a newer one)."""
        key = self.key("ucred", user_id)
        async with reachable():
            if only_if is not None:
                script = self.script(
                    "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
                    "return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0"
                )
                return bool(await script(keys=[key], args=[slot, only_if]))
            return bool(await self._redis.hdel(key, slot))

    async def credentials_of(self, user_id: str) -> dict[str, str]:
        async with reachable():
            values = await self._redis.hgetall(self.key("ucred", user_id))
        return {str(k): str(v) for k, v in values.items()}

    async def drop_credentials(self, user_id: str) -> dict[str, str]:
        """Every credential of the user, removed (returned: a caller may revoke them at their servers)."""
        key = self.key("ucred", user_id)
        async with reachable():
            flat = await self.script(_DROP_ALL)(keys=[key])  # (at once: a save racing it is either taken or kept)
            await self._redis.srem(self.key(*USERS_INDEX), user_id)
        return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def credential_users(self) -> list[str]:
        async with reachable():
            return sorted(str(u) for u in await self._redis.smembers(self.key(*USERS_INDEX)))

    async def lock_credential(self, user_id: str, slot: str, holder: str, ttl_ms: int) -> bool:
        async with reachable():
            return bool(await self._redis.set(self.key("ucred-lock", user_id, slot), holder, nx=True, px=ttl_ms))

    async def unlock_credential(self, user_id: str, slot: str, holder: str) -> None:
        async with reachable():
            await self.script(_RELEASE)(keys=[self.key("ucred-lock", user_id, slot)], args=[holder])

    async def save_upstream_client(self, route: str, issuer: str, sealed: str) -> bool:
        """First writer wins (two first connections registering at once keep one client): False when one was
        already kept."""
        async with reachable():
            return bool(await self._redis.set(self.key("uclient", route, digest(issuer)), sealed, nx=True))

    async def load_upstream_client(self, route: str, issuer: str) -> str | None:
        async with reachable():
            value = await self._redis.get(self.key("uclient", route, digest(issuer)))
        return str(value) if value is not None else None

    async def save_upstream_flight(self, state: str, record: UpstreamFlightRecord, ttl: int) -> None:
        async with reachable():
            await self._redis.set(self.key("uflight", digest(state)), record.model_dump_json(), ex=ttl)

    async def consume_upstream_flight(self, state: str) -> UpstreamFlightRecord | None:
        async with reachable():
            raw = await self.script(_TAKE)(keys=[self.key("uflight", digest(state))])
        return UpstreamFlightRecord.model_validate_json(raw) if raw else None
