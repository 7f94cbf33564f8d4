"""shared/decisions.py: what each command makes of an order's state, and what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec import UNSET

from shared import decisions, lifecycle
from shared.decisions import Failure, Refused, Routing, Transaction
from shared.events import (
    AnyEvent,
    AttemptFailed,
    Built,
    Cancelled,
    Confirmed,
    Event,
    Expired,
    Failed,
    OrderOpened,
    OrderRequested,
    Reopened,
    Rerouted,
    Routed,
    Submitted,
    Triggered,
)
from shared.order import OrderState, fold
from shared.routing import Decision, NoRoute
from tests.unit import builders

T0 = builders.T0.timestamp()


def limit(**overrides: Any) -> OrderRequested:
    """0.5 SOL for at least 150 USDC each: 75 USDC (75,000,000 base units) at least."""
    fields: dict[str, Any] = {"order_type": "limit", "limit_price": "150"}
    return builders.requested(**(fields | overrides))


def sniper(**overrides: Any) -> OrderRequested:
    return builders.requested(**({"order_type": "sniper"} | overrides))


def opened(seq: int = 2) -> OrderOpened:
    return OrderOpened(order_id="o-1", seq=seq, at=builders.at(seq))


def triggered(seq: int = 3, pushed: int = 0) -> Triggered:
    return Triggered(order_id="o-1", seq=seq, at=builders.at(seq), price=151.0,
                     reason="crossed", pushed=pushed)


def slipped(seq: int = 4, attempt: int = 1) -> AttemptFailed:
    return builders.attempt_failed(seq=seq, attempt=attempt, kind="slippage", retry_in_ms=None,
                                   error="SlippageExceeded: the route would give 1, below 2")


def landing(attempt: int = 1, signature: str = builders.TX) -> Landed:
    return Landed(signature=signature, attempt=attempt, amount_out=73_900_000,
                  executed_price=147.8, latency_ms=2_500.0)


class Landed(msgspec.Struct, frozen=True, kw_only=True):
    """A landing as the chain records one (``decisions.Landing`` is its shape)."""

    signature: str
    attempt: int
    amount_out: int
    executed_price: float
    latency_ms: float


# One story of each state an order can be in, as the services write them.
STORIES: dict[str, list[AnyEvent]] = {
    "pending": [builders.requested()],
    "opening": [limit()],
    "open": [limit(), opened()],
    "triggered": [limit(), opened(), triggered()],
    "cancelled": [limit(), opened(), Cancelled(order_id="o-1", seq=3, at=builders.at(3))],
    "expired": [limit(), opened(), Expired(order_id="o-1", seq=3, at=builders.at(3),
                                           expires_at=builders.at(3))],
    "routing": [builders.requested(), builders.routed()],
    "building": [builders.requested(), builders.routed(), builders.built()],
    "submitted": [builders.requested(), builders.routed(), builders.built(),
                  builders.submitted()],
    "rerouting": [builders.requested(), builders.routed(), builders.built(), slipped()],
    "giving_up": [builders.requested(), builders.routed(), builders.built(),
                  builders.attempt_failed(seq=4, attempt=3, retryable=False,
                                          retry_in_ms=None)],
    "confirmed": builders.happy_story(),
    "failed": [builders.requested(), builders.failed(seq=2, reason="no_route", attempts=0)],
}


def state_of(name: str) -> OrderState:
    return fold("o-1", STORIES[name])


def made(decided: list[Event] | Refused) -> list[Event]:
    assert not isinstance(decided, Refused), decided
    return decided


def build(order: OrderRequested, routed: Routed) -> Transaction:
    return Transaction([f"swap({order.amount_in})", f"assert({routed.min_amount_out})"],
                       wraps_sol=True, unwraps_sol=False)


def test_the_stories_reach_their_states() -> None:
    assert set(STORIES) == set(lifecycle.STATES)
    for name in STORIES:
        assert state_of(name).state == name


# --- every decision is a move the lifecycle allows, numbered after the order ----------------

DECIDED_ON_STATE: dict[str, Callable[[OrderState], list[Event] | Refused]] = {
    "execute": lambda s: decisions.execute(s, build),
    "land": lambda s: decisions.land(s, landing(signature="another")),
    "fail_attempt": lambda s: decisions.fail_attempt(
        s, 1, Failure("transient", "node is behind"), max_attempts=1, retry_base_ms=500),
    "confirm": lambda s: decisions.confirm(s, landing()),
    "cancel": lambda s: decisions.cancel(s, "desk-1"),
    "give_up": lambda s: decisions.give_up(s, "poisoned"),
}
# Each command, and the states it is meant for: elsewhere it refuses or makes nothing.
MEANT_FOR: dict[str, set[str]] = {
    "execute": {"routing", "giving_up"},
    "cancel": {"opening", "open"},
    "give_up": {str(s) for s in lifecycle.STATES} - set(lifecycle.TERMINAL),
}
# The executor's steps, asked only where its execution stands: an attempt is sent and fails
# or lands once built, and is confirmed once submitted.
ASKED_IN: dict[str, set[str]] = {
    "land": {"building"}, "fail_attempt": {"building"}, "confirm": {"submitted"},
}


@pytest.mark.parametrize("command", sorted(DECIDED_ON_STATE))
@pytest.mark.parametrize("name", sorted(lifecycle.STATES))
def test_what_a_command_decides_the_lifecycle_allows_next(command: str, name: str) -> None:
    if name not in ASKED_IN.get(command, {name}):
        return
    state = state_of(name)
    decided = DECIDED_ON_STATE[command](state)
    if isinstance(decided, Refused):
        assert name not in MEANT_FOR.get(command, set())
        return
    assert [e.seq for e in decided] == list(range(state.last_seq + 1,
                                                   state.last_seq + 1 + len(decided)))
    assert lifecycle.walk([*(e.move for e in STORIES[name]), *(e.move for e in decided)])
    assert all(e.order_id == "o-1" for e in decided)
    if command in MEANT_FOR:
        assert bool(decided) == (name in MEANT_FOR[command]), decided


# --- submit ----------------------------------------------------------------------------------


def test_a_new_order_is_its_request() -> None:
    requested = builders.requested()
    assert decisions.submit(requested) == [requested]
    assert lifecycle.walk(e.move for e in decisions.submit(limit())) == "opening"


# --- route -----------------------------------------------------------------------------------


def found(amount_out: int = 74_000_000, min_amount_out: int = 73_260_000) -> Decision:
    best = builders.direct(amount_out=amount_out)
    runner_up = builders.direct("meteora", amount_out=amount_out * 97 // 100)
    return Decision(best, [best, runner_up], min_amount_out, "raydium direct pays more")


QUOTES = [builders.quote("raydium"), builders.quote("meteora")]


def test_a_new_market_order_is_routed_after_its_request() -> None:
    routing = decisions.route_request(builders.requested())
    assert routing == Routing(builders.requested(), seq=2, again=False, ahead=0)
    [routed] = decisions.route(routing, found(), QUOTES, launched=False)
    assert type(routed) is Routed
    assert (routed.seq, routed.dex, routed.amount_out, routed.min_amount_out) == (
        2, "raydium", 74_000_000, 73_260_000)
    assert routed.route == found().best and routed.candidates == found().candidates
    assert routed.quotes == QUOTES and routed.reason == "raydium direct pays more"
    assert routed.pushed is UNSET


def test_no_route_ends_the_order_failed_with_the_markets_words() -> None:
    routing = decisions.route_request(builders.requested())
    [ended] = decisions.route(routing, NoRoute("no route from SOL to XYZ"), QUOTES, False)
    assert isinstance(ended, Failed)
    assert (ended.seq, ended.reason, ended.error, ended.attempts) == (
        2, "no_route", "no route from SOL to XYZ", 0)


def test_a_fired_order_is_routed_only_while_nothing_came_after_its_trigger() -> None:
    fired = triggered(seq=3, pushed=40)
    routing = decisions.route_fired(state_of("triggered"), fired)
    assert routing == Routing(limit(), seq=4, again=False, ahead=40)
    for name in sorted(set(lifecycle.STATES) - {"triggered"}):
        refused = decisions.route_fired(state_of(name), fired)
        assert isinstance(refused, Refused) and refused.reason == "not_its_turn", name
    unknown = decisions.route_fired(OrderState(order_id="o-1"), fired)
    assert isinstance(unknown, Refused) and unknown.reason == "unknown_order"


def test_a_waiting_order_reaches_its_own_bound_on_its_first_route() -> None:
    """The quote less slippage is raised to the order's own price: 0.5 x 150 USDC."""
    [routed] = decisions.route(Routing(limit(), 4), found(amount_out=76_000_000), QUOTES, False)
    assert isinstance(routed, Routed) and routed.min_amount_out == 75_000_000


