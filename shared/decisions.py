"""What happens next to an order: one pure function per command. No I/O here.

Each command takes the order's state (``shared.order``) and its input (what the market
quoted, what the chain answered, the account, the time, a setting) and returns the events
to append, or a ``Refused`` that says why nothing is. The services only consume, ask here,
and append; the store still has the last word (``shared.lifecycle``): a decision made on a
state that moved on meanwhile is dropped there, so deciding twice is harmless.

The seq of every event made here is decided here too. An event caused by another takes the
cause's seq + 1, so a service that handles the same cause twice makes the same (order,
seq) and the store drops the copy; the executor and the gateway, which act on what they
have read, take the order's last seq + 1.

An order that has only its request (a new market order for the router, a new waiting order
for the trigger) is decided on from the request itself: its state is nothing more, and its
service never reads its history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal, Protocol

import msgspec
from msgspec import UNSET

from shared import lifecycle
from shared.events import (
    AttemptFailed,
    Built,
    Cancelled,
    Confirmed,
    Event,
    Expired,
    Failed,
    OrderOpened,
    OrderRequested,
    Quote,
    Reopened,
    Rerouted,
    Routed,
    Submitted,
    Triggered,
)
from shared.lifecycle import FailureKind
from shared.order import OrderState
from shared.route import Candidate
from shared.routing import Decision, NoRoute
from shared.waiting import execution_bound, own_bound, routed_on_launch

Reason = Literal["not_its_turn", "not_open", "ended", "unknown_order"]


class Refused(msgspec.Struct, frozen=True):
    """A command the order's state does not allow now: nothing is appended."""

    reason: Reason
    message: str


def _not_its_turn(state: OrderState, command: str) -> Refused:
    if state.requested is None:
        return Refused("unknown_order", f"order {state.order_id} has no request to {command}")
    return Refused("not_its_turn",
                   f"order {state.order_id} is {state.state}: not the time to {command} it")


# --- submit (the gateway) -------------------------------------------------------------------


def submit(requested: OrderRequested) -> list[Event]:
    """A new order: its validated request is its first event. A second request with the
    same order id (a retried submit) is the store's to drop."""
    return [requested]


# --- route (the router) ---------------------------------------------------------------------


class Routing(msgspec.Struct, frozen=True):
    """An order the router is to route, asked before it asks the venues: its terms, the
    seq its route takes, whether it is routed again after a failed attempt, and how much
    of a launched pool's quote token the snipers fired before it at its launch bought in
    (its route is priced on the pool as they leave it)."""

    order: OrderRequested
    seq: int
    again: bool = False
    ahead: int = 0


def route_request(requested: OrderRequested) -> Routing:
    """A new market order: routed for the first time."""
    return Routing(requested, requested.seq + 1)


def route_fired(state: OrderState, fired: Triggered) -> Routing | Refused:
    """A waiting order whose condition was met: routed as a market order is, as long as
    nothing came after its trigger."""
    if state.requested is None or state.state != "triggered":
        return _not_its_turn(state, "route")
    return Routing(state.requested, fired.seq + 1, ahead=fired.pushed)


def route_again(state: OrderState, failed: AttemptFailed) -> Routing | Refused:
    """An attempt failed on price or age: a new route, on a sniper's launched pool as the
    snipers fired before it left it, as the first time."""
    if state.requested is None or state.actor != "router":
        return _not_its_turn(state, "route")
    ahead = state.fired.pushed if state.fired is not None else 0
    return Routing(state.requested, failed.seq + 1, again=True, ahead=ahead)


def route(routing: Routing, found: Decision | NoRoute, quotes: list[Quote],
          launched: bool) -> list[Event]:
    """The market's answer as the order's next event: its route (``Rerouted`` when routed
    again); ``Failed`` when the market has none; ``Reopened`` for a waiting order whose new
    route falls below its own bound, so that it waits for its price again. ``launched``:
    the order's tokenOut was launched on the market (a sniper's route then carries how far
    the snipers before it pushed the pool)."""
    order, seq = routing.order, routing.seq
    if isinstance(found, NoRoute):
        return [Failed(order_id=order.order_id, seq=seq, reason="no_route", error=str(found),
                       attempts=0)]
    best = found.best
    # A waiting order never fills below its own price: that raises the bound.
    bound = execution_bound(order, found.min_amount_out)
    if routing.again and order.is_waiting and best.amount_out < bound:
        return [Reopened(order_id=order.order_id, seq=seq, reason=(
            f"the route gives {best.amount_out}, below the bound {bound}"))]
    kind = Rerouted if routing.again else Routed
    sniped = order.order_type == "sniper" and launched
    return [kind(
        order_id=order.order_id, seq=seq, dex=best.venues, route=best,
        candidates=found.candidates, quotes=quotes, amount_out=best.amount_out,
        min_amount_out=bound, reason=found.reason, pushed=routing.ahead if sniped else UNSET,
    )]


