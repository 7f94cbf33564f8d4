"""``oee audit``: check the invariants (services/cli/invariants.py) over the event log and
print a report; exit 1 on any violation.

On a live system it reads PostgreSQL in one snapshot (the log and the projection), the
simulated chain's landings, and the part of the stream the persister has acknowledged.
The order matters: the persister acknowledges a batch only after committing it, so reading
its acknowledged position first and opening the snapshot second guarantees that every
entry up to that position is in the snapshot; a missing one is a real loss. Without Redis
the chain and stream checks are skipped, with a note. With ``--from FILE`` it audits an
export offline, touching neither Redis nor PostgreSQL.

``accepted_endings`` is the audit of a load (``oee soak``, the fault tests): the orders it
was told were accepted, each judged by ``invariants.endings``.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import msgspec
import psycopg
from psycopg import sql
from redis.exceptions import RedisError, ResponseError

from services.cli import eventlog, jsonl
from services.cli.invariants import (
    INVARIANTS,
    Auditor,
    Endings,
    Landed,
    Report,
    deadline,
    endings,
)
from services.executor.chain import SimulatedChain
from shared import lifecycle
from shared.config import Settings
from shared.events import AnyEvent
from shared.stream import Entry, EventStore, Positions, StreamId

# The consumer group whose acknowledgements mean "recorded in PostgreSQL".
PERSISTER = "persister"
# Offenders listed per invariant in the text report (the JSON report lists all).
SHOWN = 50


class AuditOptions(msgspec.Struct, frozen=True, kw_only=True):
    window: eventlog.Window = eventlog.Window()
    as_json: bool = False
    source: Path | None = None


async def audit(settings: Settings, options: AuditOptions, out: TextIO) -> int:
    if options.source is not None:
        report = offline(settings, options.source, options.window)
    else:
        report = await live(settings, options.window)
    out.write(render_json(report) if options.as_json else render_text(report))
    return 0 if report.ok else 1


def offline(settings: Settings, path: Path, window: eventlog.Window) -> Report:
    """An export on its own: the log's invariants; nothing to compare it with."""
    by_order: dict[str, list[AnyEvent]] = defaultdict(list)
    for entry in jsonl.read(path):
        by_order[entry.event.order_id].append(entry.event)
    chosen = {o: events for o, events in by_order.items()
              if window.holds(min(e.at for e in events))}
    # An export knows nothing after its last event: open orders are judged as of then.
    now = max((e.at for events in chosen.values() for e in events), default=None)
    auditor = Auditor(now or datetime.now().astimezone(), deadline(settings))
    for order_id in sorted(chosen):
        auditor.order(order_id, chosen[order_id])
    auditor.report.skip("projection", "offline: an export holds no projection")
    auditor.report.skip("chain", "offline: no Redis")
    auditor.report.skip("stream", "offline: no Redis")
    return auditor.finish()


async def live(settings: Settings, window: eventlog.Window) -> Report:
    store = EventStore(settings)
    try:
        return await _live(settings, store, window)
    finally:
        await store.close()


async def _live(settings: Settings, store: EventStore, window: eventlog.Window) -> Report:
    offline_note: str | None = None
    try:
        horizon = await _recorded_until(store)
    except (RedisError, OSError) as error:
        offline_note, horizon = f"Redis unreachable ({error})", None
    async with eventlog.snapshot(settings.database_url) as conn:
        schema = await eventlog.live_schema(conn)  # the first read: the snapshot is taken
        cursor = await conn.execute("SELECT now()")
        row = await cursor.fetchone()
        assert row is not None
        auditor = Auditor(row[0], deadline(settings))
        held: dict[tuple[str, int], Entry] = {}
        if horizon is not None and offline_note is None:
            try:
                held = {(e.event.order_id, e.event.seq): e
                        async for e in _stream_until(store, horizon)}
            except (RedisError, OSError) as error:
                offline_note = f"Redis unreachable ({error})"
        rows = await _projection(conn, schema, window)
        ends: dict[str, list[AnyEvent]] = {}
        async for order_id, entries in _orders(conn, schema, window):
            state = auditor.order(order_id, [e.event for e in entries])
            auditor.projection(order_id, state, rows.pop(order_id, None))
            ends[order_id] = [e.event for e in entries if e.event.is_terminal]
            for entry in entries:
                if (found := held.pop((order_id, entry.event.seq), None)) is not None:
                    auditor.stream_entry(found, entry)
        for order_id, projected in sorted(rows.items()):
            auditor.projection(order_id, None, projected)
    for entry in sorted(held.values(), key=lambda e: e.id):
        if window.whole or window.holds(entry.event.at):
            auditor.stream_entry(entry, None)
    if offline_note is not None:
        auditor.report.skip("chain", offline_note)
        auditor.report.skip("stream", offline_note)
    else:
        if horizon is None:
            auditor.report.skip("stream", "no persister group on the stream yet")
        await _landings(auditor, SimulatedChain(store.redis, settings), ends,
                        settings.max_attempts)
    return auditor.finish()


async def _recorded_until(store: EventStore) -> Positions | None:
    """Per partition, the last entry the persister has acknowledged everything up to, or
    None when it has no group yet."""
    group = store.group(PERSISTER)
    ids = []
    for stream in group.streams:
        try:
            groups: Any = await store.redis.xinfo_groups(stream)
        except ResponseError:  # no stream yet
            return None
        info = next((i for i in groups if _text(i["name"]) == group.name), None)
        if info is None:
            return None
        until = StreamId.parse(info["last-delivered-id"])
        if info["pending"]:
            summary: Any = await store.redis.xpending(stream, group.name)
            if summary["min"] is not None:  # everything before its oldest pending
                until = _before(StreamId.parse(summary["min"]))
        ids.append(until)
    return Positions.of(ids)


