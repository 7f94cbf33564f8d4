"""The PostgreSQL event log as the audit tools read it: whole orders, from one snapshot.

A snapshot is a REPEATABLE READ transaction: the events and the orders projection read in
it are one consistent moment of a live system (the persister writes both in one
transaction), however long the reading takes, and nothing has to stop.

A time window selects orders, not events: an order is in [since, until) when its first
event is, and then all of its events are read, so a window audits and replays whole
stories.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import psycopg
from psycopg import sql

from shared.events import decode
from shared.stream import Entry, StreamId

Connection = psycopg.AsyncConnection[Any]


class Window(msgspec.Struct, frozen=True):
    since: datetime | None = None
    until: datetime | None = None

    @property
    def whole(self) -> bool:
        return self.since is None and self.until is None

    def holds(self, at: datetime) -> bool:
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


def parse_time(text: str) -> datetime:
    """RFC 3339 (``2026-11-27T10:00:00Z``) or a date; without a zone, UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an RFC 3339 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextlib.asynccontextmanager
async def snapshot(database_url: str, *, of: str | None = None) -> AsyncIterator[Connection]:
    """A connection inside one REPEATABLE READ transaction, rolled back at the end (readers
    write nothing). With ``of``, it reads the snapshot another transaction exported
    (``export_snapshot``): two processes then read the very same moment."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        await conn.set_read_only(True)
        async with conn.transaction(force_rollback=True):
            if of is not None:
                await conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(of)))
            yield conn


async def export_snapshot(conn: Connection) -> str:
    """An id other transactions can read this one's snapshot by, while it stays open."""
    cursor = await conn.execute("SELECT pg_export_snapshot()")
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def live_schema(conn: Connection) -> str:
    """The schema the system's tables are in (the connection's first on its search path)."""
    cursor = await conn.execute("SELECT current_schema()")
    row = await cursor.fetchone()
    if row is None or row[0] is None:
        raise RuntimeError("no schema on the search path")
    return str(row[0])


def chosen_orders(schema: str, window: Window) -> sql.Composable:
    """A subquery of the ids of the orders in ``window`` (params ``since``, ``until``)."""
    return sql.SQL(
        "SELECT order_id FROM {}.events GROUP BY order_id"
        " HAVING (%(since)s::timestamptz IS NULL OR min(at) >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR min(at) < %(until)s)"
    ).format(sql.Identifier(schema))


def params(window: Window) -> dict[str, Any]:
    return {"since": window.since, "until": window.until}


class Part(msgspec.Struct, frozen=True):
    """One of ``of`` disjoint shares of the orders, so that processes can share a log."""

    index: int
    of: int

    def holds(self, order_id: str) -> bool:
        return int(hashlib.md5(order_id.encode()).hexdigest()[:8], 16) % self.of == self.index


async def count(conn: Connection, schema: str, window: Window) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.events").format(sql.Identifier(schema))
    if not window.whole:
        query += sql.SQL(" WHERE order_id IN ({})").format(chosen_orders(schema, window))
    cursor = await conn.execute(query, params(window))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def rows(conn: Connection, schema: str, window: Window,
               by: Literal["stream", "order"], batch: int = 5000, part: Part | None = None,
               ) -> AsyncIterator[list[tuple[int, int, str]]]:
    """The stored rows (stream ms, stream seq, JSON) in stream order, or by order and seq,
    in batches, through a server-side cursor: memory stays flat on any log."""
    order = "stream_ms, stream_seq" if by == "stream" else "order_id, seq"
    query = sql.SQL("SELECT stream_ms, stream_seq, data::text FROM {}.events WHERE true").format(
        sql.Identifier(schema))
    if not window.whole:
        query += sql.SQL(" AND order_id IN ({})").format(chosen_orders(schema, window))
    if part is not None:
        # The same share as Part.holds.
        query += sql.SQL(" AND ('x' || left(md5(order_id), 8))::bit(32)::bigint %% %(of)s"
                         " = %(index)s")
    query += sql.SQL(" ORDER BY " + order)
    args = params(window) | ({"of": part.of, "index": part.index} if part else {})
    async with conn.cursor(name="oee_event_log") as cursor:
        await cursor.execute(query, args)
        while chunk := await cursor.fetchmany(batch):
            yield [(int(ms), int(seq), str(data)) for ms, seq, data in chunk]


async def entries(conn: Connection, schema: str, window: Window,
                  by: Literal["stream", "order"], batch: int = 5000, part: Part | None = None,
                  ) -> AsyncIterator[list[Entry]]:
    """As ``rows``, decoded (and so upcast to the current version of each event)."""
    async for chunk in rows(conn, schema, window, by, batch, part):
        yield [Entry(StreamId(ms, seq), decode(data)) for ms, seq, data in chunk]
