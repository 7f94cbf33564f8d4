"""The simulated chain. Sending takes a while and may fail transiently. A transaction runs
its route against the pools as they are when it lands, and the swap program refuses it if
the output would fall below minAmountOut (a typed slippage error: nothing executes). One
that executes is recorded under its signature, as a real chain dedupes a signed
transaction, so sending the same one twice executes it once. Confirmation takes the rest of
the execution time.

It keeps its ledger in Redis (``{namespace}:chain:*``), standing in for the outside world
that every executor talks to.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import msgspec
import redis.asyncio as aioredis

from services.executor.execution import executed_price, signature
from shared.batching import Batcher
from shared.config import Settings
from shared.events import OrderRequested, Routed
from shared.market import Market
from shared.routing import run_route
from shared.seeded import rng


class TransientError(Exception):
    """The attempt failed in a way that a later attempt may not."""


class QuoteExpired(Exception):
    """The route is older than a transaction may be (as a Solana blockhash expires)."""


class SlippageExceeded(Exception):
    """The pools moved: the route would give less than minAmountOut."""

    def __init__(self, amount_out: int, min_amount_out: int) -> None:
        super().__init__(
            f"SlippageExceeded: the route would give {amount_out}, "
            f"below minAmountOut {min_amount_out}"
        )
        self.amount_out, self.min_amount_out = amount_out, min_amount_out


TRANSIENT_ERRORS = (
    "RPC node timed out",
    "blockhash not found",
    "transaction dropped from the leader's queue",
    "node is behind",
)

# Sending takes this share of the execution time; confirming takes the rest.
SEND_SHARE = 0.25
LEDGER_TTL_S = 7 * 24 * 3600

# Lands each transaction once: answers, per transaction, the landing already recorded under
# its signature, or records this one (and counts the execution) and answers false.
_LAND = """
local found = {}
for i = 2, #KEYS do
  local existing = redis.call('GET', KEYS[i])
  if existing then
    found[i - 1] = existing
  else
    redis.call('SET', KEYS[i], ARGV[2 * i - 2], 'EX', ARGV[1])
    redis.call('HINCRBY', KEYS[1], ARGV[2 * i - 1], 1)
    found[i - 1] = false
  end
end
return found
"""


class Landing(msgspec.Struct, frozen=True, kw_only=True):
    signature: str
    order_id: str
    attempt: int
    amount_out: int
    executed_price: float
    latency_ms: float
    confirms_at: float


class SimulatedChain:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.market = Market.from_settings(settings)
        self.prefix = f"{settings.namespace}:chain"
        self._land = redis.register_script(_LAND)
        # Transactions landing at the same moment share one script call.
        self._lands = Batcher(self._land_all)

    @property
    def executions_key(self) -> str:
        """Order id -> how many swaps of that order executed; an audit for tests and soak."""
        return f"{self.prefix}:executions"

    def _latency_s(self, order_id: str, attempt: int) -> float:
        span = self.settings.execution_latency_ms
        draw = rng(self.settings.seed, order_id, attempt, "latency")
        return draw.uniform(span.low, span.high) / 1000

    async def find_landing(self, order_id: str, attempts: Iterable[int]) -> Landing | None:
        """Whether any of these attempts of the order already landed."""
        keys = [f"{self.prefix}:tx:{signature(self.settings.seed, order_id, attempt)}"
                for attempt in attempts]
        found = [raw for raw in await self.redis.mget(keys) if raw] if keys else []
        return msgspec.json.decode(found[0], type=Landing) if found else None

    async def send(self, order: OrderRequested, routed: Routed, attempt: int) -> Landing:
        tx_hash = signature(self.settings.seed, order.order_id, attempt)
        latency = self._latency_s(order.order_id, attempt)
        await asyncio.sleep(latency * SEND_SHARE)
        draw = rng(self.settings.seed, order.order_id, attempt, "failure")
        if draw.random() < self.settings.failure_rate:
            raise TransientError(draw.choice(TRANSIENT_ERRORS))
        route = routed.route
        _, amount_out = run_route(route.path, route.hops, order.amount_in,
                                  self.market.pool_at(time.time()))
        if amount_out < routed.min_amount_out:
            raise SlippageExceeded(amount_out, routed.min_amount_out)
        landing = Landing(
            signature=tx_hash, order_id=order.order_id, attempt=attempt,
            amount_out=amount_out, executed_price=executed_price(order, amount_out),
            latency_ms=round(latency * 1000, 3),
            confirms_at=time.time() + latency * (1 - SEND_SHARE),
        )
        [landed] = await self._lands([landing])
        return landed

    async def _land_all(self, landings: list[Landing]) -> list[Landing]:
        keys = [self.executions_key]
        args: list[Any] = [LEDGER_TTL_S]
        for landing in landings:
            keys.append(f"{self.prefix}:tx:{landing.signature}")
            args += [msgspec.json.encode(landing), landing.order_id]
        found = await self._land(keys=keys, args=args)
        # Where another executor landed the same transaction first, its record is the truth.
        return [msgspec.json.decode(existing, type=Landing) if existing else landing
                for landing, existing in zip(landings, found, strict=True)]

    async def confirmation(self, landing: Landing) -> Landing:
        await asyncio.sleep(max(0.0, landing.confirms_at - time.time()))
        return landing
