"""The router: consume OrderRequested (and attempts that failed on price or age), ask both
venues, decide the route, append Routed (or Rerouted)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from msgspec import UNSET

from services.router.venues import ask_all
from shared.config import Settings
from shared.events import (
    AttemptFailed,
    Event,
    Failed,
    OrderRequested,
    Reopened,
    Rerouted,
    Routed,
    Triggered,
)
from shared.launches import Launches, pushed
from shared.market import Market, launched_pool_of
from shared.metrics import ROUTES, ROUTING_SECONDS
from shared.order import fold
from shared.routing import Decision, NoRoute, decide
from shared.seeded import rng
from shared.stream import Entry, EventStore
from shared.tokens import find, get
from shared.waiting import execution_bound
from shared.worker import Worker, worker_settings

log = logging.getLogger("oee.router")


class Router:
    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self.store = store
        self.market = Market.from_settings(settings)
        # Within a market tick a decision depends only on the order's terms: remember it.
        self._tick = -1.0
        self._decisions: dict[tuple[str, str, int, float, int], Decision] = {}
        self.launches = Launches(store.redis, settings.namespace)

    def decide(self, order: OrderRequested, at: float, ahead: int = 0) -> Decision:
        tick = self.market.tick(at)
        if tick != self._tick:
            self._tick, self._decisions = tick, {}
        # A sniper's tokenOut may be the mint it waited for: the pools name the symbol.
        terms = (order.token_in, get(order.token_out).symbol, order.amount_in, order.slippage)
        if (*terms, ahead) not in self._decisions:
            pool_of = self.market.pool_at(at)
            launched = launched_pool_of(terms[1])
            if launched is not None:
                # Quoted on the launched pool as the snipers fired before leave it.
                pool_of = pushed(pool_of, launched, ahead)
            self._decisions[(*terms, ahead)] = decide(*terms, self.market.pools_between,
                                                      pool_of)
        return self._decisions[(*terms, ahead)]

    async def route(self, order: OrderRequested, seq: int, kind: type[Routed] = Routed,
                    ahead: int = 0) -> Routed | Failed | Reopened:
        draw = rng(self.settings.seed, order.order_id, seq, "quote")
        quotes = await ask_all(self.settings.quote_latency_ms, draw)
        try:
            if find(order.token_out) is None:
                await self.launches.catch_up()  # a token launched since this process looked
            with ROUTING_SECONDS.time():
                decision = self.decide(order, time.time(), ahead)
        except (NoRoute, KeyError) as problem:
            log.info("order %s has no route: %s", order.order_id, problem)
            return Failed(order_id=order.order_id, seq=seq, reason="no_route",
                          error=str(problem), attempts=0)
        # A waiting order never fills below its own price: that raises the bound.
        bound = execution_bound(order, decision.min_amount_out)
        if kind is Rerouted and order.is_waiting and decision.best.amount_out < bound:
            return Reopened(order_id=order.order_id, seq=seq, reason=(
                f"the route gives {decision.best.amount_out}, below the bound {bound}"))
        log.info("order %s routed: %s", order.order_id, decision.reason)
        ROUTES.labels(decision.best.kind, decision.best.venues).inc()
        # The chain executes a sniper against the launched pool as the snipers before it
        # leave it.
        sniped = (order.order_type == "sniper"
                  and launched_pool_of(decision.best.path[-1]) is not None)
        return kind(
            order_id=order.order_id, seq=seq, dex=decision.best.venues, route=decision.best,
            candidates=decision.candidates, quotes=quotes, amount_out=decision.best.amount_out,
            min_amount_out=bound, reason=decision.reason, pushed=ahead if sniped else UNSET,
        )

    async def route_fired(self, fired: Triggered) -> Routed | Failed | Reopened | None:
        """A waiting order whose condition was met: routed as a market order is. (A sniper
        fired on its launched pool comes with its Routed and never reaches the router; one
        whose fill a trigger from before that appended alone is searched here again.)"""
        state = fold(fired.order_id, await self.store.history(fired.order_id))
        if state.requested is None or state.state != "triggered":
            return None
        return await self.route(state.requested, fired.seq + 1, ahead=fired.pushed)

    async def reroute(self, failed: AttemptFailed) -> Routed | Failed | Reopened | None:
        history = await self.store.history(failed.order_id)
        state = fold(failed.order_id, history)
        # Not the router's turn any more (the order moved on, or ended): nothing to do.
        if state.requested is None or state.actor != "router":
            return None
        # A sniper is routed again on the launched pool as its launch's snipers before it
        # left it, as it was the first time.
        fired = [e for e in history if isinstance(e, Triggered)]
        ahead = max(fired, key=lambda e: e.seq).pushed if fired else 0
        return await self.route(state.requested, failed.seq + 1, Rerouted, ahead)

    async def handle(self, entries: Sequence[Entry]) -> None:
        await asyncio.gather(*(self.decide_and_append(entry.event) for entry in entries))

    async def decide_and_append(self, event: Event) -> None:
        # Each decision is appended as soon as it is made, not held back for the slowest
        # venue of the batch; appends made at the same moment still share a round trip.
        decided: Event | None = None
        if isinstance(event, OrderRequested):
            decided = await self.route(event, event.seq + 1)
        elif isinstance(event, AttemptFailed) and event.reroute:
            decided = await self.reroute(event)
        elif isinstance(event, Triggered):
            decided = await self.route_fired(event)
        if decided is not None:
            await self.store.append([decided])


async def main(settings: Settings, stop: asyncio.Event) -> None:
    store = EventStore(settings)
    router = Router(settings, store)
    worker = Worker(
        store,
        worker_settings(
            settings, "router", (OrderRequested, AttemptFailed, Triggered),
            # Routing mostly waits on the venues: many batches may wait at once.
            batch_size=settings.batch_size, chunk_size=settings.batch_size, concurrency=64,
        ),
        router.handle,
    )
    try:
        await worker.run(stop)
    finally:
        await store.close()
