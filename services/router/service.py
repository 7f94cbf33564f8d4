"""The router: consume OrderRequested (and attempts that failed on price or age, and fired
waiting orders), ask both venues, and append the route the domain makes of the market's
answer (``shared.decisions``)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence

from services.router.venues import ask_all
from shared import decisions, tracing
from shared.config import Settings
from shared.decisions import Refused, Routing
from shared.events import AttemptFailed, Event, OrderRequested, Routed, Triggered
from shared.launches import Launches, pushed
from shared.market import Market, launched_pool_of
from shared.metrics import ROUTES, ROUTING_SECONDS
from shared.order import fold
from shared.routing import Decision, NoRoute, decide
from shared.seeded import rng
from shared.stream import Entry, EventStore
from shared.tokens import find, get
from shared.worker import Worker, worker_settings

log = logging.getLogger("oee.router")

# While orders come at least this often, the ones that come within this long of a read are
# routed together: their routes go in one append, and the executor takes them up together,
# so every step after shares its round trips. Bounded so that the latency targets hold.
ROUTE_LINGER_S = 0.01

# A route's series, looked up once per kind and venues.
_routes = functools.cache(ROUTES.labels)


class Router:
    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self.store = store
        self.market = Market.from_settings(settings)
        # Within a market tick a decision depends only on the order's terms: remember it,
        # with whether the order's tokenOut is a launched one.
        self._tick = -1.0
        self._decisions: dict[tuple[str, str, int, float, int], tuple[Decision, bool]] = {}
        self.launches = Launches(store.redis, settings.namespace)
        self.traced = tracing.Consumer(store, "router")

    def decide(self, order: OrderRequested, at: float, ahead: int = 0) -> tuple[Decision, bool]:
        """The market's best route for the order now, and whether its tokenOut was
        launched."""
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
            self._decisions[(*terms, ahead)] = (
                decide(*terms, self.market.pools_between, pool_of), launched is not None)
        return self._decisions[(*terms, ahead)]

    async def route(self, routing: Routing) -> list[Event]:
        order = routing.order
        draw = rng(self.settings.seed, order.order_id, routing.seq, "quote")
        quotes = await ask_all(self.settings.quote_latency_ms, draw)
        found: Decision | NoRoute
        launched = False
        try:
            if find(order.token_out) is None:
                await self.launches.catch_up()  # a token launched since this process looked
            with ROUTING_SECONDS.time():
                found, launched = self.decide(order, time.time(), routing.ahead)
        except (NoRoute, KeyError) as problem:
            log.info("order %s has no route: %s", order.order_id, problem)
            found = NoRoute(str(problem))
        decided = decisions.route(routing, found, quotes, launched)
        for event in decided:
            if isinstance(event, Routed):  # and Rerouted
                log.info("order %s routed: %s", order.order_id, event.reason)
                _routes(event.route.kind, event.route.venues).inc()
        return decided

    async def routing_of(self, entry: Entry) -> Routing | Refused | None:
        """What the domain says the router owes the order of a fired order or a failed
        attempt, if anything: decided on the order's whole history as its queue entry
        carries it. (Where the order moved on since, the store refuses the route.)"""
        event = entry.event
        if isinstance(event, Triggered):
            # (A sniper fired on its launched pool comes with its Routed and never reaches
            # the router; one whose fill a trigger from before that appended alone is
            # searched here again.)
            history = await self.store.history_of(entry)
            return decisions.route_fired(fold(event.order_id, history), event)
        if isinstance(event, AttemptFailed) and event.reroute:
            history = await self.store.history_of(entry)
            return decisions.route_again(fold(event.order_id, history), event)
        return None

    async def handle(self, entries: Sequence[Entry]) -> None:
        await asyncio.gather(*(self.decide_and_append(entry) for entry in entries))

    async def decide_and_append(self, entry: Entry) -> None:
        # Each decision is appended as soon as it is made, not held back for the slowest
        # venue of the batch; appends made at the same moment still share a round trip.
        event = entry.event
        if isinstance(event, OrderRequested):  # a new order: its request is all there is
            routing: Routing | Refused | None = decisions.route_request(event)
        else:
            routing = await self.routing_of(entry)
        if isinstance(routing, Routing):
            with self.traced.span("route", entry, routing.order):
                await self.store.append(tracing.made(await self.route(routing)))


async def main(settings: Settings, stop: asyncio.Event) -> None:
    store = EventStore(settings)
    router = Router(settings, store)
    worker = Worker(
        store,
        worker_settings(
            settings, "router", (OrderRequested, AttemptFailed, Triggered),
            # Routing mostly waits on the venues: many batches may wait at once.
            batch_size=settings.batch_size, chunk_size=settings.batch_size, concurrency=64,
            linger_s=ROUTE_LINGER_S,
        ),
        router.handle,
    )
    try:
        await worker.run(stop)
    finally:
        await store.close()
