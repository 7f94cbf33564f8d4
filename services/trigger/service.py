"""The trigger service: watches waiting orders and fires them.

It reads its queue through its own consumer group (``trigger``): new waiting orders (it
opens them), orders back from an execution below their bound (``Reopened``), and cancels.
Open orders are kept in memory (``Book``); at start they are rebuilt from the events of
every order in the registry. On each market tick it asks the market once per pair and fires
every limit order the market meets (``Triggered``: the router takes it from there); at each
deadline it expires what is still open; on each launch on the market's stream it fires the
snipers waiting for that token, in submission order, each quoted on the pool as the ones
before it leave it.

Any number of instances may run: each watches every open order (the registry tells each
what the others opened), and when two fire or expire the same order, the store keeps the
first event and refuses the second (same seq, and the lifecycle allows one). A cancel and a
trigger race the same way. So a crash loses nothing and fires nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from services.trigger.book import Book, Pair, Watched, least_price
from services.trigger.fills import after, direct
from services.trigger.registry import Registry
from services.trigger.schedule import Schedule
from shared import decisions, tracing
from shared.config import Settings
from shared.events import (
    Cancelled,
    Event,
    OrderOpened,
    OrderRequested,
    Reopened,
)
from shared.launches import Launches, PoolLaunched, into_pool, pushed
from shared.market import Market
from shared.metrics import ROUTES
from shared.order import OrderState, fold
from shared.redis_client import connect
from shared.route import Candidate
from shared.routing import Decision, NoRoute, decide
from shared.stream import Entry, EventStore, StreamId
from shared.tokens import find, get
from shared.worker import Worker, worker_settings

log = logging.getLogger("oee.trigger")

# Ids added to the registry this long before the last look are looked at again, so one
# added by a slow instance just before is not missed.
SYNC_OVERLAP_MS = 5_000
LOAD_CHUNK = 1_000
# What a tick or a launch fires goes to the store this many events at a time (a limit's
# Triggered; a sniper's Triggered and Routed): Redis appends one chunk while the next is
# decided, and the first reach the router or the executor at once. At 1,000 snipers, 200
# gave a p99 about 40 ms lower than 50 (more, smaller appends); larger, no better.
FIRE_CHUNK = 200


class Trigger:
    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self.store = store
        self.market = Market.from_settings(settings)
        self.book = Book()
        self.registry = Registry(store.redis, settings.namespace)
        self.launches = Launches(store.redis, settings.namespace)
        self.traced = tracing.Consumer(store, "trigger")
        self._synced_ms = 0.0
        self._tick = -1.0
        self._quotes: dict[tuple[str, str, int], int | None] = {}
        self._checked_tick = -1.0

    # --- quoting ------------------------------------------------------------------------

    def decision(self, pair: Pair, amount_in: int, at: float,
                 launch: PoolLaunched | None = None, ahead: int = 0) -> Decision | None:
        pool_of = self.market.pool_at(at)
        if launch is not None:
            pool_of = pushed(pool_of, launch.key, ahead)
        try:
            return decide(pair[0], pair[1], amount_in, 0.01, self.market.pools_between, pool_of)
        except NoRoute:
            return None

    def quote(self, pair: Pair, amount_in: int, at: float) -> int | None:
        """The best route's output now, as the router would find it; one per tick, pair
        and amount."""
        tick = self.market.tick(at)
        if tick != self._tick:
            self._tick, self._quotes = tick, {}
        key = (*pair, amount_in)
        if key not in self._quotes:
            decision = self.decision(pair, amount_in, at)
            self._quotes[key] = decision.best.amount_out if decision else None
        return self._quotes[key]

    # --- the queue: new orders, orders back, cancels ------------------------------------

    async def handle(self, entries: Sequence[Entry]) -> None:
        opened: list[Watched] = []
        for entry in entries:
            event = entry.event
            if isinstance(event, OrderRequested) and event.is_waiting:
                with self.traced.span("open", entry):
                    watched = await self.open(event)
                if watched is not None:
                    opened.append(watched)
            elif isinstance(event, Reopened):
                await self.registry.add([event.order_id])
                await self.load([event.order_id])
                if event.order_id in self.book:
                    opened.append(self.book.orders[event.order_id])
            elif isinstance(event, Cancelled):
                self.book.discard(event.order_id)
                await self.registry.remove([event.order_id])
        # A limit the market meets already fills at once, not at the next tick.
        await self.check(time.time(), opened)

    async def open(self, order: OrderRequested) -> Watched | None:
        decided = decisions.open_waiting(order, time.time())
        if any(isinstance(event, OrderOpened) for event in decided):
            # In the registry before it is open: a crash in between leaves it findable.
            await self.registry.add([order.order_id])
        await self.store.append(tracing.made(decided))
        await self.load([order.order_id])
        return self.book.orders.get(order.order_id)

    # --- what is open: from the events ------------------------------------------------

    async def load(self, order_ids: Sequence[str]) -> None:
        """Watch those of these orders that are open, by their events; forget the rest."""
        for start in range(0, len(order_ids), LOAD_CHUNK):
            chunk = list(order_ids[start : start + LOAD_CHUNK])
            histories = await self.store.histories(chunk)
            ended = []
            for order_id, history in zip(chunk, histories, strict=True):
                state = fold(order_id, history)
                if decisions.is_watched(state):
                    self.book.add(watching(state))
                elif history and not decisions.is_opening(state):
                    ended.append(order_id)
            self.book.discard_all(ended)
            await self.registry.remove(ended)

    async def sync(self) -> None:
        """Watch what other instances opened since the last look."""
        now_ms = time.time() * 1000
        since = max(0.0, self._synced_ms - SYNC_OVERLAP_MS) if self._synced_ms else 0.0
        ids = [i for i in await self.registry.since(since) if i not in self.book]
        self._synced_ms = now_ms
        if ids:
            await self.load(ids)

    # --- firing and expiring ------------------------------------------------------------

    async def check(self, at: float, only: Sequence[Watched] | None = None) -> int:
        """Fire every watched order (or ``only`` these) that the market meets now."""
        fire = Firing(self.store.append, self.went_in)
        if only is not None:
            candidates = [w for w in only if find(w.order.token_out) is not None]
        else:
            candidates = []
            for pair in self.book.pairs():
                smallest = self.book.smallest[pair]
                best = self.quote(pair, smallest, at)
                if best is None:
                    continue
                # Output is concave in input: no order of the pair gets a better price.
                candidates += self.book.meetable(pair, self._price(pair, smallest, best) * 1.000001)
        for watched in candidates:
            order = watched.order
            pair = (order.token_in, get(order.token_out).symbol)
            out = self.quote(pair, order.amount_in, at)
            if out is not None and decisions.meets(order, out, watched.least_out()):
                price = self._price(pair, order.amount_in, out)
                with tracing.following("fire", order):
                    events = tracing.made(decisions.fire(
                        order, watched.seq, price,
                        f"the market pays {price:.9g} {pair[1]} per {pair[0]}, at least "
                        f"the order's {watched.price:.9g}"))
                # Outside the order's span: a full chunk goes to the store from here.
                await fire.add(events)
        return await fire.done()

    async def fire_snipers(self, launch: PoolLaunched) -> int:
        """Fire the snipers waiting for ``launch``'s token, in submission order, each
        quoted on the launched pool as the ones before it leave it (one pass: see
        ``services.trigger.fills``). A sniper fired on that pool alone is routed here too:
        its ``Routed`` goes in with its ``Triggered``, straight to the executor. They go to
        the store in chunks, each sent while the next is priced, so the executor starts on
        the first at once."""
        waiting = self.book.launched(launch.mint)
        try:
            return await self._fire_in_turn(launch, waiting)
        finally:
            # Those still as they were (not fired, or fired and not yet known to have gone
            # in) keep waiting, as limits at their maxPrice.
            for watched in waiting:
                if self.book.orders.get(watched.order_id) is watched:
                    self.book.add(watched)

    async def _fire_in_turn(self, launch: PoolLaunched, waiting: list[Watched]) -> int:
        at, key, ahead = time.time(), launch.key, 0
        launched = self.market.pool(key, at)
        only_pool = self.market.pools_between(launch.quote, launch.symbol) == [key]
        fire = Firing(self.store.append, self.went_in)
        for watched in waiting:
            order = watched.order
            route: Candidate | None = None
            # Only a route on the launched pool alone is carried: that pool is the same at
            # any moment, so the executor's moment prices it as the trigger's did.
            carried = order.token_in == launch.quote and only_pool
            if carried:
                moved = after(launched, key, ahead)
                route = direct(moved, key, order.amount_in) if moved is not None else None
            else:  # through another pool first: searched as the router would
                decision = self.decision((order.token_in, launch.symbol), order.amount_in,
                                         at, launch, ahead)
                route = decision.best if decision is not None else None
            if route is None or not decisions.meets(order, route.amount_out,
                                                    watched.least_out()):
                continue  # it keeps waiting, as a limit at its maxPrice, until it expires
            price = self._price((order.token_in, launch.symbol), order.amount_in,
                                route.amount_out)
            with tracing.following("fire", order):
                events = tracing.made(decisions.fire(
                    order, watched.seq, price, f"{launch.symbol} launched on {launch.venue}",
                    ahead=ahead, fill=route if carried else None))
            await fire.add(events)
            if carried:
                ROUTES.labels(route.kind, route.venues).inc()
            ahead += into_pool(launch, route.legs)
        fired = await fire.done()
        log.info("launch of %s (%s): %d snipers fired", launch.symbol, launch.mint, fired)
        return fired

    async def expire(self, now: float) -> int:
        due = self.book.due(now)
        await self.settle([event for w in due
                           for event in decisions.expire(w.order, w.seq, now)])
        return len(due)

    async def settle(self, events: list[Event]) -> None:
        """Append; an order whose first event went in is no longer watched. Where the store
        refused it (cancelled, fired by another instance, reopened meanwhile), the order's
        events say what to do."""
        if events:
            await self.went_in(events, await self.store.append(events))

    async def went_in(self, events: Sequence[Event], ids: Sequence[StreamId | None]) -> None:
        """What the store answered to ``events``."""
        went_in: dict[str, bool] = {}
        for event, stream_id in zip(events, ids, strict=True):
            went_in.setdefault(event.order_id, stream_id is not None)
        done = [order_id for order_id, ok in went_in.items() if ok]
        refused = [order_id for order_id, ok in went_in.items() if not ok]
        self.book.discard_all(done)
        await self.registry.remove(done)
        if refused:
            self.book.discard_all(refused)
            await self.load(refused)

    @staticmethod
    def _price(pair: Pair, amount_in: int, amount_out: int) -> float:
        return (amount_out / get(pair[1]).unit) / (amount_in / get(pair[0]).unit)

    # --- the loops --------------------------------------------------------------------

    async def start(self) -> None:
        await self.launches.catch_up()
        await self.sync()
        log.info("watching %d open orders", len(self.book))

    async def clock(self, stop: asyncio.Event) -> None:
        """Each tick: expire what is due, fire what the market meets, look for orders other
        instances opened. Between ticks, wake for a deadline."""
        while not stop.is_set():
            now = time.time()
            try:
                await self.expire(now)
                if self.market.tick(now) != self._checked_tick:
                    self._checked_tick = self.market.tick(now)
                    await self.check(now)
                    await self.sync()
            except Exception:
                log.exception("trigger: a tick failed; trying again at the next")
            wake = self.market.tick(time.time()) + self.market.tick_s
            deadline = self.book.next_deadline()
            if deadline is not None:
                wake = min(wake, deadline)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, wake - time.time()) + 0.001)

    async def follow_launches(self, stop: asyncio.Event) -> None:
        # A connection of its own for the blocking read, so the tick's commands never
        # queue behind it; on a cluster, the cluster client.
        reader = Launches(connect(self.settings.redis_url, cluster=self.store.cluster,
                                  read_timeout_s=self.settings.block_ms / 1000 + 10),
                          self.settings.namespace)
        reader.last = self.launches.last
        try:
            while not stop.is_set():
                try:
                    for launch in await reader.wait(self.settings.block_ms):
                        await self.fire_snipers(launch)
                except Exception:
                    log.exception("trigger: reading launches failed; trying again")
                    await asyncio.sleep(0.5)
        finally:
            await reader.redis.aclose()


class Firing:
    """The events of the orders a tick or a launch fires, appended ``FIRE_CHUNK`` at a
    time, each chunk while the next is decided; ``done``, once all are in (or refused),
    hands the store's answers to ``went_in`` at once (the book cut once, not per chunk)
    and answers how many orders fired."""

    def __init__(self, append: Callable[[list[Event]], Awaitable[list[StreamId | None]]],
                 went_in: Callable[[list[Event], list[StreamId | None]], Awaitable[None]]
                 ) -> None:
        self._append = append
        self._went_in = went_in
        self._events: list[Event] = []
        self._chunks: list[list[Event]] = []
        self._appends: list[asyncio.Future[list[StreamId | None]]] = []
        self._fired = 0

    async def add(self, events: list[Event]) -> None:
        """One order's events."""
        self._events += events
        self._fired += 1
        if len(self._events) >= FIRE_CHUNK:
            self._send()
            await asyncio.sleep(0)  # let it go out before deciding the next

    def _send(self) -> None:
        self._chunks.append(self._events)
        self._appends.append(asyncio.ensure_future(self._append(self._events)))
        self._events = []

    async def done(self) -> int:
        if self._events:
            self._send()
        if not self._appends:
            return 0
        answers = await asyncio.gather(*self._appends)
        await self._went_in([e for chunk in self._chunks for e in chunk],
                            [i for ids in answers for i in ids])
        return self._fired


def watching(state: OrderState) -> Watched:
    """An open order as the trigger watches it (``decisions.is_watched``)."""
    assert state.requested is not None
    return Watched(order=state.requested, seq=state.last_seq,
                   price=least_price(state.requested))


async def main(settings: Settings, stop: asyncio.Event) -> None:
    store = EventStore(settings)
    trigger = Trigger(settings, store)
    worker = Worker(
        store,
        worker_settings(settings, "trigger", (OrderRequested, Reopened, Cancelled),
                        batch_size=settings.batch_size, chunk_size=settings.batch_size,
                        concurrency=1),
        trigger.handle,
    )
    await trigger.start()
    loops = [worker.run(stop), trigger.clock(stop), trigger.follow_launches(stop)]
    if settings.launch_every_s > 0:
        loops.append(Schedule(store.redis, settings.namespace, settings.seed,
                              settings.launch_every_s).run(stop))
    try:
        await asyncio.gather(*loops)
    finally:
        await store.close()
