"""PostgreSQL's own counters for the database under test, for ``oee bench``: transactions
(committed and rolled back) and rows written (inserted, updated or deleted), from
``pg_stat_database``. That view counts no statements (``pg_stat_statements`` would, but only
when the server preloads it), so the bench reports transactions and rows, not statements.

Since PostgreSQL 15 a backend publishes its counters at most once a second while busy, and
one that goes idle with some unpublished publishes them 10 s later: a read right after a
run misses about its last second. But a backend also publishes as it exits. So the bench
reads the counters only around a system it starts and stops itself: before it starts, and
once its connections are gone (``read_once_gone``)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import psycopg

# PostgreSQL's PGSTAT_IDLE_INTERVAL (10 s), and a margin: by then everything is published.
FLUSH_S = 10.5

READ = """
SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted
FROM pg_stat_database WHERE datname = current_database()
"""


CLIENTS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
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


def grown_by(before: PgCounters, after: PgCounters) -> PgCounters:
    return PgCounters(after.transactions - before.transactions,
                      after.rows_written - before.rows_written)


async def clients(database_url: str) -> int:
    """The database's client connections, other than the one asking."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cursor = await conn.execute(CLIENTS)
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def read_once_gone(database_url: str, clients_before: int) -> PgCounters:
    """The counters once the database has no more client connections than
    ``clients_before`` and its rows written stay put: a backend leaves the activity view a
    moment before it publishes what it counted. At most ``FLUSH_S``, by when everything is
    published anyway."""
    deadline = time.monotonic() + FLUSH_S
    while time.monotonic() < deadline:
        # Another server's state, seen only by asking: polled.
        if await clients(database_url) <= clients_before:
            break
        await asyncio.sleep(0.05)
    counters = await pg_counters(database_url)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        again = await pg_counters(database_url)
        if again.rows_written == counters.rows_written:
            return again
        counters = again
    return counters
