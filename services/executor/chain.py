"""The simulated chain. Sending takes a while and may fail transiently. A transaction runs
its route against the pools as they are when it lands, and the swap program refuses it if
the output would fall below minAmountOut (a typed slippage error: nothing executes). One
that executes is recorded under its signature, as a real chain dedupes a signed
transaction, so sending the same one twice executes it once. Confirmation takes the rest of
the execution time.

It keeps its ledger in Redis, in the partition of each order (``shared.partitions``),
standing in for the outside world that every executor talks to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

import msgspec
import redis.asyncio as aioredis

from services.executor.execution import executed_price, signature
from shared.batching import Batcher
from shared.config import Settings
from shared.events import OrderRequested, Routed
from shared.launches import pushed
from shared.market import Market, launched_pool_of
from shared.partitions import Layout
from shared.redis_client import pipelined
from shared.route import Leg
from shared.routing import PoolOf, run_route
from shared.seeded import rng
from shared.stream import partitions_of

log = logging.getLogger("oee.executor")


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
# A landing is kept while its order may still be open (an executor that takes the order over
# must find it), and only a short while once the order is confirmed.
LEDGER_TTL_S = 7 * 24 * 3600
# No order waits on its landing's expiry: the settlements of a second share one round trip,
# sent when the executor stops at the latest. A crash in between leaves a landing kept for
# LEDGER_TTL_S, which is harmless.
SETTLE_LINGER_S = 1.0


def execute_route(routed: Routed, amount_in: int, pool_of: PoolOf) -> tuple[list[Leg], int]:
    """The route run against the pools as ``pool_of`` gives them; a sniper's launched pool
    as the snipers fired before it at the same launch leave it (``Routed.pushed``), so the
    first of them gets the best price. Raises InsufficientLiquidity."""
    route = routed.route
    key = launched_pool_of(route.path[-1])
    if isinstance(routed.pushed, int) and key is not None:
        pool_of = pushed(pool_of, key, routed.pushed)
    return run_route(route.path, route.hops, amount_in, pool_of)


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
        self.layout = Layout(settings.namespace, partitions_of(settings))
        # Transactions landing at the same moment share one round trip.
        self._lands = Batcher(self._land_all)
        self._settles = Batcher(self._settle_all, linger_s=SETTLE_LINGER_S)

    def ledger_key(self, order_id: str, attempt: int) -> str:
        return self.layout.ledger(order_id, signature(self.settings.seed, order_id, attempt))

    async def executions(self, order_ids: Sequence[str]) -> dict[str, int]:
        """How many attempts of each order executed (landed); an audit for tests and soak.
        Exactly once is 1 for a confirmed order and 0 for a failed one."""
        return {order_id: len(found) for order_id, found in
                (await self.landings(order_ids)).items()}

    async def landings(self, order_ids: Sequence[str]) -> dict[str, list[Landing]]:
        """Every attempt of each order that landed, as the ledger still holds them."""
        attempts = range(1, self.settings.max_attempts + 1)
        keys = [self.ledger_key(order, attempt) for order in order_ids for attempt in attempts]
        if not keys:
            return {}
        # One GET each, pipelined: the keys live in every partition (and, on a cluster, in
        # many slots, which one MGET may not span).
        landed = await pipelined(self.redis, [("GET", key) for key in keys])
        width = len(attempts)
        return {order_id: [msgspec.json.decode(raw, type=Landing)
                           for raw in landed[i * width : (i + 1) * width] if raw]
                for i, order_id in enumerate(order_ids)}

    def _latency_s(self, order_id: str, attempt: int) -> float:
        span = self.settings.execution_latency_ms
        if span.low == span.high:
            return span.low / 1000  # nothing to draw: seeding a generator costs more
        draw = rng(self.settings.seed, order_id, attempt, "latency")
        return draw.uniform(span.low, span.high) / 1000

    async def find_landing(self, order_id: str, attempts: Iterable[int]) -> Landing | None:
        """Whether any of these attempts of the order already landed."""
        keys = [self.ledger_key(order_id, attempt) for attempt in attempts]
        found = [raw for raw in await self.redis.mget(keys) if raw] if keys else []
        return msgspec.json.decode(found[0], type=Landing) if found else None

    async def send(self, order: OrderRequested, routed: Routed, attempt: int) -> Landing:
        """Signs and sends attempt ``attempt``: the transaction as it reaches the chain, to
        be recorded there (``land``). Raises why it does not: a transient failure, or the
        route giving less than minAmountOut on the pools as they are now."""
        tx_hash = signature(self.settings.seed, order.order_id, attempt)
        latency = self._latency_s(order.order_id, attempt)
        # The transaction confirms its latency after it was sent: however late the sleep
        # below wakes, the confirmation wait makes up for it.
        sent_at = time.time()
        if latency:
            await asyncio.sleep(latency * SEND_SHARE)
        if self.settings.failure_rate > 0:
            draw = rng(self.settings.seed, order.order_id, attempt, "failure")
            if draw.random() < self.settings.failure_rate:
                raise TransientError(draw.choice(TRANSIENT_ERRORS))
        _, amount_out = execute_route(routed, order.amount_in, self.market.pool_at(time.time()))
        if amount_out < routed.min_amount_out:
            raise SlippageExceeded(amount_out, routed.min_amount_out)
        landing = Landing(
            signature=tx_hash, order_id=order.order_id, attempt=attempt,
            amount_out=amount_out, executed_price=executed_price(order, amount_out),
            latency_ms=round(latency * 1000, 3),
            confirms_at=sent_at + latency,
        )
        return landing

    def land(self, landing: Landing) -> asyncio.Future[list[Landing]]:
        """The chain records the transaction (once: see ``_land_all``) with the round trips
        of this turn of the loop; the future gives ``[the landing the chain holds]``."""
        return self._lands.soon([landing])

    async def _land_all(self, landings: list[Landing]) -> list[Landing]:
        """Lands each transaction once: records it under its signature unless a landing is
        recorded there already, and answers that one then (``SET NX GET``, one command a
        transaction, all in one round trip)."""
        found = await pipelined(self.redis, [
            ("SET", self.layout.ledger(landing.order_id, landing.signature),
             msgspec.json.encode(landing), "NX", "GET", "EX", LEDGER_TTL_S)
            for landing in landings])
        # Where another executor landed the same transaction first, its record is the truth.
        return [msgspec.json.decode(existing, type=Landing) if existing else landing
                for landing, existing in zip(landings, found, strict=True)]

    def settle(self, landing: Landing) -> None:
        """The order is confirmed: its landing need not outlive the order's index. Sent
        with the other settlements of its second; nothing waits for it."""
        self._settles.soon([landing]).add_done_callback(_settled)

    async def close(self) -> None:
        """Sends the settlements still lingering."""
        await self._settles.drain()

    async def _settle_all(self, landings: list[Landing]) -> list[None]:
        ttl = self.settings.finished_order_ttl_s
        await pipelined(self.redis, [
            ("EXPIRE", self.layout.ledger(landing.order_id, landing.signature), ttl)
            for landing in landings])
        return [None] * len(landings)

    async def confirmation(self, landing: Landing) -> Landing:
        wait = landing.confirms_at - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        return landing


def _settled(done: asyncio.Future[list[None]]) -> None:
    if not done.cancelled() and (error := done.exception()) is not None:
        log.warning("landings keep their long expiry: settling them failed: %s", error)
