"""The loop every consuming service runs: read a batch, hand it over, acknowledge it.

A group reads its stream in every partition. A worker first reads its own pending entries
(what a previous run of this consumer left unacknowledged), then new ones: one blocking
read covers every partition on a single Redis, one read per partition on a cluster. Beside
the reads, a keeper claims entries any consumer left idle for ``claim_idle_ms`` and keeps
this consumer's own entries alive. An entry delivered more than ``max_deliveries`` times is
a poison message: it goes to the dead-letter stream and its order ends ``failed``, instead
of looping forever.

The handler knows nothing of the stream: it gets events of the types it asked for, in
chunks of ``chunk_size``, and returns when they are done; only then are they acknowledged,
with what other chunks finished meanwhile, in the round trip of the worker's next read (or
``ACK_LINGER_S`` later, if no read comes sooner). Other types are acknowledged the same
way, without being handed over. A handler that takes longer than ``handling_timeout_s`` is
cancelled (a watchdog checks every tenth of it) and its entries are no longer kept alive,
so another consumer claims them; the idempotent appends make the order converge. At most
``concurrency`` chunks are in hand at once, and a worker reads no more than its free slots
can start, so one consumer never hoards work another could start. When Redis is away the
loop waits and tries again; nothing is acknowledged that was not done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from redis.exceptions import RedisClusterException, RedisError

from shared.config import Settings, load
from shared.events import Event
from shared.logs import bind_events
from shared.metrics import BACKEND_ERRORS, DEAD_LETTERS, QUEUE_WAIT
from shared.stream import Entry, EventStore, Positions, StreamId

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Entry]], Awaitable[None]]
Ref = tuple[int, StreamId]

# How long handled entries wait for the next read to carry their acknowledgement, at most:
# a worker busy enough to read again within this saves a round trip and a wake-up; one
# that is not acknowledges them then, in a round trip of their own.
ACK_LINGER_S = 0.2


def consumer_name(service: str) -> str:
    """This process's consumer name, as its environment's settings make it, for what runs
    before a service has its ``Settings`` (its log lines name the consumer)."""
    return load().consumer_name(service)


class WorkerSettings(msgspec.Struct, frozen=True, kw_only=True):
    group: str
    consumer: str
    types: tuple[type[Event], ...]
    batch_size: int = 100
    # Events handed to the handler at once: a whole batch, or one each.
    chunk_size: int = 100
    # Chunks being handled at once.
    concurrency: int = 1
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    shutdown_timeout_s: float = 30.0
    handling_timeout_s: float = 300.0
    # After a read that did not fill its free slots, and came back within this long (the
    # events come at least that often), wait this long before the next, so the events
    # arriving meanwhile are read, handled and acknowledged as one batch. A first event
    # after a quiet spell is read at once, and a worker whose events come further apart
    # than this never waits: a linger pays only where there is company to wait for. Where
    # a full read's worth came sooner last time, the wait is that much (``Linger``).
    linger_s: float = 0.0


def worker_settings(settings: Settings, service: str, types: tuple[type[Event], ...], *,
                    batch_size: int, chunk_size: int, concurrency: int,
                    linger_s: float = 0.0) -> WorkerSettings:
    """A service's loop settings: its group is named after it."""
    return WorkerSettings(
        group=service, consumer=settings.consumer_name(service), types=types, batch_size=batch_size,
        chunk_size=chunk_size, concurrency=concurrency, claim_idle_ms=settings.claim_idle_ms,
        max_deliveries=settings.max_deliveries, handling_timeout_s=settings.handling_timeout_s,
        linger_s=linger_s,
    )


