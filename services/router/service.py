"""The router: consume OrderRequested (and attempts that failed on price or age), ask both
venues, decide the route, append Routed (or Rerouted)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from services.router.venues import ask_all
from shared.config import Settings
from shared.events import AttemptFailed, Event, Failed, OrderRequested, Rerouted, Routed
from shared.market import Market
from shared.order import fold
from shared.routing import Decision, NoRoute, decide
from shared.seeded import rng
from shared.stream import Entry, EventStore
from shared.worker import Worker, worker_settings

log = logging.getLogger("oee.router")


class Router:
    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self.store = store
        self.market = Market.from_settings(settings)
        # Within a market tick a decision depends only on the order's terms: remember it.
        self._tick = -1.0
        self._decisions: dict[tuple[str, str, int, float], Decision] = {}

    def decide(self, order: OrderRequested, at: float) -> Decision:
        tick = self.market.tick(at)
        if tick != self._tick:
            self._tick, self._decisions = tick, {}
        terms = (order.token_in, order.token_out, order.amount_in, order.slippage)
        if terms not in self._decisions:
            self._decisions[terms] = decide(*terms, self.market.pools_between,
                                            self.market.pool_at(at))
        return self._decisions[terms]

    async def route(self, order: OrderRequested, seq: int,
                    kind: type[Routed] = Routed) -> Routed | Failed:
        draw = rng(self.settings.seed, order.order_id, seq, "quote")
        quotes = await ask_all(self.settings.quote_latency_ms, draw)
        try:
            decision = self.decide(order, time.time())
        except NoRoute as problem:
            log.info("order %s has no route: %s", order.order_id, problem)
            return Failed(order_id=order.order_id, seq=seq, reason="no_route",
                          error=str(problem), attempts=0)
        log.info("order %s routed: %s", order.order_id, decision.reason)
        return kind(
            order_id=order.order_id, seq=seq, dex=decision.best.venues, route=decision.best,
            candidates=decision.candidates, quotes=quotes, amount_out=decision.best.amount_out,
            min_amount_out=decision.min_amount_out, reason=decision.reason,
        )

    async def reroute(self, failed: AttemptFailed) -> Routed | Failed | None:
        state = fold(failed.order_id, await self.store.history(failed.order_id))
        # Not the router's turn any more (the order moved on, or ended): nothing to do.
        if state.requested is None or state.actor != "router":
            return None
        return await self.route(state.requested, failed.seq + 1, Rerouted)

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
        if decided is not None:
            await self.store.append([decided])


async def main(settings: Settings, stop: asyncio.Event) -> None:
    store = EventStore(settings)
    router = Router(settings, store)
    worker = Worker(
        store,
        worker_settings(
            settings, "router", (OrderRequested, AttemptFailed),
            # Routing mostly waits on the venues: many batches may wait at once.
            batch_size=settings.batch_size, chunk_size=settings.batch_size, concurrency=64,
        ),
        router.handle,
    )
    try:
        await worker.run(stop)
    finally:
        await store.close()