# --- execute (the executor) -----------------------------------------------------------------


class Transaction(msgspec.Struct, frozen=True):
    """The swap as built: its instructions, and whether native SOL is wrapped before it
    and unwrapped after."""

    instructions: list[str]
    wraps_sol: bool
    unwraps_sol: bool


class Landing(Protocol):
    """An attempt that landed on the chain, as the chain records it."""

    @property
    def signature(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def amount_out(self) -> int: ...
    @property
    def executed_price(self) -> float: ...
    @property
    def latency_ms(self) -> float: ...


class Failure(msgspec.Struct, frozen=True):
    """An attempt that did not land: why, and what kind of failure it was."""

    kind: FailureKind
    error: str


Build = Callable[[OrderRequested, Routed], Transaction]


def execute(state: OrderState, build: Build) -> list[Event] | Refused:
    """The executor takes a routed order. A new route is built (``Built``, with what
    ``build`` makes of the order and its route); an order whose last attempt failed and
    whose end was not written yet ends (``Failed``); one taken over mid-execution needs
    nothing written first (an empty list): whatever already landed is its result. Refused
    when the order is not the executor's (waiting for a new route, or ended)."""
    if state.actor != "executor" or state.requested is None or state.routed is None:
        return _not_its_turn(state, "execute")
    if state.state == "giving_up" and state.last_failure is not None:
        return [_given_up(state.last_failure, state.last_seq + 1)]
    if state.state == "routing":
        # Nothing can have been sent before Built is in.
        transaction = build(state.requested, state.routed)
        return [Built(
            order_id=state.order_id, seq=state.last_seq + 1, dex=state.routed.dex,
            instructions=transaction.instructions, wraps_sol=transaction.wraps_sol,
            unwraps_sol=transaction.unwraps_sol,
        )]
    return []


def land(state: OrderState, landing: Landing) -> list[Event]:
    """An attempt landed: ``Submitted``, unless the order already says so (taken over)."""
    if state.tx_hash == landing.signature:
        return []
    return [Submitted(order_id=state.order_id, seq=state.last_seq + 1,
                      tx_hash=landing.signature, attempt=landing.attempt)]


def fail_attempt(state: OrderState, attempt: int, failure: Failure, *, max_attempts: int,
                 retry_base_ms: float) -> list[Event]:
    """Attempt ``attempt`` failed: sent again after a backoff (transient), routed again
    first (price or age), or, after the last attempt, the order ends ``Failed``. A waiting
    order that failed on price or age is never given up: it goes back to wait."""
    waiting = state.requested is not None and state.requested.is_waiting
    move = lifecycle.after_failure(failure.kind, attempt, max_attempts, waiting=waiting)
    failed = AttemptFailed(
        order_id=state.order_id, seq=state.last_seq + 1, attempt=attempt, error=failure.error,
        retryable=move != "AttemptFailed:give_up",
        retry_in_ms=backoff_ms(attempt, retry_base_ms) if move == "AttemptFailed:retry"
        else None,
        kind=failure.kind,
    )
    if failed.retryable:
        return [failed]
    return [failed, _given_up(failed, failed.seq + 1)]


def confirm(state: OrderState, landing: Landing) -> list[Event]:
    """The landed attempt is confirmed: the order ends ``Confirmed``, at what it gave."""
    assert state.requested is not None and state.routed is not None
    return [Confirmed(
        order_id=state.order_id, seq=state.last_seq + 1, tx_hash=landing.signature,
        attempt=landing.attempt, dex=state.routed.dex, amount_in=state.requested.amount_in,
        amount_out=landing.amount_out, min_amount_out=state.routed.min_amount_out,
        executed_price=landing.executed_price, simulated_ms=landing.latency_ms,
    )]


def backoff_ms(attempt: int, base_ms: float) -> float:
    """Delay before the attempt after ``attempt``: base, 2 x base, 4 x base, ..."""
    return float(base_ms * 2 ** (attempt - 1))


def _given_up(last: AttemptFailed, seq: int) -> Failed:
    return Failed(
        order_id=last.order_id, seq=seq, reason=lifecycle.FAIL_REASON[last.kind],
        error=f"failed after {last.attempt} attempts; last error: {last.error}",
        attempts=last.attempt,
    )


# --- wait, fire, expire (the trigger) -------------------------------------------------------


def open_waiting(requested: OrderRequested, now: float) -> list[Event]:
    """A new waiting order is watched from now on (``OrderOpened``), or ends ``Expired``
    if its deadline passed before the trigger got to it."""
    return (expire(requested, requested.seq, now)
            or [OrderOpened(order_id=requested.order_id, seq=requested.seq + 1)])


def meets(order: OrderRequested, amount_out: int, least_out: int | None = None) -> bool:
    """Whether a route that gives ``amount_out`` fills the order at its own price;
    ``least_out``: the order's ``own_bound``, where the caller keeps it."""
    return amount_out >= (own_bound(order) if least_out is None else least_out)


def fire(order: OrderRequested, last_seq: int, price: float, reason: str, *,
         ahead: int = 0, fill: Candidate | None = None) -> list[Event]:
    """An open order the market meets goes to be routed (``Triggered``). A sniper fired on
    its launched pool comes with its route there (``fill``): its ``Routed`` goes in with
    it, straight to the executor. ``ahead``: how much of the launched pool's quote token
    the snipers fired before it at the same launch bought in."""
    triggered = Triggered(order_id=order.order_id, seq=last_seq + 1, price=price,
                          reason=reason, pushed=ahead, fill=UNSET if fill is None else fill)
    if fill is None:
        return [triggered]
    return [triggered, routed_on_launch(order, last_seq + 2, fill, ahead)]


def expire(order: OrderRequested, last_seq: int, now: float) -> list[Event]:
    """An open order whose deadline passed ends ``Expired``; one not due yet waits on."""
    deadline = order.expires_at
    if not isinstance(deadline, datetime) or deadline.timestamp() > now:
        return []
    return [Expired(order_id=order.order_id, seq=last_seq + 1, expires_at=deadline)]


def is_watched(state: OrderState) -> bool:
    """An open waiting order: the trigger watches its price, its launch and its
    deadline."""
    return (state.state == "open" and state.requested is not None
            and state.requested.is_waiting)


def is_opening(state: OrderState) -> bool:
    """A waiting order the trigger has not opened yet (or is opening now)."""
    return state.state == "opening"


def still_waits(state: OrderState) -> bool:
    """A waiting order not routed yet: what a client sees of it is still ``pending`` or
    ``open``, and its own deadline is its only clock."""
    return state.status in lifecycle.WAITING_STATUSES


# --- cancel (the gateway) -------------------------------------------------------------------

# A fired order is past cancelling, though a client still sees it open: the refusal says why.
_FIRED = " (it was triggered and is being routed)"


def cancel(state: OrderState, account_name: str) -> list[Event] | Refused:
    """The client cancels a waiting order: allowed until it is fired (``Cancelled``); an
    order already cancelled stays so, and nothing is written (a repeated cancel succeeds).
    Anything else is refused ``not_open``, naming the order's status."""
    if lifecycle.allows(state.state, "Cancelled"):
        return [Cancelled(order_id=state.order_id, seq=state.last_seq + 1,
                          account=account_name)]
    if state.state == "cancelled":
        return []
    fired = _FIRED if state.state == "triggered" else ""
    return Refused("not_open", f"order {state.order_id} is {state.status}{fired}; "
                               "only an open order can be cancelled")


# --- give up (any worker's dead letter) -----------------------------------------------------


def give_up(state: OrderState, reason: str) -> list[Event] | Refused:
    """No consumer could finish an entry of the order: it ends ``Failed``, with the reason,
    unless it has ended already."""
    if state.state is None:
        return Refused("unknown_order", f"order {state.order_id} has no event")
    if lifecycle.is_terminal(state.state):
        return Refused("ended", f"order {state.order_id} has ended {state.status}")
    return [Failed(order_id=state.order_id, seq=state.last_seq + 1, reason="dead_lettered",
                   error=reason, attempts=0)]
