"""Writing a batch into PostgreSQL: the audit log and the projection, in one transaction.
Applying the same events twice changes nothing."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import psycopg
from msgspec.structs import astuple

from services.persister.projection import event_rows, order_rows
from shared.stream import Entry

# Each statement takes a whole batch as one array per column: one statement for the batch
# instead of one per row; binary parameters, as text arrays would escape every JSON string.
INSERT_EVENTS = """
INSERT INTO events (order_id, seq, event_id, type, at, stream_ms, stream_seq, data,
                    stream_partition)
SELECT order_id, seq, event_id, type, at, stream_ms, stream_seq, data::json, stream_partition
FROM unnest(%b::text[], %b::int[], %b::uuid[], %b::text[], %b::timestamptz[], %b::bigint[],
            %b::bigint[], %b::text[], %b::int[])
     AS e (order_id, seq, event_id, type, at, stream_ms, stream_seq, data, stream_partition)
ON CONFLICT (order_id, seq) DO NOTHING
"""

UPSERT_ORDERS = """
INSERT INTO orders AS o (
    order_id, status, status_seq, last_seq, token_in, token_out, amount, amount_in, slippage,
    order_type, account, routed_dex, quoted_out, min_amount_out, route_seq, tx_hash, tx_seq,
    amount_out, executed_price, failed_attempts, error, created_at, updated_at)
SELECT order_id, status, status_seq, last_seq, token_in, token_out, amount, amount_in, slippage,
    order_type, coalesce(account, ''), routed_dex, quoted_out, min_amount_out, route_seq,
    tx_hash, tx_seq, amount_out, executed_price, failed_attempts, error, created_at, updated_at
FROM unnest(
    %b::text[], %b::text[], %b::int[], %b::int[], %b::text[], %b::text[], %b::text[],
    %b::numeric[], %b::float8[], %b::text[], %b::text[], %b::text[], %b::numeric[],
    %b::numeric[], %b::int[],
    %b::text[], %b::int[], %b::numeric[], %b::float8[], %b::int[], %b::text[],
    %b::timestamptz[], %b::timestamptz[])
    AS r (order_id, status, status_seq, last_seq, token_in, token_out, amount, amount_in,
          slippage, order_type, account, routed_dex, quoted_out, min_amount_out, route_seq,
          tx_hash, tx_seq, amount_out, executed_price, failed_attempts, error, created_at,
          updated_at)
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
    -- '' is the default of a row whose OrderRequested has not been seen yet.
    account = CASE WHEN EXCLUDED.account = '' THEN o.account ELSE EXCLUDED.account END,
    -- The route and the transaction can change (a reroute, a new attempt): the newer event
    -- wins, whichever batch brings it. The other columns are said once, by one event.
    routed_dex = CASE WHEN EXCLUDED.route_seq > o.route_seq
                      THEN EXCLUDED.routed_dex ELSE o.routed_dex END,
    quoted_out = CASE WHEN EXCLUDED.route_seq > o.route_seq
                      THEN EXCLUDED.quoted_out ELSE o.quoted_out END,
    min_amount_out = CASE WHEN EXCLUDED.route_seq > o.route_seq
                          THEN EXCLUDED.min_amount_out ELSE o.min_amount_out END,
    route_seq = greatest(o.route_seq, EXCLUDED.route_seq),
    tx_hash = CASE WHEN EXCLUDED.tx_seq > o.tx_seq THEN EXCLUDED.tx_hash ELSE o.tx_hash END,
    tx_seq = greatest(o.tx_seq, EXCLUDED.tx_seq),
    amount_out = coalesce(EXCLUDED.amount_out, o.amount_out),
    executed_price = coalesce(EXCLUDED.executed_price, o.executed_price),
    failed_attempts = greatest(o.failed_attempts, EXCLUDED.failed_attempts),
    error = coalesce(EXCLUDED.error, o.error),
    created_at = coalesce(EXCLUDED.created_at, o.created_at)
"""


async def record(conn: psycopg.AsyncConnection[object], entries: Sequence[Entry]) -> None:
    async with conn.transaction(), conn.cursor() as cursor:
        await cursor.execute(INSERT_EVENTS, columns(event_rows(entries), 9))
        await cursor.execute(UPSERT_ORDERS, columns(order_rows(entries), 23))


def columns(rows: Sequence[msgspec.Struct], width: int) -> list[list[object]]:
    """Rows turned into one list per column (every column, even for no rows)."""
    return [list(column) for column in zip(*map(astuple, rows), strict=True)] or [[]] * width
