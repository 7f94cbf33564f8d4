"""Reads from the PostgreSQL projection and audit log (see shared.pg_pool for how its
connections behave while PostgreSQL is down)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from shared.events import AnyEvent, decode
from shared.pg_pool import pool
from shared.stream import StreamId

Connection = psycopg.AsyncConnection[DictRow]


class ReadModel:
    def __init__(self, database_url: str, size: int = 10) -> None:
        self.pool: AsyncConnectionPool[Connection] = pool(database_url, size, "oee-read-model",
                                                         row_factory=dict_row)

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")

    async def events(self, order_id: str) -> list[AnyEvent]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT data::text AS data FROM events WHERE order_id = %s ORDER BY seq",
                (order_id,),
            )
            return [decode(row["data"]) for row in await cursor.fetchall()]

    async def events_after(self, partition: int, after: StreamId, account: str | None,
                           limit: int, until: StreamId | None = None,
                           ) -> list[tuple[StreamId, AnyEvent]]:
        """Events of one log partition recorded after ``after`` (and before ``until``) in
        log order, with their place there; ``account``: only that account's orders'."""
        end = until or StreamId(2**63 - 1, 2**63 - 1)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT e.stream_ms, e.stream_seq, e.data::text AS data FROM events e"
                " WHERE e.stream_partition = %(partition)s"
                " AND (e.stream_ms, e.stream_seq) > (%(ms)s, %(seq)s)"
                " AND (e.stream_ms, e.stream_seq) < (%(end_ms)s, %(end_seq)s)"
                " AND (%(account)s::text IS NULL OR e.order_id IN"
                "      (SELECT order_id FROM orders WHERE account = %(account)s))"
                " ORDER BY e.stream_ms, e.stream_seq LIMIT %(limit)s",
                {"partition": partition, "ms": after.ms, "seq": after.seq, "end_ms": end.ms,
                 "end_seq": end.seq, "account": account, "limit": limit},
            )
            return [(StreamId(r["stream_ms"], r["stream_seq"]), decode(r["data"]))
                    for r in await cursor.fetchall()]

    async def orders(
        self, status: str | None, before: str | None, limit: int, account: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest first; order ids sort by creation time, so ``before`` is the cursor.
        ``account`` None means every account's (an operator's view)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT * FROM orders"
                " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
                " AND (%(account)s::text IS NULL OR account = %(account)s)"
                " AND (%(before)s::text IS NULL OR order_id < %(before)s)"
                " ORDER BY order_id DESC LIMIT %(limit)s",
                {"status": status, "account": account, "before": before, "limit": limit},
            )
            return list(await cursor.fetchall())
