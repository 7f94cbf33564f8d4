"""The loop every consuming service runs: read a batch, hand it over, acknowledge it.

It reads its own pending entries first (what a previous run of this consumer left
unacknowledged), then new ones, and now and then claims entries another consumer left idle.
The handler knows nothing of the stream: it gets events of the types it asked for, in
chunks of ``chunk_size``, and returns when they are done; only then are they acknowledged.
Other types are acknowledged at once. At most ``concurrency`` chunks are in hand at once,
so a worker never reads more than it can start on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from shared.events import Event
from shared.stream import Entry, EventStore, StreamId

log = logging.getLogger(__name__)

Handler = Callable[[Sequence[Entry]], Awaitable[None]]


def consumer_name(service: str) -> str:
    return os.environ.get("OEE_CONSUMER") or f"{service}-{socket.gethostname()}-{os.getpid()}"


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
    shutdown_timeout_s: float = 30.0


class Worker:
    def __init__(self, store: EventStore, settings: WorkerSettings, handle: Handler) -> None:
        self.store = store
        self.settings = settings
        self.handle = handle
        self._in_flight = 0
        self._slot_freed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_claim = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        await self.store.ensure_group(s.group)
        log.info("%s reading group %s as %s", s.group, self.store.stream, s.consumer)
        await self._drain_own_pending(stop)
        while not stop.is_set():
            free = self._free_events()
            if free <= 0:
                await self._wait_for_slot(stop)
                continue
            entries = await self._claim_if_due(free) or await self.store.read_group(
                s.group, s.consumer, free
            )
            await self._dispatch(entries)
        await self._finish_in_flight()

    async def _drain_own_pending(self, stop: asyncio.Event) -> None:
        after = StreamId(0, 0)
        while not stop.is_set():
            while self._free_events() <= 0:
                await self._wait_for_slot(stop)
            entries = await self.store.read_group(
                self.settings.group, self.settings.consumer, self._free_events(), pending=after
            )
            if not entries:
                return
            log.info("%s resuming %d pending entries", self.settings.group, len(entries))
            after = entries[-1].id
            await self._dispatch(entries)

    def _free_events(self) -> int:
        s = self.settings
        return min(s.batch_size, (s.concurrency - self._in_flight) * s.chunk_size)

    async def _claim_if_due(self, free: int) -> list[Entry]:
        now = time.monotonic()
        if now < self._next_claim:
            return []
        self._next_claim = now + self.settings.claim_idle_ms / 2000
        entries = await self.store.claim_idle(
            self.settings.group, self.settings.consumer, self.settings.claim_idle_ms, free
        )
        if entries:
            log.warning("%s claimed %d idle entries", self.settings.group, len(entries))
        return entries

    async def _dispatch(self, entries: list[Entry]) -> None:
        wanted = [e for e in entries if isinstance(e.event, self.settings.types)]
        skipped = [e.id for e in entries if not isinstance(e.event, self.settings.types)]
        await self.store.ack(self.settings.group, skipped)
        size = self.settings.chunk_size
        for start in range(0, len(wanted), size):
            chunk = wanted[start : start + size]
            self._in_flight += 1
            task = asyncio.create_task(self._run_chunk(chunk))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_chunk(self, chunk: list[Entry]) -> None:
        try:
            await self.handle(chunk)
            await self.store.ack(self.settings.group, [e.id for e in chunk])
        except asyncio.CancelledError:
            # Left pending on purpose: this consumer or another one picks it up again.
            raise
        except Exception:
            log.exception("%s failed on %d events; left pending", self.settings.group, len(chunk))
        finally:
            self._in_flight -= 1
            self._slot_freed.set()

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
        _, unfinished = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_timeout_s)
        for task in unfinished:
            task.cancel()
        if unfinished:
            await asyncio.wait(unfinished)
            log.warning("%s handed back %d unfinished tasks", self.settings.group, len(unfinished))
