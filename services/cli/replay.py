"""``oee replay``: rebuild the orders projection from the event log into a fresh schema,
and with ``--verify`` compare it with the live one.

The rebuild calls the persister's own ``record`` with the connection's search path set to
the fresh schema, so a replay and the persister cannot project differently. The log is read
from one REPEATABLE READ snapshot, and the live projection is compared in that same
snapshot, while the system keeps running.

The work is shared by ``jobs`` processes, each rebuilding a disjoint share of the orders:
decoding and projecting are Python work, and one process cannot keep up with PostgreSQL.
Each reads the snapshot the parent exported, so all of them see the same moment. Without
``--into`` the rebuilt schema is dropped at the end; with it, the schema is kept.

With ``--from FILE`` the events come from an export instead, and ``--verify`` checks the
live projection against it: orders the live log has moved past since the export, and
orders the export does not hold, are left out of the comparison.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import secrets
import sys
import time
from collections.abc import AsyncIterator, Iterable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TextIO

import msgspec
import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from services.cli import eventlog, jsonl
from services.cli.compare import differences, summary
from services.persister.records import record
from shared.config import Settings
from shared.db import MIGRATIONS
from shared.stream import Entry

Connection = eventlog.Connection


def default_jobs() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class ReplayOptions(msgspec.Struct, frozen=True, kw_only=True):
    into: str | None = None
    replace: bool = False
    verify: bool = False
    source: Path | None = None
    progress: bool = True
    batch: int = 5000
    jobs: int = msgspec.field(default_factory=default_jobs)


class Rebuilt(msgspec.Struct, frozen=True):
    events: int
    orders: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class ReplayError(Exception):
    """The replay cannot run (a schema that exists, a bad file, a job that failed)."""


class Job(msgspec.Struct, frozen=True):
    """What one process rebuilds: its share of the orders, from the log or a file."""

    database_url: str
    snapshot: str
    live: str
    target: str
    source: str | None
    part: eventlog.Part
    batch: int


async def replay(settings: Settings, options: ReplayOptions, out: TextIO, err: TextIO) -> int:
    """0 when rebuilt (and, with ``verify``, identical); 1 when the projections differ;
    2 when the replay could not run."""
    url = settings.database_url
    target = options.into or f"oee_replay_{secrets.token_hex(4)}"
    try:
        live = await _fresh_schema(url, target, options.replace)
    except ReplayError as problem:
        err.write(f"oee replay: {problem}\n")
        return 2
    try:
        async with eventlog.snapshot(url) as conn:
            await eventlog.live_schema(conn)  # the first read: the snapshot is taken here
            jobs = [Job(url, await eventlog.export_snapshot(conn), live, target,
                        str(options.source) if options.source else None,
                        eventlog.Part(i, options.jobs), options.batch)
                    for i in range(options.jobs)]
            total = (_lines(options.source) if options.source
                     else await eventlog.count(conn, live, eventlog.Window()))
            rebuilt = await _rebuild(jobs, total, options.progress, err)
            where = f"into schema {target}" if options.into else "(not kept: no --into)"
            out.write(f"replayed {rebuilt.events:,} events of {rebuilt.orders:,} orders "
                      f"{where} in {rebuilt.seconds:.2f} s ({rebuilt.rate:,.0f} events/s, "
                      f"{options.jobs} job(s))\n")
            if not options.verify:
                return 0
            return await _verify(conn, url, live, target, options.source is not None, out)
    except (ReplayError, jsonl.FormatError, OSError) as problem:
        err.write(f"oee replay: {problem}\n")
        return 2
    finally:
        if options.into is None:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(target)))


async def _fresh_schema(url: str, target: str, replace: bool) -> str:
    """Creates ``target`` with the migrated tables in it; returns the live schema."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        live = await eventlog.live_schema(conn)
        if target == live or target.startswith("pg_") or target == "information_schema":
            raise ReplayError(f"will not replay into {target}: choose a new schema name")
        cursor = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (target,))
        if await cursor.fetchone():
            if not replace:
                raise ReplayError(f"schema {target} exists; pass --replace to drop it first")
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(target)))
        async with conn.transaction():
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(target)))
            # The migrations name their tables unqualified: they create them in the fresh
            # schema when it alone is on the search path.
            await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(
                sql.Identifier(target)))
            for migration in MIGRATIONS:
                await conn.execute(migration)
        return live


def _lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(1 for text in file if text.strip())


async def _rebuild(jobs: list[Job], total: int, show: bool, err: TextIO) -> Rebuilt:
    """Runs the jobs in their own processes, showing their progress; raises ReplayError
    if any fails."""
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    started = time.perf_counter()
    processes = [context.Process(target=work, args=(job, messages), daemon=True)
                 for job in jobs]
    for process in processes:
        process.start()
    events = orders = finished = 0
    progress = Progress(
        TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=Console(file=err), disable=not show, transient=False,
    )
    try:
        with progress:
            task = progress.add_task("replay", total=total, rate="")
            while finished < len(jobs):
                try:
                    kind, *facts = await asyncio.to_thread(messages.get, True, 0.2)
                except queue.Empty:
                    _check_alive(processes)
                    continue
                if kind == "error":
                    raise ReplayError(f"job {facts[0]} failed: {facts[1]}")
                if kind == "done":
                    finished += 1
                    continue
                events += facts[0]
                orders += facts[1]
                rate = events / max(time.perf_counter() - started, 1e-9)
                progress.update(task, advance=facts[0], rate=f"{rate:,.0f}/s")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    return Rebuilt(events, orders, time.perf_counter() - started)