def test_routed_again_after_price_or_age_on_the_latest_triggers_pool() -> None:
    story = [sniper(), opened(), triggered(seq=3, pushed=10), builders.routed(seq=4),
             builders.built(seq=5), slipped(seq=6), Reopened(order_id="o-1", seq=7,
                                                             reason="below"),
             triggered(seq=8, pushed=25), builders.routed(seq=9), builders.built(seq=10),
             slipped(seq=11, attempt=2)]
    failure = story[-1]
    assert isinstance(failure, AttemptFailed)
    for events in (story, story[::-1]):
        routing = decisions.route_again(fold("o-1", events), failure)
        assert routing == Routing(sniper(), seq=12, again=True, ahead=25)
    market = decisions.route_again(state_of("rerouting"), slipped())
    assert market == Routing(builders.requested(), seq=5, again=True, ahead=0)
    [rerouted] = decisions.route(market, found(), QUOTES, launched=False)
    assert type(rerouted) is Rerouted and rerouted.seq == 5


@pytest.mark.parametrize("name", ["routing", "building", "submitted", "giving_up", "open",
                                  "confirmed", "failed"])
def test_routing_again_is_refused_once_it_is_not_the_routers_turn(name: str) -> None:
    refused = decisions.route_again(state_of(name), slipped())
    assert isinstance(refused, Refused) and refused.reason == "not_its_turn"
    assert "o-1" in refused.message and "route" in refused.message


