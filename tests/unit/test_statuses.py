"""What a subscriber keeps of an order (``Statuses``) tells what the order's state says:
every status message of every order of the golden log, built from that small fold, carries
the fields the full fold (``OrderState``) gives at the same event."""

from __future__ import annotations

import gc

import pytest

from services.gateway.views import Statuses, StatusMessage, decimal_text
from shared.events import AnyEvent, decode
from shared.order import OrderState, fold
from tests.golden.generate import LOG
from tests.unit.test_golden import by_order

ORDERS = by_order([decode(line) for line in LOG.read_bytes().splitlines()])


def expected(state: OrderState, event: AnyEvent) -> StatusMessage | None:
    """The message, from the state after ``event``, field by field as SPEC gives them."""
    if event.status is None:
        return None
    req, routed = state.requested, state.routed
    assert req is not None
    confirmed = event.status == "confirmed"
    return StatusMessage(
        order_id=event.order_id, status=event.status, timestamp=event.at, seq=event.seq,
        routed_dex=routed.dex if routed else None,
        tx_hash=state.tx_hash if event.status in ("submitted", "confirmed") else None,
        executed_price=state.executed_price if confirmed else None,
        amount_in=decimal_text(req.token_in, req.amount_in) if confirmed else None,
        amount_out=decimal_text(req.token_out, state.amount_out) if confirmed else None,
        min_amount_out=(decimal_text(req.token_out, routed.min_amount_out)
                        if confirmed and routed else None),
        error=state.error if event.status == "failed" else None)


@pytest.mark.parametrize("order_id", sorted(ORDERS))
def test_each_message_tells_what_the_orders_state_says(order_id: str) -> None:
    statuses, state = Statuses(), OrderState(order_id=order_id)
    sent = 0
    for event in ORDERS[order_id]:
        state.apply(event)
        message = statuses.message(event)
        assert message == expected(state, event)
        sent += message is not None
    assert sent >= 2  # pending, and at least the status it ended or waits in


@pytest.mark.parametrize("order_id", sorted(ORDERS))
def test_a_follower_that_joins_late_goes_on_as_one_that_saw_it_all(order_id: str) -> None:
    events = ORDERS[order_id]
    for joined in range(1, len(events)):
        statuses = Statuses.of(events[:joined])
        state = fold(order_id, events[:joined])
        for event in events[joined:]:
            state.apply(event)
            assert statuses.message(event) == expected(state, event)


def test_the_collector_does_not_track_what_subscribers_keep() -> None:
    # Thousands live as long as their connections; none can be part of a cycle.
    assert not gc.is_tracked(Statuses.of(ORDERS[sorted(ORDERS)[0]]))
