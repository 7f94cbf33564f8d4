"""What a batch of events writes: the audit rows as they are, and per order the columns
its events set: the order's fold (``shared.order``) over the batch. Pure; the SQL that
merges it into the stored row, by the same rule the fold follows (each column group is what
its latest event says), lives in records.py."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from shared.events import encode
from shared.order import fold
from shared.stream import Entry


class EventRow(msgspec.Struct, frozen=True):
    order_id: str
    seq: int
    event_id: str
    type: str
    at: datetime
    stream_ms: int
    stream_seq: int
    data: str
    # The log partition the entry was read from: with the stream id, its place in the log.
    stream_partition: int = 0


class OrderRow(msgspec.Struct, frozen=True, kw_only=True):
    """The columns one batch sets for one order; None leaves a column as it is."""

    order_id: str
    status: str
    status_seq: int
    last_seq: int
    token_in: str | None
    token_out: str | None
    amount: str | None
    amount_in: int | None
    slippage: float | None
    order_type: str | None
    account: str | None
    routed_dex: str | None
    quoted_out: int | None
    min_amount_out: int | None
    # The seq of the route's event (0: none in this batch), so a newer route is never
    # overwritten by an older one redelivered later.
    route_seq: int
    tx_hash: str | None
    tx_seq: int
    amount_out: int | None
    executed_price: float | None
    failed_attempts: int
    error: str | None
    created_at: datetime | None
    updated_at: datetime


def event_rows(entries: Sequence[Entry]) -> list[EventRow]:
    return [
        EventRow(
            e.event.order_id, e.event.seq, e.event.id, e.event.type, e.event.at,
            e.id.ms, e.id.seq, encode(e.event).decode(), e.partition,
        )
        for e in entries
    ]


def order_rows(entries: Sequence[Entry]) -> list[OrderRow]:
    by_order: dict[str, list[Any]] = defaultdict(list)
    for entry in entries:
        by_order[entry.event.order_id].append(entry.event)
    rows = []
    for order_id, events in sorted(by_order.items()):
        s = fold(order_id, events)
        req, routed = s.requested, s.routed
        assert s.updated_at is not None
        rows.append(OrderRow(
            order_id=order_id,
            # A batch without a status-setting event leaves the stored status alone.
            status=s.status or "pending",
            status_seq=s.status_seq,
            last_seq=s.last_seq,
            token_in=req.token_in if req else None,
            token_out=req.token_out if req else None,
            amount=req.amount if req else None,
            amount_in=req.amount_in if req else None,
            slippage=req.slippage if req else None,
            order_type=req.order_type if req else None,
            account=req.account if req else None,
            routed_dex=routed.dex if routed else None,
            quoted_out=routed.amount_out if routed else None,
            min_amount_out=routed.min_amount_out if routed else None,
            route_seq=routed.seq if routed else 0,
            tx_hash=s.tx_hash,
            tx_seq=s.tx_seq,
            amount_out=s.amount_out,
            executed_price=s.executed_price,
            failed_attempts=s.failed_attempts,
            error=s.error,
            created_at=s.created_at,
            updated_at=s.updated_at,
        ))
    return rows