def test_a_waiting_order_whose_new_route_falls_below_its_bound_waits_again() -> None:
    routing = Routing(limit(), seq=8, again=True)
    [waits] = decisions.route(routing, found(amount_out=74_999_999), QUOTES, False)
    assert isinstance(waits, Reopened) and waits.seq == 8
    assert waits.reason == "the route gives 74999999, below the bound 75000000"
    [rerouted] = decisions.route(routing, found(amount_out=75_000_000), QUOTES, False)
    assert type(rerouted) is Rerouted and rerouted.min_amount_out == 75_000_000
    # A market order has no bound of its own: rerouted whatever the route gives.
    [market] = decisions.route(Routing(builders.requested(), 6, again=True),
                               found(amount_out=1, min_amount_out=1), QUOTES, False)
    assert type(market) is Rerouted


@pytest.mark.parametrize(("order", "launched", "pushed"), [
    (sniper(), True, 30),
    (sniper(), False, UNSET),
    (builders.requested(), True, UNSET),
    (limit(), True, UNSET),
])
def test_only_a_snipers_route_on_a_launched_token_carries_the_push(
        order: OrderRequested, launched: bool, pushed: object) -> None:
    [routed] = decisions.route(Routing(order, 4, ahead=30), found(amount_out=80_000_000),
                               QUOTES, launched)
    assert isinstance(routed, Routed) and routed.pushed == pushed


# --- execute ---------------------------------------------------------------------------------


def test_a_new_route_is_built_with_what_the_builder_makes() -> None:
    state = state_of("routing")
    [built] = made(decisions.execute(state, build))
    assert isinstance(built, Built)
    assert (built.seq, built.dex, built.wraps_sol, built.unwraps_sol) == (3, "raydium", True,
                                                                          False)
    assert built.instructions == ["swap(500000000)", "assert(73260000)"]


def test_an_order_taken_over_mid_execution_needs_nothing_written_first() -> None:
    def never(order: OrderRequested, routed: Routed) -> Transaction:
        raise AssertionError("built again")

    assert decisions.execute(state_of("building"), never) == []
    assert decisions.execute(state_of("submitted"), never) == []


def test_a_last_failed_attempt_whose_end_is_missing_ends_the_order() -> None:
    [ended] = made(decisions.execute(state_of("giving_up"), build))
    assert isinstance(ended, Failed)
    assert (ended.seq, ended.reason, ended.attempts) == (5, "attempts_exhausted", 3)
    assert ended.error == "failed after 3 attempts; last error: RPC node timed out"


@pytest.mark.parametrize("name", ["pending", "opening", "open", "triggered", "rerouting",
                                  "confirmed", "failed", "cancelled", "expired"])
def test_execution_is_refused_when_the_order_is_not_the_executors(name: str) -> None:
    refused = decisions.execute(state_of(name), build)
    assert isinstance(refused, Refused) and refused.reason == "not_its_turn"


def test_a_landing_is_submitted_once() -> None:
    state = state_of("building")
    [sent] = decisions.land(state, landing(attempt=2, signature="sig-2"))
    assert sent == Submitted(order_id="o-1", seq=4, at=sent.at, tx_hash="sig-2", attempt=2)
    state.apply(sent)
    assert decisions.land(state, landing(attempt=2, signature="sig-2")) == []


