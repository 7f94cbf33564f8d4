"""shared/order.py: folding an order's events into its state."""

from __future__ import annotations

import random

from shared.events import Event, OrderOpened, Reopened, Triggered
from shared.order import OrderState, fold
from tests.unit import builders


def _retry_story() -> list[Event]:
    """Two failed attempts, then a confirmation on the third."""
    return [
        builders.requested(),
        builders.routed(),
        builders.built(),
        builders.submitted(seq=4, attempt=1, tx_hash="tx1"),
        builders.attempt_failed(seq=5, attempt=1, error="RPC node timed out"),
        builders.submitted(seq=6, attempt=2, tx_hash="tx2"),
        builders.attempt_failed(seq=7, attempt=2, error="blockhash not found"),
        builders.submitted(seq=8, attempt=3, tx_hash="tx3"),
        builders.confirmed(seq=9, attempt=3, tx_hash="tx3"),
    ]


def test_happy_story() -> None:
    story = builders.happy_story()
    state = fold("o-1", story)
    assert state.order_id == "o-1"
    assert state.status == "confirmed"
    assert state.status_seq == 5
    assert state.last_seq == 5
    assert state.is_terminal
    assert state.requested == story[0]
    assert state.routed == story[1]
    assert state.built == story[2]
    assert state.tx_hash == builders.TX
    assert state.amount_out == 73_900_000
    assert state.executed_price == 147.8
    assert state.failed_attempts == 0
    assert state.error is None
    assert state.created_at == builders.at(1)
    assert state.updated_at == builders.at(5)


def test_empty_fold() -> None:
    state = fold("o-1", [])
    assert state == OrderState(order_id="o-1")
    assert state.status is None
    assert not state.is_terminal


def test_fold_is_independent_of_event_order() -> None:
    story = _retry_story()
    expected = fold("o-1", story)
    rng = random.Random(7)
    for _ in range(50):
        shuffled = story[:]
        rng.shuffle(shuffled)
        assert fold("o-1", shuffled) == expected


def test_retries_are_counted() -> None:
    state = fold("o-1", _retry_story())
    assert state.status == "confirmed"
    assert state.failed_attempts == 2
    assert state.tx_hash == "tx3"


def test_failed_attempts_is_the_max_attempt() -> None:
    events = [
        builders.attempt_failed(seq=9, attempt=3),
        builders.attempt_failed(seq=5, attempt=1),
        builders.attempt_failed(seq=7, attempt=2),
    ]
    assert fold("o-1", events).failed_attempts == 3
    assert fold("o-1", events[1:2]).failed_attempts == 1


def test_attempt_failed_does_not_clear_the_status() -> None:
    events = [builders.submitted(seq=4), builders.attempt_failed(seq=5, attempt=1)]
    state = fold("o-1", events)
    assert state.status == "submitted"
    assert state.status_seq == 4
    assert state.last_seq == 5
    assert state.updated_at == builders.at(5)


def test_status_comes_from_highest_seq_status_event() -> None:
    events = [builders.routed(seq=2), builders.requested(seq=1), builders.built(seq=3)]
    state = fold("o-1", events)
    assert (state.status, state.status_seq) == ("building", 3)


def test_attempt_failed_alone_sets_no_status() -> None:
    state = fold("o-1", [builders.attempt_failed(seq=5)])
    assert state.status is None
    assert state.status_seq == 0
    assert state.last_seq == 5


def test_failed_order() -> None:
    events = [
        builders.requested(),
        builders.submitted(seq=4),
        builders.attempt_failed(seq=5, attempt=1),
        builders.attempt_failed(seq=6, attempt=2),
        builders.attempt_failed(seq=7, attempt=3, retryable=False, retry_in_ms=None),
        builders.failed(seq=8, error="node is behind", attempts=3),
    ]
    state = fold("o-1", list(reversed(events)))
    assert state.status == "failed"
    assert state.is_terminal
    assert state.error == "node is behind"
    assert state.failed_attempts == 3


def test_apply_ignores_an_older_status() -> None:
    state = OrderState(order_id="o-1")
    state.apply(builders.built(seq=3))
    state.apply(builders.routed(seq=2))
    assert (state.status, state.status_seq, state.last_seq) == ("building", 3, 3)
    assert state.updated_at == builders.at(3)


def _reroute_story() -> list[Event]:
    """Attempt 1 fails on slippage; the router reroutes to Meteora; attempt 2 lands."""
    return [
        builders.requested(),
        builders.routed(),
        builders.built(),
        builders.submitted(seq=4, attempt=1, tx_hash="tx1"),
        builders.attempt_failed(seq=5, attempt=1, kind="slippage", retry_in_ms=None,
                                error="SlippageExceeded: the route would give 1, below 2"),
        builders.rerouted(seq=6),
    ]


def test_rerouted_replaces_the_route_but_not_the_status() -> None:
    story = _reroute_story()
    state = fold("o-1", story)
    assert state.routed == story[-1]
    assert state.routed is not None and state.routed.dex == "meteora"
    assert (state.status, state.status_seq, state.last_seq) == ("submitted", 4, 6)
    assert state.failed_attempts == 1


def test_rerouted_wins_whatever_the_event_order() -> None:
    story = _reroute_story()
    rng = random.Random(11)
    for _ in range(20):
        shuffled = story[:]
        rng.shuffle(shuffled)
        assert fold("o-1", shuffled).routed == story[-1]


def test_a_redelivered_route_applied_after_the_new_one_does_not_replace_it() -> None:
    state = OrderState(order_id="o-1")
    for event in _reroute_story()[::-1]:  # Rerouted first, the old Routed last
        state.apply(event)
    assert state.routed == _reroute_story()[-1]
    assert (state.state, state.status, state.last_seq) == ("building", "submitted", 6)


def test_the_latest_transaction_wins_in_any_order() -> None:
    story = _retry_story()
    state = OrderState(order_id="o-1")
    for event in sorted(story, key=lambda e: -e.seq):
        state.apply(event)
    assert (state.tx_hash, state.tx_seq) == ("tx3", 9)


def test_the_latest_trigger_is_kept_in_any_order() -> None:
    """A waiting order fired, sent back to wait, and fired again: its latest trigger says
    how far the snipers before it pushed the launched pool."""
    story: list[Event] = [
        builders.requested(order_type="sniper"), OrderOpened(order_id="o-1", seq=2),
        Triggered(order_id="o-1", seq=3, price=1.0, reason="launched", pushed=10),
        Reopened(order_id="o-1", seq=4, reason="below its bound"),
        Triggered(order_id="o-1", seq=5, price=1.0, reason="crossed", pushed=0),
    ]
    rng = random.Random(5)
    for _ in range(20):
        shuffled = story[:]
        rng.shuffle(shuffled)
        state = fold("o-1", shuffled)
        assert state.fired == story[-1] and state.state == "triggered"
    assert fold("o-1", builders.happy_story()).fired is None
