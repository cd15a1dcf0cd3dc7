"""OAuth clients in Redis: DCR and admin-added clients, and the CIMD document cache."""

from __future__ import annotations

from gateway.store.records import ClientRecord
from gateway.store.redis_base import RedisBase, digest, reachable

LAST_USE_TTL = 400 * 86400  # seconds a client's last use is remembered


class ClientStoreMixin(RedisBase):
    """`ClientStore` on Redis."""

    async def save_client(self, record: ClientRecord, ttl: int | None) -> None:
        """`ttl` is the idle expiry for DCR clients (slid on use); None keeps admin-added clients forever."""
        async with reachable():
            await self._redis.set(self.key("client", record.client_id), record.model_dump_json(), ex=ttl)

    async def load_client(self, client_id: str, idle_ttl: int | None = None) -> ClientRecord | None:
        key = self.key("client", client_id)
        async with reachable():
            raw = await (self._redis.getex(key, ex=idle_ttl) if idle_ttl else self._redis.get(key))
        return ClientRecord.model_validate_json(raw) if raw else None

    async def delete_client(self, client_id: str) -> bool:
        async with reachable():
            return bool(await self._redis.delete(self.key("client", client_id)))

    async def list_clients(self) -> list[ClientRecord]:
        """Every stored client (admin listing: this SCANs)."""
        async with reachable():
            keys = [k async for k in self._redis.scan_iter(match=self.key("client", "*"), count=1000)]
            values = await self.mget_any(keys)
        return sorted((ClientRecord.model_validate_json(v) for v in values if v), key=lambda c: c.client_id)

    async def list_cimd_clients(self) -> list[ClientRecord]:
        """Every cached client metadata document, as its client (admin listing: this SCANs)."""
        async with reachable():
            keys = [k async for k in self._redis.scan_iter(match=self.key("cimd", "*"), count=1000)]
            values = await self.mget_any(keys)
        return sorted((ClientRecord.model_validate_json(v) for v in values if v), key=lambda c: c.client_id)

    async def touch_client(self, client_id: str, now: float) -> None:
        """When the client was last issued a token (at the token endpoint); kept LAST_USE_TTL after it."""
        async with reachable():
            await self._redis.set(self.key("client_used", client_id), str(int(now)), ex=LAST_USE_TTL)

    async def clients_last_used(self, client_ids: list[str]) -> dict[str, float]:
        """Each client's last token issuance that is still remembered (admin listings)."""
        async with reachable():
            values = await self.mget_any([self.key("client_used", c) for c in client_ids])
        return {c: float(v) for c, v in zip(client_ids, values, strict=True) if v}

    async def save_cimd(self, url: str, record: ClientRecord, ttl: int) -> None:
        async with reachable():
            await self._redis.set(self.key("cimd", digest(url)), record.model_dump_json(), ex=max(1, ttl))

    async def load_cimd(self, url: str) -> ClientRecord | None:
        async with reachable():
            raw = await self._redis.get(self.key("cimd", digest(url)))
        return ClientRecord.model_validate_json(raw) if raw else None