def test_a_confirmation_ends_the_order_at_what_the_landing_gave() -> None:
    [done] = decisions.confirm(state_of("submitted"), landing(attempt=2))
    assert isinstance(done, Confirmed)
    assert (done.seq, done.tx_hash, done.attempt, done.dex) == (5, builders.TX, 2, "raydium")
    assert (done.amount_in, done.amount_out, done.min_amount_out) == (
        500_000_000, 73_900_000, 73_260_000)
    assert (done.executed_price, done.simulated_ms) == (147.8, 2_500.0)


@pytest.mark.parametrize(("kind", "attempt", "waiting", "moves"), [
    ("transient", 1, False, ["AttemptFailed:retry"]),
    ("transient", 2, False, ["AttemptFailed:retry"]),
    ("transient", 3, False, ["AttemptFailed:give_up", "Failed"]),
    ("transient", 3, True, ["AttemptFailed:give_up", "Failed"]),
    ("slippage", 1, False, ["AttemptFailed:reroute"]),
    ("slippage", 3, False, ["AttemptFailed:give_up", "Failed"]),
    ("slippage", 3, True, ["AttemptFailed:reroute"]),
    ("expired", 2, False, ["AttemptFailed:reroute"]),
    ("expired", 3, True, ["AttemptFailed:reroute"]),
])
def test_a_failed_attempt_retries_reroutes_or_ends(kind: lifecycle.FailureKind, attempt: int,
                                                    waiting: bool, moves: list[str]) -> None:
    story = STORIES["building"] if not waiting else [limit(), opened(), triggered(),
                                                     builders.routed(seq=4),
                                                     builders.built(seq=5)]
    state = fold("o-1", story)
    decided = decisions.fail_attempt(state, attempt, Failure(kind, "it broke"),
                                     max_attempts=3, retry_base_ms=100)
    assert [e.move for e in decided] == moves


@given(kind=st.sampled_from(["transient", "slippage", "expired"]),
       attempt=st.integers(1, 6), max_attempts=st.integers(1, 6), waiting=st.booleans(),
       base=st.sampled_from([0.0, 50.0, 500.0]))
def test_every_failed_attempt_is_recorded_and_the_last_ends_the_order(
        kind: lifecycle.FailureKind, attempt: int, max_attempts: int, waiting: bool,
        base: float) -> None:
    story = STORIES["building"] if not waiting else [limit(), opened(), triggered(),
                                                     builders.routed(seq=4),
                                                     builders.built(seq=5)]
    state = fold("o-1", story)
    decided = decisions.fail_attempt(state, attempt, Failure(kind, "it broke"),
                                     max_attempts=max_attempts, retry_base_ms=base)
    first = decided[0]
    assert isinstance(first, AttemptFailed)
    assert (first.seq, first.attempt, first.error, first.kind) == (
        state.last_seq + 1, attempt, "it broke", kind)
    given_up = attempt >= max_attempts and not (waiting and kind != "transient")
    assert first.retryable is not given_up
    assert first.retry_in_ms == (base * 2 ** (attempt - 1) if first.move.endswith("retry")
                                 else None)
    if given_up:
        [_, ended] = decided
        assert isinstance(ended, Failed) and ended.seq == first.seq + 1
        assert ended.attempts == attempt and ended.reason == lifecycle.FAIL_REASON[kind]
        assert ended.error == f"failed after {attempt} attempts; last error: it broke"
    else:
        assert len(decided) == 1
    assert lifecycle.walk([*(e.move for e in story), *(e.move for e in decided)])


def test_the_backoff_doubles() -> None:
    assert [decisions.backoff_ms(n, 500) for n in (1, 2, 3, 4)] == [500, 1_000, 2_000, 4_000]
    assert decisions.backoff_ms(3, 0) == 0


# --- wait, fire, expire ----------------------------------------------------------------------


def test_a_new_waiting_order_opens_unless_its_deadline_passed() -> None:
    deadline = builders.T0 + timedelta(seconds=30)
    [opens] = decisions.open_waiting(limit(), T0)
    assert opens == OrderOpened(order_id="o-1", seq=2, at=opens.at)
    [opens] = decisions.open_waiting(limit(expires_at=deadline), T0 + 29.9)
    assert isinstance(opens, OrderOpened) and opens.seq == 2
    [ends] = decisions.open_waiting(limit(expires_at=deadline), T0 + 30)
    assert isinstance(ends, Expired) and (ends.seq, ends.expires_at) == (2, deadline)


