"""PostgreSQL's own counters for the database under test, for ``oee bench``: transactions
(committed and rolled back) and rows written (inserted, updated or deleted), from
``pg_stat_database``. That view counts no statements (``pg_stat_statements`` would, but only
when the server preloads it), so the bench reports transactions and rows, not statements.

Since PostgreSQL 15 a backend publishes its counters at most once a second while busy, and
one that goes idle with some unpublished publishes them 10 s later: a read right after a
run misses about its last second. So a read that must include some work waits until
``FLUSH_S`` after that work ended (``read_after``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import psycopg

# PostgreSQL's PGSTAT_IDLE_INTERVAL (10 s), and a margin.
FLUSH_S = 10.5

READ = """
SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted
FROM pg_stat_database WHERE datname = current_database()
"""


@dataclass(frozen=True)
class PgCounters:
    transactions: int
    rows_written: int


async def pg_counters(database_url: str) -> PgCounters:
    """The database's counters now. The read is a transaction of its own, counted by the
    next read: the bench's own reads are a few transactions a run."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cursor = await conn.execute(READ)
        row = await cursor.fetchone()
    assert row is not None, "pg_stat_database has a row for every database"
    return PgCounters(int(row[0]), int(row[1]))


async def read_after(database_url: str, ended: float) -> PgCounters:
    """The counters once everything done before ``ended`` (``time.monotonic()``) is
    published."""
    await asyncio.sleep(max(0.0, ended + FLUSH_S - time.monotonic()))
    return await pg_counters(database_url)


def grown_by(before: PgCounters, after: PgCounters) -> PgCounters:
    return PgCounters(after.transactions - before.transactions,
                      after.rows_written - before.rows_written)
