"""Rate-limit counters in Redis: GCRA cells taken and handed back atomically by Lua scripts on server time.

Callers never use this directly: `gateway.limiter.RateLimiter.take` is the one entry point (it decides whether
cells are reserved ahead and keeps what a refund needs)."""

from __future__ import annotations

from gateway.store.redis_base import RedisBase, reachable

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


class RateLimitStoreMixin(RedisBase):
    """`RateLimitStore` on Redis."""

    async def take_cells(
        self, subject: str, entries: list[tuple[str, int, float, int]]
    ) -> tuple[float, list[int], list[int]]:
        """One request of `subject` (a user, an address) against several of its GCRA limits, atomically and in one
        round trip. Every entry `(bucket, limit, period seconds, most)` first takes one cell, all or nothing; then
        each reserves up to `most - 1` more cells while they fit. Admitted: (0, cells taken per entry, where each
        entry's reservation ends in server ms), every entry charged. Refused: (seconds to wait, [], []), nothing
        charged. The subject is the hash tag: all of its buckets share a cluster slot."""
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