class Worker:
    def __init__(self, store: EventStore, settings: WorkerSettings, handle: Handler) -> None:
        self.store = store
        self.settings = settings
        self.group = store.group(settings.group)
        self._waited = QUEUE_WAIT.labels(settings.group)
        self.handle = handle
        self._in_flight = 0
        self._backlog: deque[Entry] = deque()
        # Entries read and not yet acknowledged: kept alive, and never taken over twice.
        self._held: set[Ref] = set()
        self._slot_freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # Chunks in hand, by when their handling must be over; and those the watchdog let go.
        self._deadlines: dict[asyncio.Task[None], float] = {}
        self._overdue: set[asyncio.Task[None]] = set()
        # Handled, and acknowledged together with the next read, or by a timer.
        self._finished: list[Entry] = []
        self._ack_timer = False

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        log.info("%s reading %d partitions as %s", s.group, len(self.store.partitions),
                 s.consumer)
        await self._retrying(stop, self._start)
        if not stop.is_set():
            loops = [asyncio.create_task(self._retrying(stop, self._read_loop(part)))
                     for part in self.store.read_sets]
            loops.append(asyncio.create_task(self._retrying(stop, self._keep)))
            loops.append(asyncio.create_task(self._watch(stop)))
            await stop.wait()
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        await self._finish_in_flight()

    async def _retrying(self, stop: asyncio.Event,
                        step: Callable[[asyncio.Event], Awaitable[bool]]) -> None:
        """Run ``step`` until it says it is done (or ``stop``), waiting out Redis outages:
        0.2 s after a failure, doubling up to 5 s while failures follow each other. Nothing
        else ends it either: a loop that died would leave its partitions unread for good,
        with nothing in the log but one traceback.

        Written out rather than through tenacity: the step runs once per read, and a busy
        executor reads one entry for each slot that frees. Through tenacity's AsyncRetrying
        (9.2.1) a worker handed one entry per read spent a median 121 µs of CPU per entry
        against 79 µs this way (eight alternating runs of 3,000 entries each); its bare
        call costs about 19 µs."""
        outage = 0
        while not stop.is_set():
            try:
                if await step(stop):
                    return
                outage = 0
            except (RedisError, RedisClusterException) as error:
                # RedisClusterException is not a RedisError: redis-py's cluster client raises
                # it (SlotNotCoveredError) while a failover leaves a slot without a primary.
                BACKEND_ERRORS.labels("redis").inc()
                outage += 1
                delay = min(5.0, 0.1 * 2**outage)
                log.warning("%s: Redis unavailable (%s); retrying in %.1fs", self.settings.group,
                            error, delay)
                await _wait(stop, delay)
            except Exception:
                outage += 1
                delay = min(5.0, 0.1 * 2**outage)
                log.exception("%s: reading failed; retrying in %.1fs", self.settings.group, delay)
                await _wait(stop, delay)

    async def _start(self, stop: asyncio.Event) -> bool:
        """Groups exist, the partition count is the recorded one, and this consumer's own
        pending entries are back in hand."""
        await self.store.check_partitions()
        await self.group.ensure()
        after = Positions.origin(len(self.store.partitions))
        partitions = list(self.store.partitions)
        while partitions and not stop.is_set():
            if self._free_events() <= 0:
                await self._wait_for_slot(stop)
                continue
            entries = []
            for part in self.store.read_sets:
                wanted = [p for p in part if p in partitions]
                if wanted:
                    entries += await self.group.read(self.settings.consumer, self._free_events(),
                                                     wanted, pending=after)
            done = set(partitions) - {e.partition for e in entries}
            partitions = [p for p in partitions if p not in done]
            for entry in entries:
                after = after.advanced(entry.partition, max(after[entry.partition], entry.id))
            if entries:
                log.info("%s resuming %d pending entries", self.settings.group, len(entries))
                await self._dispatch(entries, redelivered=True)
        return True

    def _read_loop(self, partitions: list[int]) -> Callable[[asyncio.Event], Awaitable[bool]]:
        lingering = False
        linger = Linger(self.settings.linger_s, self._full_read())
        loop = asyncio.get_running_loop()
        # Since when the worker has been asking for entries and getting none: reads that
        # come back empty (their block timing out) do not start the wait anew.
        waiting_since: float | None = None

        async def step(stop: asyncio.Event) -> bool:
            nonlocal lingering, waiting_since
            if lingering:  # once: a wait for a free slot that follows is wait enough
                lingering = False
                await _wait(stop, linger.begin(loop.time()))
            free = self._free_events()
            if free <= 0:
                await self._wait_for_slot(stop)
                return False
            acks, self._finished = self._finished, []
            if waiting_since is None:
                waiting_since = loop.time()
            try:
                entries = await self.group.read(self.settings.consumer, free, partitions,
                                                block_ms=self.store.longest_block_ms,
                                                acks=acks)
            except BaseException:
                # Perhaps not acknowledged: again with the next read, or the timer's.
                self._acknowledge_soon(acks)
                raise
            self._held.difference_update(e.ref for e in acks)
            if entries:
                linger.count(len(entries))
                waited, waiting_since = loop.time() - waiting_since, None
                lingering = len(entries) < free and waited < self.settings.linger_s
            await self._dispatch(entries)
            return False
        return step

    async def _keep(self, stop: asyncio.Event) -> bool:
        """Keep held entries alive, let go of handlers that hang, and claim what others
        left idle; every third of ``claim_idle_ms``."""
        s = self.settings
        await _wait(stop, s.claim_idle_ms / 3000)
        if stop.is_set():
            return True
        if self._held:
            await self.group.touch(s.consumer, sorted(self._held))
        free = self._free_events()
        for partition in self.store.partitions:
            if free <= 0:
                break
            claimed = await self.group.claim_idle(s.consumer, s.claim_idle_ms, free, partition)
            claimed = [e for e in claimed if e.ref not in self._held]
            if claimed:
                log.warning("%s claimed %d idle entries", s.group, len(claimed))
                await self._dispatch(claimed, redelivered=True)
                free = self._free_events()
        return False

    def _full_read(self) -> int:
        """The most one read takes: its batch, or what every slot can start."""
        s = self.settings
        return min(s.batch_size, s.concurrency * s.chunk_size)

    def _free_events(self) -> int:
        """How many entries to read now: what free slots can start at once. Reading more
        would let one consumer hoard work that an idle one could have started."""
        s = self.settings
        free = (s.concurrency - self._in_flight) * s.chunk_size - len(self._backlog)
        return min(s.batch_size, free)

    async def _dispatch(self, entries: list[Entry], redelivered: bool = False) -> None:
        if not entries:
            return
        if redelivered:
            entries = await self._drop_poison(entries)
        wanted = [e for e in entries if isinstance(e.event, self.settings.types)]
        skipped = [e for e in entries if not isinstance(e.event, self.settings.types)]
        if skipped:
            self._acknowledge_soon(skipped)
        self._held.update(e.ref for e in wanted)
        self._backlog.extend(wanted)
        self._start_ready()

    def _start_ready(self) -> None:
        size = self.settings.chunk_size
        while self._backlog and self._in_flight < self.settings.concurrency:
            chunk = [self._backlog.popleft() for _ in range(min(size, len(self._backlog)))]
            self._in_flight += 1
            task = asyncio.create_task(self._run_chunk(chunk))
            self._deadlines[task] = time.monotonic() + self.settings.handling_timeout_s
            self._track(task)

    def _track(self, task: asyncio.Task[None]) -> None:
        """Kept until done, and waited for at shutdown."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drop_poison(self, entries: list[Entry]) -> list[Entry]:
        limit = self.settings.max_deliveries
        counts = await self.group.deliveries(entries)
        healthy = []
        for entry in entries:
            deliveries = counts.get(entry.ref, 1)
            if deliveries <= limit:
                healthy.append(entry)
                continue
            reason = (f"{self.settings.group} could not finish {entry.event.type} "
                      f"#{entry.event.seq} in {deliveries} deliveries")
            log.error("dead-lettering entry %s of order %s: %s", entry.id,
                      entry.event.order_id, reason)
            await self.store.dead_letter(self.group, entry, reason)
            DEAD_LETTERS.labels(self.settings.group).inc()
        return healthy

    async def _watch(self, stop: asyncio.Event) -> None:
        """Cancels the handling of chunks past their deadline, every tenth of
        ``handling_timeout_s``: one watchdog, where every chunk armed and cancelled a timer
        of its own."""
        every_s = self.settings.handling_timeout_s / 10
        while not stop.is_set():
            await _wait(stop, every_s)
            now = time.monotonic()
            for task, deadline in list(self._deadlines.items()):
                if deadline < now and task not in self._overdue:
                    self._overdue.add(task)
                    task.cancel()

    async def _run_chunk(self, chunk: list[Entry]) -> None:
        handled = False
        try:
            handled = await self._handled(chunk)
        finally:
            if handled:
                self._acknowledge_soon(chunk)
            else:
                self._held.difference_update(e.ref for e in chunk)

    async def _handled(self, chunk: list[Entry]) -> bool:
        """Hands the chunk to the handler; whether it finished. Its slot is free again on
        return: the acknowledgement that follows need not hold it."""
        bind_events([e.event for e in chunk])  # this task's log lines name its order
        # Once a chunk, for its oldest entry (a stream id's first half is when Redis
        # appended it): one observation per entry cost the persister a tenth of its time.
        oldest = min(entry.id.ms for entry in chunk)
        self._waited.observe(max(0.0, time.time() - oldest / 1000))
        task = asyncio.current_task()
        assert task is not None
        try:
            await self.handle(chunk)
            return True
        except asyncio.CancelledError:
            if task not in self._overdue:
                # Stopping: left pending on purpose, this consumer or another one picks it
                # up again.
                raise
            task.uncancel()
            # Let go: no longer kept alive, so it is claimed once idle, here or elsewhere.
            log.error("%s gave up on %d events after %.0f s; left to be claimed",
                      self.settings.group, len(chunk), self.settings.handling_timeout_s)
        except Exception:
            log.exception("%s failed on %d events; left pending", self.settings.group, len(chunk))
        finally:
            self._deadlines.pop(task, None)
            self._overdue.discard(task)
            self._in_flight -= 1
            self._start_ready()
            self._slot_freed.set()
        return False

    def _acknowledge_soon(self, entries: list[Entry]) -> None:
        """Acknowledged in the round trip of the next read (a busy worker reads again
        within moments of finishing), or by a timer ``ACK_LINGER_S`` later, with whatever
        else finished meanwhile; kept alive until then. No task waits for it: with the
        watchdog, that took an entry handed over alone (as the executor takes orders) from
        26-29 µs of the worker's CPU to 15-16 (``bench.overheads``)."""
        if entries and not self._ack_timer:
            self._ack_timer = True
            self._track(asyncio.create_task(self._acknowledge_finished()))
        self._finished.extend(entries)

    async def _acknowledge_finished(self) -> None:
        await asyncio.sleep(ACK_LINGER_S)
        self._ack_timer = False
        entries, self._finished = self._finished, []
        if not entries:
            return  # a read took them
        try:
            await self.group.ack(entries)
        except (RedisError, RedisClusterException) as error:
            # Left pending: handled again once claimed, idempotently.
            BACKEND_ERRORS.labels("redis").inc()
            log.warning("%s could not acknowledge %d events (%s); left pending",
                        self.settings.group, len(entries), error)
        finally:
            self._held.difference_update(e.ref for e in entries)

    async def _wait_for_slot(self, stop: asyncio.Event) -> None:
        self._slot_freed.clear()
        stopped = asyncio.ensure_future(stop.wait())
        freed = asyncio.ensure_future(self._slot_freed.wait())
        await asyncio.wait({stopped, freed}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        freed.cancel()

    async def _finish_in_flight(self) -> None:
        if not self._tasks:
            return
        log.info("%s finishing %d in-flight tasks", self.settings.group, len(self._tasks))
        # Again while chunks that finish start their acknowledgement.
        deadline = time.monotonic() + self.settings.shutdown_timeout_s
        while self._tasks and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self._tasks), timeout=left)
        unfinished = set(self._tasks)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished)
            log.warning("%s handed back %d unfinished tasks", self.settings.group, len(unfinished))


class Linger:
    """How long a worker's linger lasts: ``most_s``, or less where the entries of the last
    round (from the start of the last linger to the read that ended it) came fast enough
    to fill a read sooner. Under a high rate a worker then handles a read's worth at a
    time, evenly, rather than every entry of ``most_s`` in one burst: at 1,000 orders/s
    the persister's second of events took both cores for about half a second."""

    def __init__(self, most_s: float, full_read: int) -> None:
        self.most_s, self.full_read = most_s, full_read
        self._began: float | None = None
        self._read = 0

    def count(self, entries: int) -> None:
        self._read += entries

    def begin(self, now: float) -> float:
        """The linger that begins ``now``, in seconds; a round begins with it."""
        wait = self.most_s
        if self._began is not None and self._read:
            per_s = self._read / max(now - self._began, 1e-6)
            wait = min(wait, self.full_read / per_s)
        self._began, self._read = now, 0
        return wait


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
