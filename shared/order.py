"""An order's state, folded from its events. Pure: the executor folds an order's history to
resume it, and the persister folds a batch to project it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from shared.events import (
    AttemptFailed,
    Built,
    Confirmed,
    Event,
    Failed,
    OrderRequested,
    Routed,
    Status,
    Submitted,
)


class OrderState(msgspec.Struct, kw_only=True):
    """What the events so far say; a field is None until an event has said it."""

    order_id: str
    status: Status | None = None
    # The seq of the event that set `status`: events may be folded in any order.
    status_seq: int = 0
    last_seq: int = 0
    requested: OrderRequested | None = None
    routed: Routed | None = None
    built: Built | None = None
    tx_hash: str | None = None
    amount_out: int | None = None
    executed_price: float | None = None
    failed_attempts: int = 0
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in ("confirmed", "failed")

    def apply(self, event: Event) -> None:
        if event.status is not None and event.seq > self.status_seq:
            self.status, self.status_seq = event.status, event.seq
        if event.seq > self.last_seq:
            self.last_seq, self.updated_at = event.seq, event.at
        match event:
            case OrderRequested():
                self.requested = event
                self.created_at = event.at
            case Routed():
                self.routed = event
            case Built():
                self.built = event
            case Submitted():
                self.tx_hash = event.tx_hash
            case AttemptFailed():
                self.failed_attempts = max(self.failed_attempts, event.attempt)
            case Confirmed():
                self.tx_hash = event.tx_hash
                self.amount_out = event.amount_out
                self.executed_price = event.executed_price
            case Failed():
                self.error = event.error


def fold(order_id: str, events: Iterable[Event]) -> OrderState:
    state = OrderState(order_id=order_id)
    for event in sorted(events, key=lambda e: e.seq):
        state.apply(event)
    return state
