"""Reads from the PostgreSQL projection and audit log."""

from __future__ import annotations

from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from shared.events import AnyEvent, decode


class ReadModel:
    def __init__(self, database_url: str) -> None:
        self.pool = AsyncConnectionPool(
            database_url, min_size=1, max_size=10, open=False, timeout=5,
            kwargs={"row_factory": dict_row},
            # A connection is checked before use, so a PostgreSQL restart costs no request.
            check=AsyncConnectionPool.check_connection,
        )

    async def open(self) -> None:
        # Not waiting: the gateway starts, and says it is not ready, while PostgreSQL is away.
        await self.pool.open(wait=False)

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
            return [decode(row["data"]) for row in await cursor.fetchall()]  # type: ignore[call-overload]

    async def orders(
        self, status: str | None, before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first; order ids sort by creation time, so ``before`` is the cursor."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT * FROM orders"
                " WHERE (%(status)s::text IS NULL OR status = %(status)s)"
                " AND (%(before)s::text IS NULL OR order_id < %(before)s)"
                " ORDER BY order_id DESC LIMIT %(limit)s",
                {"status": status, "before": before, "limit": limit},
            )
            return list(await cursor.fetchall())  # type: ignore[arg-type]
