"""Following orders: one tail of the log per gateway process (every partition of it),
fanned out in memory to the subscribers of each order, and each subscriber's history read
without a gap.

A subscriber registers with the tail first and reads the order's history second. The
history has every event appended before the read; the tail delivers every event appended
after the registration; the overlap is dropped by ``seq``. So each status arrives exactly
once, in order, whenever the subscriber connects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable

from shared.events import AnyEvent, decode
from shared.order import OrderState
from shared.stream import Entry, EventStore, Positions

log = logging.getLogger("oee.gateway")

History = Callable[[str], Awaitable[list[AnyEvent]]]


class UnknownOrder(Exception):
    pass


class Tail:
    def __init__(self, store: EventStore, batch: int = 1000) -> None:
        self.store = store
        self.batch = batch
        # Where the tail stands in each partition of the log.
        self.positions = list(Positions.origin(len(store.partitions)).ids)
        self.subscribers: dict[str, set[asyncio.Queue[AnyEvent]]] = defaultdict(set)
        # Followers of every order (each filters what it may see): /orders/stream.
        self.firehose: set[asyncio.Queue[Entry]] = set()
        self.events_seen = 0

    @property
    def position(self) -> Positions:
        return Positions(tuple(self.positions))

    async def start(self) -> None:
        await self.store.check_partitions()
        self.positions = list((await self.store.heads()).ids)

    async def run(self) -> None:
        """One read loop per read set: a single one on a single Redis, one per partition on
        a cluster."""
        await asyncio.gather(*(self._run(part) for part in self.store.read_sets))

    async def _run(self, partitions: list[int]) -> None:
        while True:
            try:
                entries = await self.store.tail_raw(self.positions, self.batch, partitions,
                                                    self.store.longest_block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("log tail of partitions %s interrupted (%s); retrying", partitions,
                            error)
                await asyncio.sleep(1)
                continue
            for partition, entry_id, order_id, data in entries:
                self.positions[partition] = entry_id
                queues = self.subscribers.get(order_id)
                if not (queues or self.firehose):
                    continue  # decoded only when someone follows this order
                event = decode(data)
                for queue in queues or ():
                    queue.put_nowait(event)
                if self.firehose:
                    entry = Entry(entry_id, event, partition)
                    for everything in self.firehose:
                        everything.put_nowait(entry)
            self.events_seen += len(entries)

    def subscribe(self, order_id: str) -> asyncio.Queue[AnyEvent]:
        queue: asyncio.Queue[AnyEvent] = asyncio.Queue()
        self.subscribers[order_id].add(queue)
        return queue

    def unsubscribe(self, order_id: str, queue: asyncio.Queue[AnyEvent]) -> None:
        queues = self.subscribers.get(order_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self.subscribers[order_id]


async def follow(
    tail: Tail, order_id: str, history: History
) -> AsyncIterator[tuple[OrderState, AnyEvent]]:
    """Every event of the order once, in seq order, with the state it leads to; ends
    after the terminal event."""
    queue = tail.subscribe(order_id)
    try:
        events = await history(order_id)
        if not events:
            raise UnknownOrder(order_id)
        waiting = {e.seq: e for e in events}
        state = OrderState(order_id=order_id)
        while True:
            while state.last_seq + 1 in waiting:
                event = waiting.pop(state.last_seq + 1)
                state.apply(event)
                yield state, event
                if event.is_terminal:
                    return
            event = await queue.get()
            if event.seq > state.last_seq:
                waiting[event.seq] = event
    finally:
        tail.unsubscribe(order_id, queue)
