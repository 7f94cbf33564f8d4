"""``oee events ORDER_ID``: one order's history from the PostgreSQL audit log, for a
person (time, event, key facts), or with ``--json`` as export lines (services/cli/jsonl.py),
which ``oee audit --from`` and ``oee replay --from`` read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from decimal import Decimal
from typing import TextIO

from psycopg import sql

from services.cli import eventlog, jsonl
from shared import tokens
from shared.config import Settings
from shared.events import (
    AnyEvent,
    AttemptFailed,
    Built,
    Confirmed,
    Failed,
    OrderRequested,
    Rerouted,
    Routed,
    Submitted,
    decode,
)
from shared.order import fold


async def events(settings: Settings, order_id: str, as_json: bool, out: TextIO) -> int:
    """0 when the order has events, 1 when PostgreSQL has none of it."""
    async with eventlog.snapshot(settings.database_url) as conn:
        schema = await eventlog.live_schema(conn)
        cursor = await conn.execute(sql.SQL(
            "SELECT stream_ms, stream_seq, data::text FROM {}.events"
            " WHERE order_id = %s ORDER BY seq").format(sql.Identifier(schema)), (order_id,))
        rows = [(int(ms), int(seq), str(data)) for ms, seq, data in await cursor.fetchall()]
    if not rows:
        out.write(f"no events of order {order_id}\n")
        return 1
    if as_json:
        out.writelines(jsonl.line(ms, seq, data) for ms, seq, data in rows)
    else:
        out.write(render([decode(data) for _, _, data in rows]))
    return 0


def render(history: Sequence[AnyEvent]) -> str:
    """A table of the order's events, oldest first, under a line that says what it is."""
    first = history[0]
    state = fold(first.order_id, history)
    requested = state.requested
    what = (f"{requested.amount} {requested.token_in} -> {requested.token_out}"
            if requested else "(no OrderRequested)")
    lines = [f"order {first.order_id}: {what}, {state.status or 'no status'}", ""]
    width = max(len(e.type) for e in history)
    lines.append(f"{'seq':>3}  {'time (UTC)':<23}  {'event':<{width}}  facts")
    for event in history:
        time = event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        lines.append(f"{event.seq:>3}  {time:<23}  {event.type:<{width}}  "
                     f"{facts(event, requested)}")
    return "\n".join(lines) + "\n"


def facts(event: AnyEvent, requested: OrderRequested | None) -> str:
    """What a person wants to know of one event, amounts in token units."""
    token_in = requested.token_in if requested else ""
    token_out = requested.token_out if requested else ""
    match event:
        case OrderRequested():
            account = f", account {event.account}" if event.account else ""
            return (f"{event.order_type} {event.amount} {event.token_in} -> {event.token_out}, "
                    f"slippage {event.slippage:.2%}{account}")
        case Routed():
            again = "again " if isinstance(event, Rerouted) else ""
            return (f"routed {again}via {event.dex} ({event.route.describe()}): quoted "
                    f"{units(event.amount_out, token_out)}, at least "
                    f"{units(event.min_amount_out, token_out)}; "
                    f"{len(event.candidates)} route(s) considered")
        case Built():
            wraps = [w for w, on in (("wraps SOL", event.wraps_sol),
                                     ("unwraps SOL", event.unwraps_sol)) if on]
            return ", ".join([f"{event.dex}, {len(event.instructions)} instructions", *wraps])
        case Submitted():
            return f"attempt {event.attempt}, tx {event.tx_hash}"
        case AttemptFailed():
            then = (f"retry in {event.retry_in_ms:g} ms" if event.retry_in_ms is not None
                    else "retry" if event.retryable else "no retry")
            return f"attempt {event.attempt} {event.kind}: {event.error}; {then}"
        case Confirmed():
            return (f"{units(event.amount_in, token_in)} -> {units(event.amount_out, token_out)}"
                    f" (at least {units(event.min_amount_out, token_out)}), price "
                    f"{event.executed_price:g}, attempt {event.attempt}, tx {event.tx_hash}")
        case Failed():
            return f"{event.reason} after {event.attempts} attempt(s): {event.error}"
    return ""


def units(base_units: int, symbol: str) -> str:
    """An amount in the token's decimal units, or in base units for a token not listed."""
    token = tokens.find(symbol) if symbol else None
    if token is None:
        return f"{base_units} base units {symbol}".rstrip()
    amount: Decimal = token.to_decimal(base_units)
    return f"{amount.normalize():f} {token.symbol}"