def test_an_open_order_expires_at_its_deadline_not_before() -> None:
    deadline = builders.T0 + timedelta(seconds=30)
    order = limit(expires_at=deadline)
    assert decisions.expire(order, 4, T0 + 29.999) == []
    [ends] = decisions.expire(order, 4, T0 + 30)
    assert ends == Expired(order_id="o-1", seq=5, at=ends.at, expires_at=deadline)
    assert decisions.expire(limit(), 4, T0 + 10**9) == []


def test_the_market_meets_a_limit_at_its_own_price() -> None:
    assert decisions.meets(limit(), 75_000_000)
    assert not decisions.meets(limit(), 74_999_999)
    assert decisions.meets(sniper(), 1)  # no maxPrice: any fill


def test_a_fired_order_goes_to_the_router_or_with_its_fill_to_the_executor() -> None:
    [fired] = decisions.fire(limit(), 2, 151.0, "crossed")
    assert fired == Triggered(order_id="o-1", seq=3, at=fired.at, price=151.0,
                              reason="crossed")
    assert fired.move == "Triggered" and fired.fill is UNSET and fired.pushed == 0
    fill = builders.direct(amount_out=80_000_000)
    fired, routed = decisions.fire(sniper(), 2, 160.0, "launched", ahead=7, fill=fill)
    assert isinstance(fired, Triggered) and isinstance(routed, Routed)
    assert (fired.seq, fired.pushed, fired.fill, fired.move) == (3, 7, fill,
                                                                "Triggered:routed")
    assert (routed.seq, routed.route, routed.pushed) == (4, fill, 7)
    assert lifecycle.walk(e.move for e in [sniper(), opened(), fired, routed]) == "routing"


@pytest.mark.parametrize("name", sorted(lifecycle.STATES))
def test_the_trigger_watches_open_orders_and_keeps_those_opening(name: str) -> None:
    state = state_of(name)
    assert decisions.is_watched(state) == (name == "open")
    assert decisions.is_opening(state) == (name == "opening")
    # What a client sees of it is still pending or open: it is not routed yet.
    assert decisions.still_waits(state) == (name in ("pending", "opening", "open", "triggered"))


# --- cancel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["opening", "open"])
def test_a_waiting_order_is_cancelled_by_its_account(name: str) -> None:
    [cancelled] = made(decisions.cancel(state_of(name), "desk-1"))
    assert cancelled == Cancelled(order_id="o-1", seq=state_of(name).last_seq + 1,
                                  at=cancelled.at, account="desk-1")


def test_cancelling_a_cancelled_order_again_succeeds_and_writes_nothing() -> None:
    assert decisions.cancel(state_of("cancelled"), "desk-1") == []


def test_a_fired_order_cannot_be_cancelled_and_the_refusal_says_why() -> None:
    assert decisions.cancel(state_of("triggered"), "desk-1") == Refused(
        "not_open", "order o-1 is open (it was triggered and is being routed); "
                    "only an open order can be cancelled")


@pytest.mark.parametrize(("name", "status"), [
    ("pending", "pending"), ("routing", "routing"), ("rerouting", "building"),
    ("confirmed", "confirmed"), ("expired", "expired"), ("failed", "failed"),
])
def test_any_other_order_refuses_a_cancel_naming_its_status(name: str, status: str) -> None:
    assert decisions.cancel(state_of(name), "desk-1") == Refused(
        "not_open", f"order o-1 is {status}; only an open order can be cancelled")


# --- give up ---------------------------------------------------------------------------------


def test_a_dead_letter_ends_an_unfinished_order_failed_with_its_reason() -> None:
    [ended] = made(decisions.give_up(state_of("submitted"), "handler crashed 5 times"))
    assert ended == Failed(order_id="o-1", seq=5, at=ended.at, reason="dead_lettered",
                           error="handler crashed 5 times", attempts=0)


@pytest.mark.parametrize("name", sorted(lifecycle.TERMINAL))
def test_an_ended_order_is_not_given_up(name: str) -> None:
    refused = decisions.give_up(state_of(name), "late")
    assert isinstance(refused, Refused) and refused.reason == "ended"


def test_an_order_without_events_is_not_given_up() -> None:
    refused = decisions.give_up(OrderState(order_id="o-9"), "lost")
    assert refused == Refused("unknown_order", "order o-9 has no event")
