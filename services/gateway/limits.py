"""Per-account limits that every gateway shares, checked by one atomic script in Redis.

* The submit rate is a GCRA (generic cell rate algorithm): a token bucket that stores one
  timestamp per account, the "theoretical arrival time" of the next request. An account
  may burst its whole per-minute allowance at once, then submits at the steady rate.
* Unfinished orders are a sorted set per account (order id, scored by acceptance time).
  An order leaves it once its history in Redis says it has ended (or has expired, which
  only happens to recorded, finished orders); the set is pruned only when it is full, so
  the common case costs a few commands in the one round trip a submit makes anyway.

The scripts read Redis' own clock, so gateways whose clocks disagree still share one limit.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from redis.exceptions import RedisError

from shared.appending import APPEND_FUNCTION, script
from shared.batching import Batcher
from shared.events import OrderRequested
from shared.metrics import RATE_LIMITED
from shared.scripts import Call, run_each
from shared.stream import EventStore

# admit(KEYS, ARGV), a Lua function. KEYS: the account's rate key, its set of unfinished
# orders (one hash slot: see _key). ARGV: order id, ms between submits, burst, max
# unfinished orders, how long an unfinished order counts at most (ms).
# Returns {outcome, remaining, wait ms}; outcome 1 admitted, 0 over the rate, 2 too many
# unfinished orders. A refused submit takes nothing from the bucket.
_ADMIT_FUNCTION = """
local function admit(KEYS, ARGV)
  local now = redis.call('TIME')
  now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local order, interval, burst = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
  local max_open, max_age_ms = tonumber(ARGV[4]), tonumber(ARGV[5])

  -- Orders counted longer than max_age_ms are dropped only when they would refuse this one.
  if redis.call('ZCARD', KEYS[2]) >= max_open then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - max_age_ms)
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
end
"""

_ADMIT = _ADMIT_FUNCTION + "return admit(KEYS, ARGV)"

# Admits the order and, if admitted, appends its request as the store's script does: one
# round trip for a submit. KEYS: admit's two, then append's. ARGV: admit's five, then
# append's. Returns {admission} when refused, {admission, append's answer} when admitted.
_ADMIT_AND_APPEND = _ADMIT_FUNCTION + APPEND_FUNCTION + """
local admission = admit({KEYS[1], KEYS[2]}, {ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]})
if admission[1] ~= 1 then return {admission} end
return {admission, append({unpack(KEYS, 3)}, {unpack(ARGV, 6)})}
"""

# An account's series, looked up once per account.
_rate_limited = functools.cache(RATE_LIMITED.labels)


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
    def __init__(self, store: EventStore, per_minute: int, max_open_orders: int,
                 open_order_max_age_s: int) -> None:
        self.store = store
        self.redis = store.redis
        self.per_minute = per_minute
        self.max_open_orders = max_open_orders
        self.open_order_max_age_ms = open_order_max_age_s * 1000
        self._admit = self.redis.register_script(_ADMIT)
        self._admit_and_append = self.redis.register_script(script(_ADMIT_AND_APPEND))
        # A gateway at 1,000 submits a second: the admits of one moment share a round trip.
        self._admits = Batcher(self._admit_all)
        self._accepts = Batcher(self._accept_all)

    def _key(self, kind: str, account: str) -> str:
        # One hash tag per account: on a Redis Cluster, the script's keys share a slot.
        return f"{self.store.settings.namespace}:{{account:{account}}}:{kind}"

    async def admit(self, account: str, order_id: str) -> Admission:
        """Take one submit from the account's bucket and count ``order_id`` among its
        unfinished orders, if both limits allow it; otherwise change nothing."""
        return await self._admitted(account, lambda: self._try_admit(account, order_id))

    async def accept(self, account: str, request: OrderRequested) -> Admission:
        """``admit`` the order, and append ``request`` if it is admitted. On a single Redis
        one script does both, in one round trip; on a cluster the account's keys and the
        order's partition are in different slots, so the append follows the admission."""
        if not self.store.cluster:
            return await self._admitted(account, lambda: self._try_accept(account, request))
        admission = await self.admit(account, request.order_id)
        if admission.admitted:
            try:
                await self.store.append([request])
            except RedisError:
                with contextlib.suppress(RedisError):
                    await self.forget_open_order(account, request.order_id)
                raise
        return admission

    async def _admitted(self, account: str,
                        attempt: Callable[[], Awaitable[Admission]]) -> Admission:
        """What ``attempt`` decides, tried once more when the account's set of unfinished
        orders was full of orders that have ended since."""
        admission = await attempt()
        if not admission.open_orders_ok and await self._forget_finished(account):
            admission = await attempt()
        if not admission.rate.allowed:
            _rate_limited(account).inc()
        return admission

    async def _try_admit(self, account: str, order_id: str) -> Admission:
        [reply] = await self._admits([(account, order_id)])
        return self._admission(reply)

    async def _try_accept(self, account: str, request: OrderRequested) -> Admission:
        [reply] = await self._accepts([(account, request)])
        return self._admission(reply[0])

    def _admission(self, reply: list[Any]) -> Admission:
        outcome, remaining, wait_ms = (int(float(v)) for v in reply)
        rate = RateDecision(outcome != 0, self.per_minute, max(0, remaining), wait_ms / 1000)
        return Admission(rate, outcome != 2)

    async def _admit_all(self, submits: list[tuple[str, str]]) -> list[Any]:
        return await run_each(self.redis, self._admit,
                              [self._call(account, order_id) for account, order_id in submits])

    async def _accept_all(self, submits: list[tuple[str, OrderRequested]]) -> list[Any]:
        calls = []
        for account, request in submits:
            admit_keys, admit_args = self._call(account, request.order_id)
            append_keys, append_args = self.store.append_call(request)
            calls.append(([*admit_keys, *append_keys], [*admit_args, *append_args]))
        return await self.store.run_appending(self._admit_and_append, calls)

    def _call(self, account: str, order_id: str) -> Call:
        return ([self._key("rate", account), self._key("open", account)],
                [order_id, 60_000 / self.per_minute, self.per_minute, self.max_open_orders,
                 self.open_order_max_age_ms])

    async def _forget_finished(self, account: str) -> int:
        """Drop the orders that have ended from the account's set; how many. Their indexes
        live in other hash slots, so this is done here rather than in the script."""
        key = self._key("open", account)
        members: list[bytes] = await self.redis.zrange(key, 0, -1)  # type: ignore[assignment]
        orders = [m.decode() for m in members]
        histories = await self.store.histories(orders)
        ended = [o for o, h in zip(orders, histories, strict=True)
                 if not h or any(e.is_terminal for e in h)]
        if ended:
            await self.redis.zrem(key, *ended)
        return len(ended)

    async def forget_open_order(self, account: str, order_id: str) -> None:
        """The order was never accepted after all."""
        await self.redis.zrem(self._key("open", account), order_id)
