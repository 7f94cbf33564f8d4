"""shared/lifecycle.py: the one state machine of an order."""

from __future__ import annotations

import random

import pytest

from shared import lifecycle
from shared.order import fold
from tests.unit import builders


def test_statuses_and_their_ends() -> None:
    assert lifecycle.STATUSES == (
        "pending", "routing", "building", "submitted", "confirmed", "failed")
    assert {"confirmed", "failed"} == lifecycle.TERMINAL
    assert all(lifecycle.is_terminal(s) == (s in lifecycle.TERMINAL) for s in lifecycle.STATES)


def test_the_happy_path() -> None:
    moves = ["OrderRequested", "Routed", "Built", "Submitted", "Confirmed"]
    assert lifecycle.walk(moves) == "confirmed"


@pytest.mark.parametrize(("moves", "refused"), [
    (["Routed"], "Routed"),  # nothing before the order exists
    (["OrderRequested", "Built"], "Built"),  # not routed yet
    (["OrderRequested", "Routed", "Confirmed"], "Confirmed"),  # never sent
    (["OrderRequested", "Routed", "Built", "Rerouted"], "Rerouted"),  # no failed attempt
    # A redelivered route while the order waits for a new one: not the executor's turn.
    (["OrderRequested", "Routed", "Built", "AttemptFailed:reroute", "Submitted"], "Submitted"),
    (["OrderRequested", "Routed", "Built", "AttemptFailed:give_up", "Submitted"], "Submitted"),
    (["OrderRequested", "Failed", "Routed"], "Routed"),  # ended
    (["OrderRequested", "OrderRequested"], "OrderRequested"),
])
def test_moves_out_of_turn_are_refused(moves: list[str], refused: str) -> None:
    with pytest.raises(lifecycle.NotAllowed, match=refused):
        lifecycle.walk(moves)


def test_a_failed_attempt_retries_reroutes_or_gives_up() -> None:
    assert lifecycle.after_failure("transient", 1, 3) == "AttemptFailed:retry"
    assert lifecycle.after_failure("slippage", 2, 3) == "AttemptFailed:reroute"
    assert lifecycle.after_failure("expired", 1, 3) == "AttemptFailed:reroute"
    assert lifecycle.after_failure("slippage", 3, 3) == "AttemptFailed:give_up"
    assert lifecycle.FAIL_REASON["slippage"] == "slippage_exceeded"
    waits = ["OrderRequested", "Routed", "Built", "AttemptFailed:reroute"]
    assert lifecycle.walk(waits) == "rerouting"
    assert lifecycle.ACTOR["rerouting"] == "router"
    assert lifecycle.walk([*waits, "Rerouted", "Submitted", "Confirmed"]) == "confirmed"
    assert lifecycle.walk([*waits[:3], "AttemptFailed:give_up", "Failed"]) == "failed"


def test_every_move_lands_on_one_state_so_any_order_folds_alike() -> None:
    """Why the fold may take events in any order: a move's target never depends on the
    state it leaves, so the state is the target of the latest event."""
    story = [
        builders.requested(), builders.routed(), builders.built(),
        builders.attempt_failed(seq=4, kind="slippage", retry_in_ms=None),
        builders.rerouted(seq=5), builders.submitted(seq=6, attempt=2),
        builders.confirmed(seq=7, attempt=2),
    ]
    expected = fold("o-1", story)
    assert expected.state == lifecycle.walk(e.move for e in story) == "confirmed"
    rng = random.Random(3)
    for _ in range(30):
        shuffled = story * 2
        rng.shuffle(shuffled)
        assert fold("o-1", shuffled) == expected


def test_only_status_changes_send_a_status() -> None:
    assert lifecycle.sets_status("Rerouted") is None
    assert lifecycle.sets_status("AttemptFailed") is None
    assert lifecycle.sets_status("Built") == "building"
    assert lifecycle.status_of("rerouting") == lifecycle.status_of("giving_up") == "building"


def test_the_store_table_is_the_machine() -> None:
    pairs = lifecycle.lua_allowed()
    assert "|OrderRequested" in pairs and "submitted|Confirmed" in pairs
    assert not any(p.startswith(("confirmed|", "failed|")) for p in pairs)
    for pair in pairs:
        state, move = pair.split("|")
        assert lifecycle.allows(state or None, move)  # type: ignore[arg-type]
