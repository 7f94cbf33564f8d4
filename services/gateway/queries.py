"""Reads from the PostgreSQL projection and audit log.

Connections are kept for reuse, but each request that finds none idle connects by itself:
while PostgreSQL is down a read fails at once (a 503), and the first read after it is back
succeeds; no background reconnection with a growing backoff stands in between.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from shared.events import AnyEvent, decode
from shared.stream import StreamId

Connection = psycopg.AsyncConnection[DictRow]


class ReadModel:
    def __init__(self, database_url: str, keep: int = 10) -> None:
        self.database_url = database_url
        self.keep = keep
        self.idle: list[Connection] = []

    async def close(self) -> None:
        while self.idle:
            await self.idle.pop().close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        conn = self.idle.pop() if self.idle else await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True, connect_timeout=2, row_factory=dict_row
        )
        try:
            yield conn
        except psycopg.OperationalError:
            await conn.close()
            raise
        if conn.closed or len(self.idle) >= self.keep:
            await conn.close()
        else:
            self.idle.append(conn)

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute("SELECT 1")

    async def events(self, order_id: str) -> list[AnyEvent]:
        async with self.connection() as conn:
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
        async with self.connection() as conn:
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
        async with self.connection() as conn:
            cursor = await conn.execute(
                "SELECT * FROM orders"
                " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
                " AND (%(account)s::text IS NULL OR account = %(account)s)"
                " AND (%(before)s::text IS NULL OR order_id < %(before)s)"
                " ORDER BY order_id DESC LIMIT %(limit)s",
                {"status": status, "account": account, "before": before, "limit": limit},
            )
            return list(await cursor.fetchall())
