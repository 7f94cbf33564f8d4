"""Writing a batch into PostgreSQL: the audit log and the projection, in one transaction.
Applying the same events twice changes nothing."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from msgspec.structs import astuple

from services.persister.projection import as_params, event_rows, order_rows
from shared.stream import Entry

INSERT_EVENTS = """
INSERT INTO events (order_id, seq, event_id, type, at, stream_ms, stream_seq, data)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (order_id, seq) DO NOTHING
"""

UPSERT_ORDER = """
INSERT INTO orders AS o (
    order_id, status, status_seq, last_seq, token_in, token_out, amount, amount_in, slippage,
    order_type, routed_dex, quoted_out, min_amount_out, tx_hash, amount_out, executed_price,
    failed_attempts, error, created_at, updated_at)
VALUES (
    %(order_id)s, %(status)s, %(status_seq)s, %(last_seq)s, %(token_in)s, %(token_out)s,
    %(amount)s, %(amount_in)s, %(slippage)s, %(order_type)s, %(routed_dex)s, %(quoted_out)s,
    %(min_amount_out)s, %(tx_hash)s, %(amount_out)s, %(executed_price)s, %(failed_attempts)s,
    %(error)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (order_id) DO UPDATE SET
    status = CASE WHEN EXCLUDED.status_seq > o.status_seq THEN EXCLUDED.status ELSE o.status END,
    status_seq = greatest(o.status_seq, EXCLUDED.status_seq),
    updated_at = CASE WHEN EXCLUDED.last_seq > o.last_seq
                      THEN EXCLUDED.updated_at ELSE o.updated_at END,
    last_seq = greatest(o.last_seq, EXCLUDED.last_seq),
    token_in = coalesce(EXCLUDED.token_in, o.token_in),
    token_out = coalesce(EXCLUDED.token_out, o.token_out),
    amount = coalesce(EXCLUDED.amount, o.amount),
    amount_in = coalesce(EXCLUDED.amount_in, o.amount_in),
    slippage = coalesce(EXCLUDED.slippage, o.slippage),
    order_type = coalesce(EXCLUDED.order_type, o.order_type),
    routed_dex = coalesce(EXCLUDED.routed_dex, o.routed_dex),
    quoted_out = coalesce(EXCLUDED.quoted_out, o.quoted_out),
    min_amount_out = coalesce(EXCLUDED.min_amount_out, o.min_amount_out),
    tx_hash = coalesce(EXCLUDED.tx_hash, o.tx_hash),
    amount_out = coalesce(EXCLUDED.amount_out, o.amount_out),
    executed_price = coalesce(EXCLUDED.executed_price, o.executed_price),
    failed_attempts = greatest(o.failed_attempts, EXCLUDED.failed_attempts),
    error = coalesce(EXCLUDED.error, o.error),
    created_at = coalesce(EXCLUDED.created_at, o.created_at)
"""


async def record(conn: psycopg.AsyncConnection[object], entries: Sequence[Entry]) -> None:
    async with conn.transaction(), conn.cursor() as cursor:
        await cursor.executemany(INSERT_EVENTS, [astuple(r) for r in event_rows(entries)])
        await cursor.executemany(UPSERT_ORDER, [as_params(r) for r in order_rows(entries)])
