"""Per-account limits that every gateway shares, checked by one atomic script in Redis.

* The submit rate is a GCRA (generic cell rate algorithm): a token bucket that stores one
  timestamp per account, the "theoretical arrival time" of the next request. An account
  may burst its whole per-minute allowance at once, then submits at the steady rate.
* Unfinished orders are a sorted set per account (order id, scored by acceptance time).
  An order leaves it once its index in Redis says it has ended (or has expired, which only
  happens to recorded, finished orders); the set is pruned only when it is full, so the
  common case costs a few commands in the one round trip a submit makes anyway.

The scripts read Redis' own clock, so gateways whose clocks disagree still share one limit.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import redis.asyncio as aioredis

# KEYS: the account's rate key, its set of unfinished orders.
# ARGV: order id, ms between submits, burst, max unfinished orders, order index key prefix,
#       how long an unfinished order counts at most (ms).
# Returns {outcome, remaining, wait ms}; outcome 1 admitted, 0 over the rate, 2 too many
# unfinished orders. A refused submit takes nothing from the bucket.
_ADMIT = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local order, interval, burst = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local max_open, order_prefix, max_age_ms = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - max_age_ms)
if redis.call('ZCARD', KEYS[2]) >= max_open then
  for _, open in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local index = order_prefix .. open
    if redis.call('EXISTS', index) == 0 or redis.call('HEXISTS', index, 'end') == 1 then
      redis.call('ZREM', KEYS[2], open)
    end
  end
  if redis.call('ZCARD', KEYS[2]) >= max_open then
    return {2, 0, 1000}
  end
end

local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local allowed_at = tat - (burst - 1) * interval
if now < allowed_at then
  return {0, 0, allowed_at - now}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil(next_tat - now))
redis.call('ZADD', KEYS[2], now, order)
redis.call('PEXPIRE', KEYS[2], max_age_ms)
return {1, math.floor((now + burst * interval - next_tat) / interval), 0}
"""


class RateDecision(msgspec.Struct, frozen=True):
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: float

    def headers(self) -> dict[str, str]:
        """The IETF draft's RateLimit fields (and Retry-After when refused)."""
        wait = math.ceil(self.retry_after_s)
        headers = {
            "RateLimit-Policy": f'"submits";q={self.limit};w=60',
            "RateLimit": f'"submits";r={self.remaining};t={wait}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, wait))
        return headers


class Admission(msgspec.Struct, frozen=True):
    rate: RateDecision
    # False: the account has its maximum of unfinished orders.
    open_orders_ok: bool

    @property
    def admitted(self) -> bool:
        return self.rate.allowed and self.open_orders_ok


class Limits:
    def __init__(self, redis: aioredis.Redis, namespace: str, per_minute: int,
                 max_open_orders: int, open_order_max_age_s: int) -> None:
        self.redis = redis
        self.namespace = namespace
        self.per_minute = per_minute
        self.max_open_orders = max_open_orders
        self.open_order_max_age_ms = open_order_max_age_s * 1000
        self._admit = redis.register_script(_ADMIT)

    def _key(self, kind: str, account: str) -> str:
        return f"{self.namespace}:{kind}:{account}"

    async def admit(self, account: str, order_id: str) -> Admission:
        """Take one submit from the account's bucket and count ``order_id`` among its
        unfinished orders, if both limits allow it; otherwise change nothing."""
        reply: Any = await self._admit(
            keys=[self._key("rate", account), self._key("open", account)],
            args=[order_id, 60_000 / self.per_minute, self.per_minute, self.max_open_orders,
                  f"{self.namespace}:order:", self.open_order_max_age_ms],
        )
        outcome, remaining, wait_ms = (int(float(v)) for v in reply)
        rate = RateDecision(outcome != 0, self.per_minute, max(0, remaining), wait_ms / 1000)
        return Admission(rate, outcome != 2)

    async def forget_open_order(self, account: str, order_id: str) -> None:
        """The order was never accepted after all."""
        await self.redis.zrem(self._key("open", account), order_id)
