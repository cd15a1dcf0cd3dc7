"""Key material in Redis shared by every gateway instance: the identity-JWT signing keys and deployment secrets
(the audit log's argument digests, event ids). Not to be confused with `app_state` (aiohttp AppKeys)."""

from __future__ import annotations

import secrets

from gateway.store.redis_base import RedisBase, reachable


class KeyStoreMixin(RedisBase):
    """`KeyStore` on Redis."""

    async def load_signing_keys(self) -> str | None:
        async with reachable():
            value = await self._redis.get(self.key("signing", "keys"))
        return str(value) if value is not None else None

    async def save_signing_keys(self, value: str, *, only_if_absent: bool) -> bool:
        """Store the private key set; with `only_if_absent` the first gateway instance to generate one wins."""
        async with reachable():
            return bool(await self._redis.set(self.key("signing", "keys"), value, nx=only_if_absent))

    async def load_vault_keys(self) -> str | None:
        """The vault's key set when none is configured (gateway.vault): a JSON list, the first encrypts."""
        async with reachable():
            value = await self._redis.get(self.key("vault", "keys"))
        return str(value) if value is not None else None

    async def save_vault_keys(self, value: str, *, only_if_absent: bool) -> bool:
        async with reachable():
            return bool(await self._redis.set(self.key("vault", "keys"), value, nx=only_if_absent))

    async def add_vault_key(self, key: str) -> None:
        """Put `key` first in the store-held vault key set, at once (two rotations racing keep both keys)."""
        script = self.script(
            "local keys = cjson.decode(redis.call('GET', KEYS[1]) or '[]') "
            "table.insert(keys, 1, ARGV[1]) redis.call('SET', KEYS[1], cjson.encode(keys)) return #keys"
        )
        async with reachable():
            await script(keys=[self.key("vault", "keys")], args=[key])

    async def load_or_create_secret(self, name: str) -> str:
        """A deployment secret (64 hex digits) shared by every gateway instance on this store: the first instance
        that asks creates it, every later call returns the same one (never rotated by the gateway)."""
        key = self.key("secret", name)
        async with reachable():
            await self._redis.set(key, secrets.token_hex(32), nx=True)
            value = await self._redis.get(key)
        return str(value)

    async def claim_once(self, kind: str, value: str, ttl: int) -> bool:
        """True for the first claim of `value` (a digest of an assertion's or a proof's `jti`) within `ttl` seconds,
        False for every later one, on every instance sharing this store (SET NX: atomic)."""
        async with reachable():
            return bool(await self._redis.set(self.key("once", kind, value), "1", nx=True, ex=max(1, ttl)))
