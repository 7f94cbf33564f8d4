"""The persister: consume every event, record each batch in PostgreSQL in one transaction,
and only then acknowledge it. While PostgreSQL is away it backs off and keeps the batch.
Once a finished order is recorded, its index in Redis may expire."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Sequence

import psycopg
from redis.exceptions import RedisError
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    wait_exponential,
)

from services.persister.records import record
from shared import tracing
from shared.config import Settings
from shared.events import EVENT_TYPES
from shared.metrics import BACKEND_ERRORS, STATUSES_REACHED
from shared.stream import Entry, EventStore
from shared.worker import Worker, worker_settings

log = logging.getLogger("oee.persister")

# How long the events that follow a first one wait to be recorded with it, in one
# transaction: clients follow orders through the log, not through PostgreSQL, so the
# projection may trail the log by this much. A transaction's own cost, here and in
# PostgreSQL, was most of what the persister spent at light load.
PERSIST_LINGER_S = 1.0


class Recorder:
    """Holds one connection and reopens it when PostgreSQL comes back."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.conn: psycopg.AsyncConnection[object] | None = None

    async def record(self, entries: Sequence[Entry]) -> None:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(psycopg.OperationalError),
            wait=wait_exponential(multiplier=0.1, max=5),
            before_sleep=before_sleep_log(log, logging.WARNING),
        ):
            with attempt:
                if self.conn is None or self.conn.closed:
                    self.conn = await psycopg.AsyncConnection.connect(self.database_url)
                try:
                    await record(self.conn, entries)
                except psycopg.OperationalError:
                    BACKEND_ERRORS.labels("postgres").inc()
                    await self.close()
                    raise

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None


async def main(settings: Settings, stop: asyncio.Event) -> None:
    store = EventStore(settings)
    recorder = Recorder(settings.database_url)

    activity = asyncio.Event()
    traced = tracing.Consumer(store, "persister")

    async def handle(entries: Sequence[Entry]) -> None:
        with traced.endings("persist", entries):
            await recorder.record(entries)
        reached = Counter(e.event.status for e in entries if e.event.status is not None)
        for status, count in reached.items():
            STATUSES_REACHED.labels(status).inc(count)
        await store.recorded([e.event.order_id for e in entries if e.event.is_terminal])
        activity.set()

    worker = Worker(
        store,
        # One batch at a time: a single connection, and batches land in stream order.
        worker_settings(
            settings, "persister", EVENT_TYPES,
            batch_size=settings.batch_size * 5, chunk_size=settings.batch_size * 5,
            concurrency=1, linger_s=PERSIST_LINGER_S,
        ),
        handle,
    )
    trimming = asyncio.create_task(
        trim_periodically(store, settings.stream_retention_s, stop, activity))
    try:
        await worker.run(stop)
    finally:
        trimming.cancel()
        await recorder.close()
        await store.close()


async def trim_periodically(store: EventStore, retention_s: float, stop: asyncio.Event,
                            activity: asyncio.Event | None = None, every_s: float = 1.0,
                            idle_every_s: float = 30.0) -> None:
    """Keeps Redis memory bounded: the log and the queues are trimmed behind the slowest
    group, every second while events arrive (``activity``: the persister recorded some);
    while none do, every ``idle_every_s`` only, so an idle system stays quiet."""
    last = 0.0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        now = time.monotonic()
        if activity is not None and not activity.is_set() and now - last < idle_every_s:
            continue
        last = now
        if activity is not None:
            activity.clear()
        try:
            await store.trim(retention_s)
        except RedisError as error:
            log.warning("could not trim the stream: %s", error)
        except Exception:
            # A bug here must not stop trimming for good, silently, as it once did.
            log.exception("trimming the stream failed; trying again")
