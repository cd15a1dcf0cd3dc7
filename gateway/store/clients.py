"""OAuth clients in Redis: DCR and admin-added clients, the CIMD document cache, and rate-limit counters."""

from __future__ import annotations

import secrets

from gateway.store.records import ClientRecord
from gateway.store.redis_base import RedisBase, digest, reachable

# GCRA (generic cell rate algorithm): per key a "theoretical arrival time" (TAT); `limit` requests may arrive at
# once, then one per period/limit. Server time (TIME) so every gateway instance agrees. Each entry is
# (key, limit, period ms, most cells). First every entry takes one cell, all or nothing: the request is admitted
# or refused exactly as without reservations. Only then do entries with most > 1 reserve more cells, as many as
# still fit (gateway.limiter spends them locally). Returns {wait ms} when refused, else {0, cells taken per
# entry..., the key's TAT in ms after this call per entry...}: the end of what an entry reserved.
_GCRA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local wait = 0
local tats = {}
local order = {}
for i = 1, n do
  local key = KEYS[i]
  local interval = tonumber(ARGV[3 * i - 1]) / tonumber(ARGV[3 * i - 2])
  local period = tonumber(ARGV[3 * i - 1])
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
if wait > 0 then return {math.ceil(wait)} end
local result = {0}
for i = 1, n do
  local key = KEYS[i]
  local period = tonumber(ARGV[3 * i - 1])
  local interval = period / tonumber(ARGV[3 * i - 2])
  local extra = math.min(tonumber(ARGV[3 * i]) - 1, math.floor((now + period - tats[key]) / interval))
  if extra < 0 then extra = 0 end
  tats[key] = tats[key] + extra * interval
  result[i + 1] = 1 + extra
end
for i = 1, n do result[n + i + 1] = math.floor(tats[KEYS[i]]) end
for _, key in ipairs(order) do
  redis.call('SET', key, string.format('%.3f', tats[key]), 'PX', math.ceil(tats[key] - now) + 1000)
end
return result
"""

# Hand back reserved cells not used (ARGV: their milliseconds of budget, the TAT that ended their reservation).
# Only the part still ahead of now is owed: cells whose time has passed were forgiven by the clock already.
_GCRA_REFUND = """
if redis.replicate_commands then redis.replicate_commands() end
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local owed = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - now)
if owed <= 0 then return 0 end
local back = tat - owed
if back <= now then redis.call('DEL', KEYS[1]) else
  redis.call('SET', KEYS[1], string.format('%.3f', back), 'PX', math.ceil(back - now) + 1000) end
return 1
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

    async def load_or_create_secret(self, name: str) -> str:
        """A deployment secret (64 hex digits) shared by every gateway instance on this store: the first instance
        that asks creates it, every later call returns the same one (never rotated by the gateway)."""
        key = self.key("secret", name)
        async with reachable():
            await self._redis.set(key, secrets.token_hex(32), nx=True)
            value = await self._redis.get(key)
        return str(value)

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
        wait, _, _ = await self.take_cells(subject, [(bucket, limit, period, 1) for bucket, limit, period in buckets])
        return wait

    async def take_cells(
        self, subject: str, entries: list[tuple[str, int, float, int]]
    ) -> tuple[float, list[int], list[int]]:
        """Like `take`, then each entry `(bucket, limit, period, most)` reserves up to `most - 1` more cells while
        they fit: (0, cells taken per entry, where each entry's reservation ends in server ms) when admitted,
        else (seconds to wait, [], [])."""
        if not entries:
            return 0.0, [], []
        keys = [self.key("rl", subject, bucket) for bucket, _, _, _ in entries]
        args = [str(v) for _, limit, period, most in entries for v in (limit, int(period * 1000), most)]
        async with reachable():
            result = await self.script(_GCRA)(keys=keys, args=args)
        if int(result[0]) > 0:
            return int(result[0]) / 1000, [], []
        n = len(entries)
        return 0.0, [int(c) for c in result[1 : n + 1]], [int(t) for t in result[n + 1 :]]

    async def refund_cells(
        self, subject: str, bucket: str, limit: int, period: float, cells: int, until_ms: int
    ) -> None:
        """Give back `cells` reserved by `take_cells` (whose reservation ended at `until_ms`) and not used."""
        async with reachable():
            await self.script(_GCRA_REFUND)(
                keys=[self.key("rl", subject, bucket)], args=[f"{cells * period * 1000 / limit:.3f}", str(until_ms)]
            )

    async def hit_rate_limit(self, subject: str, bucket: str, limit: int, window: int) -> bool:
        """True when this event of `subject` is over `limit` per `window` seconds (GCRA, burst = limit)."""
        return await self.take(subject, [(bucket, limit, window)]) > 0
