"""An order's state: a fold of its events over the lifecycle (``shared.lifecycle``). Pure.

The services fold an order's history to decide on it (``shared.decisions``), the persister
folds a batch to project it, the API folds what it reads. Every part of the state is what
the latest event that says it says (by seq), so ``apply`` takes events in any order, any
number of times, and folding two halves and merging them (as the persister's upsert does
in SQL) equals folding the whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from shared import lifecycle
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
    Triggered,
)
from shared.lifecycle import Service, State


class OrderState(msgspec.Struct, kw_only=True):
    """What the events so far say; a field is None until an event has said it."""

    order_id: str
    status: Status | None = None
    # The seq of the event that set `status`.
    status_seq: int = 0
    last_seq: int = 0
    requested: OrderRequested | None = None
    # The latest route (Routed or Rerouted); its own seq says how recent it is.
    routed: Routed | None = None
    built: Built | None = None
    tx_hash: str | None = None
    amount_out: int | None = None
    executed_price: float | None = None
    failed_attempts: int = 0
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # The lifecycle's state: the target of the latest event (the seq is `last_seq`).
    state: State | None = None
    # The seq of the event that set `tx_hash`.
    tx_seq: int = 0
    last_failure: AttemptFailed | None = None
    # The latest trigger of a waiting order: a sniper's says how far the snipers fired
    # before it at its launch pushed the launched pool.
    fired: Triggered | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in lifecycle.TERMINAL

    @property
    def actor(self) -> Service | None:
        """The service whose turn it is; None before the order exists and once it ended."""
        return None if self.state is None else lifecycle.ACTOR.get(self.state)

    def allows(self, event: Event) -> bool:
        return lifecycle.allows(self.state, event.move)

    def apply(self, event: Event) -> None:
        if event.seq > self.last_seq:
            self.last_seq, self.updated_at = event.seq, event.at
            self.state = lifecycle.target(event.move)
        status = event.status
        if status is not None and event.seq > self.status_seq:
            self.status, self.status_seq = status, event.seq
        match event:
            case OrderRequested():
                self.requested = event
                self.created_at = event.at
            case Routed():  # and Rerouted
                if self.routed is None or event.seq > self.routed.seq:
                    self.routed = event
            case Built():
                if self.built is None or event.seq > self.built.seq:
                    self.built = event
            case Submitted():
                self._set_tx(event.tx_hash, event.seq)
            case AttemptFailed():
                self.failed_attempts = max(self.failed_attempts, event.attempt)
                if self.last_failure is None or event.seq > self.last_failure.seq:
                    self.last_failure = event
            case Confirmed():
                self._set_tx(event.tx_hash, event.seq)
                self.amount_out = event.amount_out
                self.executed_price = event.executed_price
            case Failed():
                self.error = event.error
            case Triggered():  # last: a market order's events never get this far
                if self.fired is None or event.seq > self.fired.seq:
                    self.fired = event

    def _set_tx(self, tx_hash: str, seq: int) -> None:
        if seq > self.tx_seq:
            self.tx_hash, self.tx_seq = tx_hash, seq


def fold(order_id: str, events: Iterable[Event]) -> OrderState:
    state = OrderState(order_id=order_id)
    for event in events:
        state.apply(event)
    return state
