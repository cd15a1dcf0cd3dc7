"""OAuth clients in Redis: DCR and admin-added clients, the CIMD document cache, and rate-limit counters."""

from __future__ import annotations

from gateway.store.records import ClientRecord
from gateway.store.redis_base import RedisBase, digest, reachable

# GCRA (generic cell rate algorithm): per key a "theoretical arrival time"; `limit` requests may arrive at once,
# then one per period/limit. Server time (TIME) so every gateway instance agrees. All keys checked first, then
# all charged: atomic for the whole request. Returns 0 or the milliseconds to wait.
_GCRA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local tats = {}
local order = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local interval = period / limit
  local tat = tats[key]  -- a key named twice (a batch calling one tool twice) is charged twice
  if tat == nil then
    tat = tonumber(redis.call('GET', key)) or now
    table.insert(order, key)
  end
  if tat < now then tat = now end
  local allow_at = tat + interval - period
  if now < allow_at and allow_at - now > wait then wait = allow_at - now end
  tats[key] = tat + interval
end
if wait > 0 then return math.ceil(wait) end
for _, key in ipairs(order) do
  redis.call('SET', key, string.format('%.3f', tats[key]), 'PX', math.ceil(tats[key] - now) + 1000)
end
return 0
"""


class ClientStoreMixin(RedisBase):
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

    async def load_signing_keys(self) -> str | None:
        async with reachable():
            value = await self._redis.get(self.key("signing", "keys"))
        return str(value) if value is not None else None

    async def save_signing_keys(self, value: str, *, only_if_absent: bool) -> bool:
        """Store the private key set; with `only_if_absent` the first gateway instance to generate one wins."""
        async with reachable():
            return bool(await self._redis.set(self.key("signing", "keys"), value, nx=only_if_absent))

    async def save_cimd(self, url: str, record: ClientRecord, ttl: int) -> None:
        async with reachable():
            await self._redis.set(self.key("cimd", digest(url)), record.model_dump_json(), ex=max(1, ttl))

    async def load_cimd(self, url: str) -> ClientRecord | None:
        async with reachable():
            raw = await self._redis.get(self.key("cimd", digest(url)))
        return ClientRecord.model_validate_json(raw) if raw else None

    async def take(self, subject: str, buckets: list[tuple[str, int, float]]) -> float:
        """One request of `subject` (a user, an address) against several of its GCRA limits `(bucket, limit, period
        seconds)`, atomically and in one round trip: 0 when all admit it (each is charged), else the seconds to
        wait (none is charged). The subject is the hash tag: all of its buckets share a cluster slot."""
        if not buckets:
            return 0.0
        keys = [self.key("rl", subject, bucket) for bucket, _, _ in buckets]
        args = [str(v) for _, limit, period in buckets for v in (limit, int(period * 1000))]
        async with reachable():
            wait_ms = await self.script(_GCRA)(keys=keys, args=args)
        return int(wait_ms) / 1000

    async def hit_rate_limit(self, subject: str, bucket: str, limit: int, window: int) -> bool:
        """True when this event of `subject` is over `limit` per `window` seconds (GCRA, burst = limit)."""
        return await self.take(subject, [(bucket, limit, window)]) > 0