def _before(stream_id: StreamId) -> StreamId:
    if stream_id.seq:
        return StreamId(stream_id.ms, stream_id.seq - 1)
    return StreamId(stream_id.ms - 1, 2**64 - 1)


async def _stream_until(store: EventStore, until: Positions) -> AsyncIterator[Entry]:
    async for entry in store.everything_after(until=until, page=10_000):
        yield entry


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _projection(conn: eventlog.Connection, schema: str, window: eventlog.Window,
                      ) -> dict[str, tuple[str, int]]:
    query = sql.SQL("SELECT order_id, status, last_seq FROM {}.orders").format(
        sql.Identifier(schema))
    if not window.whole:
        query += sql.SQL(
            " WHERE order_id IN ({}) OR ((%(since)s::timestamptz IS NULL OR created_at >= "
            "%(since)s) AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s))"
        ).format(eventlog.chosen_orders(schema, window))
    cursor = await conn.execute(query, eventlog.params(window))
    return {str(r[0]): (str(r[1]), int(r[2])) for r in await cursor.fetchall()}


async def _orders(conn: eventlog.Connection, schema: str, window: eventlog.Window,
                  ) -> AsyncIterator[tuple[str, list[Entry]]]:
    """Each order with its events, one order at a time (the log is read by order)."""
    current: list[Entry] = []
    async for chunk in eventlog.entries(conn, schema, window, "order"):
        for entry in chunk:
            if current and current[0].event.order_id != entry.event.order_id:
                yield current[0].event.order_id, current
                current = []
            current.append(entry)
    if current:
        yield current[0].event.order_id, current


async def _landings(auditor: Auditor, chain: SimulatedChain, ends: dict[str, list[AnyEvent]],
                    max_attempts: int, chunk: int = 1000) -> None:
    order_ids = sorted(ends)
    for start in range(0, len(order_ids), chunk):
        some = order_ids[start : start + chunk]
        for order_id, found in (await chain.landings(some)).items():
            auditor.landings(order_id, ends[order_id],
                             [Landed(x.attempt, x.signature, x.amount_out) for x in found])


async def accepted_endings(settings: Settings, order_ids: Sequence[str], *,
                           deadlines: Mapping[str, float] | None = None,
                           wait_s: float = 120.0) -> Endings:
    """How these accepted orders ended, once each has a terminal status in PostgreSQL (or
    after ``wait_s``): their statuses and terminal events in PostgreSQL, the terminal
    events the log still holds, and their executions on the simulated chain.
    ``deadlines``: each waiting order's (epoch seconds); one still waiting before it is
    not lost."""
    ids = list(order_ids)
    until = time.monotonic() + wait_s
    async with await psycopg.AsyncConnection.connect(settings.database_url,
                                                     autocommit=True) as conn:
        while True:
            cursor = await conn.execute(
                "SELECT count(*) FROM orders WHERE order_id = ANY(%s) AND status = ANY(%s)",
                (ids, sorted(lifecycle.TERMINAL)))
            row = await cursor.fetchone()
            if (row[0] if row else 0) == len(ids) or time.monotonic() > until:
                break
            # Other processes' progress, seen only in PostgreSQL: polled.
            await asyncio.sleep(0.2)
        cursor = await conn.execute(
            "SELECT o.order_id, o.status, (SELECT count(*) FROM events e"
            " WHERE e.order_id = o.order_id AND e.type = ANY(%s))"
            " FROM orders o WHERE o.order_id = ANY(%s)",
            (sorted(lifecycle.TERMINAL_TYPES), ids))
        rows = await cursor.fetchall()
    store = EventStore(settings)
    try:
        logged_ends: dict[str, int] = defaultdict(int)
        async for entry in store.everything_after():
            if entry.event.is_terminal:
                logged_ends[entry.event.order_id] += 1
        executions = await SimulatedChain(store.redis, settings).executions(ids)
    finally:
        await store.close()
    return endings(ids, {str(r[0]): str(r[1]) for r in rows},
                   {str(r[0]): int(r[2]) for r in rows}, logged_ends, executions,
                   deadlines or {}, time.time())


def render_json(report: Report) -> str:
    body = msgspec.to_builtins(report)
    assert isinstance(body, dict)
    return msgspec.json.encode({"ok": report.ok, **body}).decode() + "\n"


def render_text(report: Report) -> str:
    lines = [f"audit of {report.orders:,} orders, {report.events:,} events"]
    for name in INVARIANTS:
        tally = report.invariants[name]
        if tally.skipped:
            lines.append(f"  {name:<11} skipped: {tally.note}")
            continue
        verdict = f"{tally.violations:,} violation(s)" if tally.violations else "ok"
        note = f"  ({tally.note})" if tally.note else ""
        lines.append(f"  {name:<11} {tally.checked:>9,} checked  {verdict}{note}")
    by_invariant: dict[str, list[str]] = defaultdict(list)
    for v in report.violations:
        by_invariant[v.invariant].append(f"    {v.order_id}  {v.detail}")
    for name in INVARIANTS:
        offenders = by_invariant.get(name)
        if offenders:
            lines.append(f"{name}:")
            lines += offenders[:SHOWN]
            if len(offenders) > SHOWN:
                lines.append(f"    … and {len(offenders) - SHOWN:,} more (--json lists all)")
    lines.append("every invariant holds" if report.ok
                 else f"{len(report.violations):,} violation(s)")
    return "\n".join(lines) + "\n"