def _check_alive(processes: Iterable[BaseProcess]) -> None:
    for process in processes:
        if process.exitcode not in (None, 0):
            raise ReplayError(f"a job ended with exit code {process.exitcode}")


def work(job: Job, messages: Any) -> None:
    """One process's share of the rebuild; reports ("progress", events, new orders),
    then ("done",), or ("error", part, why)."""
    try:
        asyncio.run(_work(job, messages))
    except BaseException as error:
        messages.put(("error", job.part.index, f"{type(error).__name__}: {error}"))
        sys.exit(1)
    messages.put(("done",))


async def _work(job: Job, messages: Any) -> None:
    async with await psycopg.AsyncConnection.connect(job.database_url, autocommit=True) \
            as writer:
        # The persister's statements name their tables unqualified: with the fresh schema
        # alone on the search path they write there.
        await writer.execute(sql.SQL("SET search_path TO {}").format(
            sql.Identifier(job.target)))
        # A rebuild can be done again: no need to wait for each batch to reach the disk.
        await writer.execute("SET synchronous_commit TO off")
        seen: set[str] = set()
        async with _batches(job) as batches:
            # The next batch is read and decoded while this one is written.
            upcoming = asyncio.ensure_future(_next(batches))
            try:
                while (batch := await upcoming) is not None:
                    upcoming = asyncio.ensure_future(_next(batches))
                    await record(writer, batch)
                    new = {e.event.order_id for e in batch} - seen
                    seen |= new
                    messages.put(("progress", len(batch), len(new)))
            finally:
                upcoming.cancel()


@contextlib.asynccontextmanager
async def _batches(job: Job) -> AsyncIterator[AsyncIterator[list[Entry]]]:
    if job.source is not None:
        yield _chunks(list(jsonl.read(Path(job.source), job.part.holds)), job.batch)
        return
    async with eventlog.snapshot(job.database_url, of=job.snapshot) as reader:
        yield eventlog.entries(reader, job.live, eventlog.Window(), "stream", job.batch,
                               job.part)


async def _next(batches: AsyncIterator[list[Entry]]) -> list[Entry] | None:
    return await anext(batches, None)


async def _chunks(loaded: list[Entry], size: int) -> AsyncIterator[list[Entry]]:
    for start in range(0, len(loaded), size):
        yield loaded[start : start + size]


async def _verify(conn: Connection, url: str, live: str, target: str, from_file: bool,
                  out: TextIO) -> int:
    """The live projection, read in the snapshot, against the rebuilt one."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as fresh:
        columns, rebuilt = await _orders(fresh, target, None)
        rebuilt_seqs = await _seqs(fresh, target, rebuilt if from_file else None)
    wanted = set(rebuilt) if from_file else None
    live_columns, current = await _orders(conn, live, wanted)
    if live_columns != columns:
        out.write(f"the projections have different columns: live {live_columns}, "
                  f"rebuilt {columns}\n")
        return 1
    left_out = 0
    if from_file:
        live_seqs = await _seqs(conn, live, rebuilt)
        for order_id, seqs in live_seqs.items():
            if seqs - rebuilt_seqs.get(order_id, set()):
                left_out += 1
                rebuilt.pop(order_id, None)
                current.pop(order_id, None)
    found = differences(columns, current, rebuilt)
    compared = len(current.keys() | rebuilt.keys())
    skipped = (f"; {left_out:,} left out: the live log has events of theirs the export "
               f"does not" if left_out else "")
    if not found:
        out.write(f"verified: the live projection and the rebuilt one are identical "
                  f"({compared:,} orders{skipped})\n")
        return 0
    out.write(f"the live projection differs from the rebuilt one ({compared:,} orders "
              f"compared{skipped}):\n")
    out.writelines(f"  {line}\n" for line in summary(found))
    return 1


async def _orders(conn: Connection, schema: str, wanted: Iterable[str] | None,
                  ) -> tuple[list[str], dict[str, tuple[Any, ...]]]:
    """The columns of ``schema``.orders, and its rows by order id."""
    query = sql.SQL("SELECT * FROM {}.orders").format(sql.Identifier(schema))
    args: tuple[Any, ...] = ()
    if wanted is not None:
        query += sql.SQL(" WHERE order_id = ANY(%s)")
        args = (list(wanted),)
    cursor = await conn.execute(query, args)
    names = [column.name for column in cursor.description or ()]
    key = names.index("order_id")
    return names, {str(row[key]): tuple(row) for row in await cursor.fetchall()}


async def _seqs(conn: Connection, schema: str, wanted: Iterable[str] | None,
                ) -> dict[str, set[int]]:
    """Each order's seqs in ``schema``.events (of the ``wanted`` orders only, if given)."""
    if wanted is None:
        return {}
    cursor = await conn.execute(sql.SQL(
        "SELECT order_id, array_agg(seq) FROM {}.events WHERE order_id = ANY(%s)"
        " GROUP BY order_id").format(sql.Identifier(schema)), (list(wanted),))
    return {str(row[0]): set(row[1]) for row in await cursor.fetchall()}
