"""The PostgreSQL schema (the audit log and the orders projection) and its migration."""

from __future__ import annotations

import logging

import psycopg

log = logging.getLogger(__name__)

# Append-only: a migration is never edited once released, only followed by another.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        order_id    text        NOT NULL,
        seq         integer     NOT NULL,
        event_id    uuid        NOT NULL UNIQUE,
        type        text        NOT NULL,
        at          timestamptz NOT NULL,
        -- The stream id, as the two integers it is made of, so it sorts correctly.
        stream_ms   bigint      NOT NULL,
        stream_seq  bigint      NOT NULL,
        data        jsonb       NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (order_id, seq)
    );
    CREATE INDEX events_stream_position ON events (stream_ms, stream_seq);

    CREATE TABLE orders (
        order_id       text        PRIMARY KEY,
        status         text        NOT NULL,
        -- The seq of the event that set the status; a batch may arrive out of order.
        status_seq     integer     NOT NULL,
        last_seq       integer     NOT NULL,
        token_in       text,
        token_out      text,
        amount         text,
        amount_in      numeric,
        slippage       double precision,
        order_type     text,
        routed_dex     text,
        quoted_out     numeric,
        min_amount_out numeric,
        tx_hash        text,
        amount_out     numeric,
        executed_price double precision,
        failed_attempts integer    NOT NULL DEFAULT 0,
        error          text,
        created_at     timestamptz,
        updated_at     timestamptz NOT NULL
    );
    CREATE INDEX orders_by_status ON orders (status, order_id);
    """,
    """
    -- An API key is shown once, at creation; only its SHA-256 is kept. A key reads
    -- oee_<key_id>_<secret>: the id finds the row, the secret's hash is compared.
    CREATE TABLE api_keys (
        name         text        PRIMARY KEY,
        key_id       text        NOT NULL UNIQUE,
        secret_hash  bytea       NOT NULL,
        role         text        NOT NULL CHECK (role IN ('trader', 'operator')),
        created_at   timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at   timestamptz
    );

    -- Each order belongs to the account that submitted it.
    ALTER TABLE orders ADD COLUMN account text NOT NULL DEFAULT '';
    CREATE INDEX orders_by_account ON orders (account, order_id);
    CREATE INDEX orders_by_account_status ON orders (account, status, order_id);
    """,
    """
    -- The seq of the event that set each group of columns that can change, as status_seq
    -- does for the status: a redelivered older event never overwrites a newer fact. Rows
    -- from before take their last seq, an upper bound of the true one: no older event wins,
    -- and any later one still does.
    ALTER TABLE orders
        ADD COLUMN route_seq integer NOT NULL DEFAULT 0,
        ADD COLUMN tx_seq    integer NOT NULL DEFAULT 0;
    UPDATE orders SET route_seq = CASE WHEN routed_dex IS NULL THEN 0 ELSE last_seq END,
                      tx_seq = CASE WHEN tx_hash IS NULL THEN 0 ELSE last_seq END
     WHERE routed_dex IS NOT NULL OR tx_hash IS NOT NULL;
    """,
    """
    -- The log is split into partitions, each with its own stream ids: a place in the log is
    -- (partition, ms, seq). Rows from before partitions were all in one stream: partition 0.
    ALTER TABLE events ADD COLUMN stream_partition integer NOT NULL DEFAULT 0;
    CREATE INDEX events_partition_position ON events (stream_partition, stream_ms, stream_seq);
    """,
    """
    -- Each event as it was written. The log is only ever read back whole, as text: json
    -- keeps the text, checked once on the way in, where jsonb parsed every event into a
    -- tree and printed it again on every read.
    ALTER TABLE events ALTER COLUMN data TYPE json USING data::json;
    """,
    """
    -- An event's id is uuid5 of its order and seq (shared.events.event_id), and always has
    -- been: the primary key keeps it unique. Its own unique index, a random place in a
    -- B-tree for every event written, cost PostgreSQL a fifth of an event's insert.
    ALTER TABLE events DROP CONSTRAINT IF EXISTS events_event_id_key;
    """,
)


async def migrate(database_url: str) -> int:
    """Bring the schema up to date; returns how many migrations ran. Safe to run twice,
    and from several processes at once (they queue on an advisory lock)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(727274)")
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
            row = await cursor.fetchone()
            current = int(row[0]) if row else 0
            for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                    )
                log.info("applied migration %d", version)
            return len(MIGRATIONS) - current
        finally:
            await conn.execute("SELECT pg_advisory_unlock(727274)")
