"""Following orders: one tail of the log per gateway process (every partition of it),
fanned out in memory to the subscribers of each order, and each subscriber's history read
without a gap. The tail reads only while someone follows: with no subscriber it pauses and
sends Redis nothing.

A subscriber registers with the tail first, waits until the tail is reading (``ready``),
and reads the order's history last. The tail delivers every event after its positions to
whoever is registered when it reads them; a tail that was paused takes the log's heads as
its positions before it counts as reading. So the history has every event up to the tail's
positions, the tail delivers every event after them, and the overlap is dropped by
``seq``: each status arrives exactly once, in order, whenever the subscriber connects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.exceptions import ConnectionError

from services.gateway.mailbox import Mailbox
from shared.events import AnyEvent, decode
from shared.stream import Entry, EventStore, Positions

log = logging.getLogger("oee.gateway")

History = Callable[[str], Awaitable[list[AnyEvent]]]

# A woken tail reads the log's heads first, one round trip; this long, it cannot.
READY_TIMEOUT_S = 5.0


class UnknownOrder(Exception):
    pass


class Tail:
    def __init__(self, store: EventStore, batch: int = 1000) -> None:
        self.store = store
        self.batch = batch
        # Where the tail stands in each partition of the log; stale while it is paused.
        self.positions = list(Positions.origin(len(store.partitions)).ids)
        self.subscribers: dict[str, set[Mailbox[AnyEvent]]] = defaultdict(set)
        # Followers of every order (each filters what it may see): /orders/stream.
        self.firehose: set[Mailbox[Entry]] = set()
        self.events_seen = 0
        # Set by every registration, so that paused read loops wake up.
        self.wanted = asyncio.Event()
        # One per read loop: set while it reads on from positions it took after waking.
        self.reading = [asyncio.Event() for _ in store.read_sets]

    @property
    def position(self) -> Positions:
        return Positions(tuple(self.positions))

    @property
    def followed(self) -> bool:
        return bool(self.subscribers or self.firehose)

    async def start(self) -> None:
        """Refuses a log of another partition count. The tail starts paused: it reads the
        log's heads when it is first followed."""
        await self.store.check_partitions()

    async def now(self) -> Positions:
        """Where the log stands, or stood a moment ago: the tail's position while every
        loop reads (no round trip), the log's heads otherwise."""
        if all(reading.is_set() for reading in self.reading):
            return self.position
        return await self.store.heads()

    async def ready(self) -> None:
        """Returns once every read loop is reading (at once while the tail reads). A
        follower registered before calling it then gets from the tail every event that a
        read of the log made after it returns does not see. A tail that cannot start
        reading within ``READY_TIMEOUT_S`` (Redis does not answer) is Redis unavailable, as
        a failed history read would be: the follower is told so instead of left waiting."""
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                for reading in self.reading:
                    await reading.wait()
        except TimeoutError as error:
            raise ConnectionError("the log's tail could not start reading") from error

    async def run(self) -> None:
        """One read loop per read set: a single one on a single Redis, one per partition on
        a cluster."""
        await asyncio.gather(*(self._run(partitions, reading) for partitions, reading
                               in zip(self.store.read_sets, self.reading, strict=True)))

    async def _run(self, partitions: list[int], reading: asyncio.Event) -> None:
        while True:
            if not self.followed:
                # Nothing awaited between the check and the clear: a follower registers
                # either before (the loop reads on from positions older than that) or
                # after (it waits for the heads this loop reads once woken).
                reading.clear()
                self.wanted.clear()
                await self.wanted.wait()
                continue
            try:
                if not reading.is_set():
                    # Events appended while paused are in the histories that followers
                    # read once this is set; those after the heads come from the tail.
                    heads = await self.store.heads()
                    for partition in partitions:
                        self.positions[partition] = heads[partition]
                    reading.set()
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
                mailboxes = self.subscribers.get(order_id)
                if not (mailboxes or self.firehose):
                    continue  # decoded only when someone follows this order
                event = decode(data)
                for mailbox in mailboxes or ():
                    mailbox.put_nowait(event)
                if self.firehose:
                    entry = Entry(entry_id, event, partition)
                    for everything in self.firehose:
                        everything.put_nowait(entry)
            self.events_seen += len(entries)

    def subscribe(self, order_id: str) -> Mailbox[AnyEvent]:
        mailbox: Mailbox[AnyEvent] = Mailbox()
        self.subscribers[order_id].add(mailbox)
        self.wanted.set()
        return mailbox

    def unsubscribe(self, order_id: str, mailbox: Mailbox[AnyEvent]) -> None:
        mailboxes = self.subscribers.get(order_id)
        if mailboxes is not None:
            mailboxes.discard(mailbox)
            if not mailboxes:
                del self.subscribers[order_id]

    def subscribe_all(self) -> Mailbox[Entry]:
        mailbox: Mailbox[Entry] = Mailbox()
        self.firehose.add(mailbox)
        self.wanted.set()
        return mailbox

    def unsubscribe_all(self, mailbox: Mailbox[Entry]) -> None:
        self.firehose.discard(mailbox)


async def follow(tail: Tail, order_id: str, history: History) -> AsyncIterator[AnyEvent]:
    """Every event of the order once, in seq order; ends after the terminal event."""
    mailbox = tail.subscribe(order_id)
    try:
        await tail.ready()
        waiting = {e.seq: e for e in await history(order_id)}
        if not waiting:
            raise UnknownOrder(order_id)
        last_seq = 0
        while True:
            # Ends with ``event`` None: no event is kept while the next is awaited.
            while (event := waiting.pop(last_seq + 1, None)) is not None:
                last_seq = event.seq
                yield event
                if event.is_terminal:
                    return
            for taken in await mailbox.take():
                if taken.seq > last_seq:
                    waiting[taken.seq] = taken
            del taken
    finally:
        tail.unsubscribe(order_id, mailbox)
