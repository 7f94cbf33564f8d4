"""shared/lifecycle.py: the one state machine of an order."""

from __future__ import annotations

import random

import pytest

from shared import lifecycle
from shared.order import fold
from tests.unit import builders


def test_statuses_and_their_ends() -> None:
    assert lifecycle.STATUSES == (
        "pending", "open", "routing", "building", "submitted", "confirmed", "failed",
        "cancelled", "expired")
    assert {"confirmed", "failed", "cancelled", "expired"} == lifecycle.TERMINAL
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


# The machine written out on its own, as docs/events.md tables it, not derived from the
# module's table: each state, and the moves an order may make from it ("" is an order with
# no event yet). A change to the machine changes this too, on purpose.
EXPECTED_MOVES: dict[str, set[str]] = {
    "": {"OrderRequested", "OrderRequested:waiting"},
    "pending": {"Routed", "Failed"},
    "opening": {"OrderOpened", "Cancelled", "Expired", "Failed"},
    "open": {"Triggered", "Triggered:routed", "Cancelled", "Expired", "Failed"},
    "triggered": {"Routed", "Failed"},
    "routing": {"Built", "Failed"},
    "building": {"Submitted", "AttemptFailed:retry", "AttemptFailed:reroute",
                 "AttemptFailed:give_up", "Failed"},
    "rerouting": {"Rerouted", "Reopened", "Failed"},
    "giving_up": {"Failed"},
    "submitted": {"Confirmed", "Failed"},
}


def test_the_store_checks_exactly_the_moves_an_order_may_make() -> None:
    expected = {f"{state}|{move}" for state, moves in EXPECTED_MOVES.items() for move in moves}
    assert set(lifecycle.lua_allowed()) == expected
    assert len(lifecycle.lua_allowed()) == len(expected)  # each pair once


def _next_states() -> dict[str, set[str]]:
    """From the store's table alone: the states each state leads to."""
    graph: dict[str, set[str]] = {}
    for pair in lifecycle.lua_allowed():
        state, move = pair.split("|")
        graph.setdefault(state, set()).add(lifecycle.target(move))
    return graph


def test_every_state_is_reached_by_some_story_and_every_story_can_end() -> None:
    graph = _next_states()
    reached, frontier = set(), [""]
    while frontier:
        for after in graph.get(frontier.pop(), set()) - reached:
            reached.add(after)
            frontier.append(after)
    assert reached == set(lifecycle.STATES)
    for state in lifecycle.STATES:
        seen, frontier = {state}, [state]
        while frontier and not any(lifecycle.is_terminal(s) for s in seen):
            for after in graph.get(frontier.pop(), set()) - seen:
                seen.add(after)
                frontier.append(after)
        assert any(lifecycle.is_terminal(s) for s in seen), f"{state} can never end"
    # An ended order allows nothing at all.
    assert not set(graph) & lifecycle.TERMINAL


@pytest.mark.parametrize(("story", "end"), [
    (["OrderRequested", "Failed"], "failed"),  # no route
    (["OrderRequested", "Routed", "Built", "AttemptFailed:retry", "AttemptFailed:retry",
      "Submitted", "Confirmed"], "confirmed"),
    (["OrderRequested", "Routed", "Built", "AttemptFailed:retry", "AttemptFailed:give_up",
      "Failed"], "failed"),
    (["OrderRequested:waiting", "Expired"], "expired"),  # its deadline passed while away
    (["OrderRequested:waiting", "Cancelled"], "cancelled"),
    (["OrderRequested:waiting", "OrderOpened", "Triggered:routed", "Routed", "Built",
      "Submitted", "Confirmed"], "confirmed"),
    (["OrderRequested", "Routed", "Submitted", "Failed"], None),  # never built
    (["OrderRequested", "Routed", "Built", "Submitted", "Confirmed", "Failed"], None),
    (["OrderRequested", "Routed", "Built", "AttemptFailed:give_up", "Confirmed"], None),
    (["OrderRequested:waiting", "Triggered"], None),  # not opened yet
    (["OrderRequested:waiting", "OrderOpened", "Triggered", "Cancelled"], None),
])
def test_the_stories_an_order_can_and_cannot_have(story: list[str], end: str | None) -> None:
    if end is None:
        with pytest.raises(lifecycle.NotAllowed):
            lifecycle.walk(story)
    else:
        assert lifecycle.walk(story) == end


def test_the_terminal_event_types_are_the_ends() -> None:
    assert {"Confirmed", "Failed", "Cancelled", "Expired"} == lifecycle.TERMINAL_TYPES
    assert {"pending", "open"} == lifecycle.WAITING_STATUSES


WAITING = ["OrderRequested:waiting", "OrderOpened"]


def test_a_waiting_order_opens_fires_and_executes_like_a_market_order() -> None:
    assert lifecycle.walk(WAITING) == "open"
    fired = lifecycle.walk([*WAITING, "Triggered"])
    assert fired == "triggered" and lifecycle.status_of(fired) == "open"
    assert lifecycle.ACTOR["open"] == "trigger" and lifecycle.ACTOR["triggered"] == "router"
    assert lifecycle.walk([*WAITING, "Triggered", "Routed", "Built", "Submitted",
                           "Confirmed"]) == "confirmed"
    assert lifecycle.HANDS_OVER["OrderRequested:waiting"] == "trigger"
    assert lifecycle.HANDS_OVER["Triggered"] == "router"


def test_a_cancel_and_a_trigger_exclude_each_other() -> None:
    """Both are allowed only from open (or before it), so whichever the store appends
    first, the other is refused: exactly one wins."""
    for first, second in (("Cancelled", "Triggered"), ("Triggered", "Cancelled")):
        state = lifecycle.walk([*WAITING, first])
        assert not lifecycle.allows(state, second)
    assert lifecycle.walk([*WAITING, "Cancelled"]) == "cancelled"
    assert lifecycle.is_terminal("cancelled") and lifecycle.is_terminal("expired")


@pytest.mark.parametrize("moves", [
    [*WAITING, "Triggered", "Routed", "Cancelled"],  # routing started: too late to cancel
    [*WAITING, "Triggered", "Expired"],  # fired before its deadline: it executes
    [*WAITING, "Expired", "Triggered"],
    ["OrderRequested", "OrderOpened"],  # a market order never waits
    [*WAITING, "Reopened"],  # only an order that was being executed goes back
])
def test_waiting_moves_out_of_turn_are_refused(moves: list[str]) -> None:
    with pytest.raises(lifecycle.NotAllowed):
        lifecycle.walk(moves)


def test_an_order_that_would_fill_below_its_bound_waits_again() -> None:
    executing = [*WAITING, "Triggered", "Routed", "Built", "AttemptFailed:reroute"]
    assert lifecycle.walk([*executing, "Reopened"]) == "open"
    assert lifecycle.walk([*executing, "Reopened", "Triggered", "Routed", "Built",
                           "Submitted", "Confirmed"]) == "confirmed"
    assert lifecycle.walk([*executing, "Reopened", "Expired"]) == "expired"
    # Price or age never gives a waiting order up; transient failures count as ever.
    assert lifecycle.after_failure("slippage", 3, 3, waiting=True) == "AttemptFailed:reroute"
    assert lifecycle.after_failure("transient", 3, 3, waiting=True) == "AttemptFailed:give_up"


def test_the_store_checks_the_waiting_moves_too() -> None:
    pairs = set(lifecycle.lua_allowed())
    assert {"open|Triggered", "open|Cancelled", "open|Expired", "|OrderRequested:waiting",
            "rerouting|Reopened"} <= pairs
    assert "triggered|Cancelled" not in pairs
