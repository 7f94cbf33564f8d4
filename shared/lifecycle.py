"""An order's lifecycle: one pure state machine.

The machine reads moves, not event classes: a move is an event's type, except that a failed
attempt is one of three moves (retry, reroute, give up), because what comes after it depends
on which. Every move lands on one fixed state, whatever state it leaves; the table says only
from which states each move is allowed. Two things follow:

* an order's state is the target of its latest move, so folding its events in any order
  (as the persister does with batches) gives the state that stepping them in seq order gives;
* the event store can refuse a disallowed move from a compact table of (state, move) pairs,
  inside the script that appends (see ``shared.stream``).

States are the client-visible statuses plus two the client sees as ``building``: an order
whose attempt failed on price or age and waits for a new route, and one whose last attempt
failed and has only its ``Failed`` left to write; one the client sees as ``pending``: a
waiting order the trigger has not opened yet; and one the client sees as ``open``: a
waiting order whose trigger fired and that the router has not routed yet. To add a state,
add it to ``Status`` (or ``State``), give it a row in ``_ALLOWED``, and give the new moves
their target in ``_TARGET``.

Waiting orders (limit and sniper) are requested with their own move,
``OrderRequested:waiting``, which goes to the trigger service instead of the router. The
trigger opens them (``OrderOpened``), fires them (``Triggered``) or expires them
(``Expired``); the gateway cancels them (``Cancelled``). ``Triggered`` and ``Cancelled`` are
both allowed only from ``open``, so when they race the store keeps exactly one. A waiting
order that cannot be executed at its bound goes back to ``open`` (``Reopened``).

A sniper fired on its launched pool is one move more, ``Triggered:routed``: the trigger
priced its route there and appends its ``Routed`` in the same call, so the fired order goes
straight to the executor and the router never sees it.

Nothing here imports the events: the machine speaks in type names, which are also what the
store's script sees. What each service does next, within what the machine allows, is
decided in ``shared.decisions``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal, get_args

Status = Literal[
    "pending", "open", "routing", "building", "submitted", "confirmed", "failed", "cancelled",
    "expired",
]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
TERMINAL: Final[frozenset[Status]] = frozenset({"confirmed", "failed", "cancelled", "expired"})

# What a client sees of a waiting order until it is routed: its own deadline is its clock.
WAITING_STATUSES: Final[frozenset[Status]] = frozenset({"pending", "open"})

State = Literal[Status, "rerouting", "giving_up", "opening", "triggered"]
STATES: Final[tuple[State, ...]] = (*STATUSES, "rerouting", "giving_up", "opening", "triggered")

FailureKind = Literal["transient", "slippage", "expired"]
FailReason = Literal[
    "attempts_exhausted", "slippage_exceeded", "quote_expired", "no_route", "dead_lettered"
]
Service = Literal["router", "executor", "trigger"]

# The state every move lands on.
_TARGET: Final[Mapping[str, State]] = {
    "OrderRequested": "pending",
    "OrderRequested:waiting": "opening",
    "OrderOpened": "open",
    "Triggered": "triggered",
    "Triggered:routed": "triggered",
    "Reopened": "open",
    "Cancelled": "cancelled",
    "Expired": "expired",
    "Routed": "routing",
    "Built": "building",
    "Submitted": "submitted",
    "AttemptFailed:retry": "building",
    "AttemptFailed:reroute": "rerouting",
    "AttemptFailed:give_up": "giving_up",
    "Rerouted": "building",
    "Confirmed": "confirmed",
    "Failed": "failed",
}

# The moves each state allows; None is an order with no event yet. Failed is allowed from
# every state that is not an end: the router ends an order it cannot route, and any worker
# one whose entry it could not finish (dead letter).
_ALLOWED: Final[Mapping[State | None, frozenset[str]]] = {
    None: frozenset({"OrderRequested", "OrderRequested:waiting"}),
    "pending": frozenset({"Routed", "Failed"}),
    # A waiting order may expire before the trigger opened it (a deadline missed while the
    # trigger was down), and may be cancelled then too.
    "opening": frozenset({"OrderOpened", "Cancelled", "Expired", "Failed"}),
    "open": frozenset({"Triggered", "Triggered:routed", "Cancelled", "Expired", "Failed"}),
    "triggered": frozenset({"Routed", "Failed"}),
    "routing": frozenset({"Built", "Failed"}),
    "building": frozenset({
        "Submitted", "AttemptFailed:retry", "AttemptFailed:reroute", "AttemptFailed:give_up",
        "Failed",
    }),
    # A waiting order whose execution would land below its bound waits again.
    "rerouting": frozenset({"Rerouted", "Reopened", "Failed"}),
    "giving_up": frozenset({"Failed"}),
    "submitted": frozenset({"Confirmed", "Failed"}),
    "confirmed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}

# The service whose turn it is in each state; the states missing here wait for nobody.
ACTOR: Final[Mapping[State, Service]] = {
    "pending": "router",
    "opening": "trigger",
    "open": "trigger",
    "triggered": "router",
    "rerouting": "router",
    "routing": "executor",
    "building": "executor",
    "giving_up": "executor",
    "submitted": "executor",
}

# The moves that hand an order to another service: the event goes to that service's queue.
# After its own moves (Built, Submitted, a retry) the executor carries on in hand.
HANDS_OVER: Final[Mapping[str, Service]] = {
    "OrderRequested": "router",
    "AttemptFailed:reroute": "router",
    "Routed": "executor",
    "Rerouted": "executor",
    "OrderRequested:waiting": "trigger",
    "Reopened": "trigger",
    "Triggered": "router",
    # The trigger forgets a cancelled order (an expired one it ended itself).
    "Cancelled": "trigger",
}

# The event types that end an order (whatever their move), as PostgreSQL and the log name them.
TERMINAL_TYPES: Final[frozenset[str]] = frozenset(
    move.partition(":")[0] for move, state in _TARGET.items() if not _ALLOWED[state])

FAIL_REASON: Final[Mapping[FailureKind, FailReason]] = {
    "transient": "attempts_exhausted",
    "slippage": "slippage_exceeded",
    "expired": "quote_expired",
}


class NotAllowed(ValueError):
    """A move the order's state does not allow."""


def attempt_move(kind: FailureKind, retryable: bool) -> str:
    """The move of a failed attempt: sent again, routed again first, or the last one."""
    if not retryable:
        return "AttemptFailed:give_up"
    return "AttemptFailed:retry" if kind == "transient" else "AttemptFailed:reroute"


def after_failure(kind: FailureKind, attempt: int, max_attempts: int,
                  waiting: bool = False) -> str:
    """What comes after attempt ``attempt`` failed: the move to record. A waiting order that
    failed on price or age is never given up: it goes back to wait for its price (or its
    deadline), so its attempts are not counted against it."""
    if waiting and kind != "transient":
        return attempt_move(kind, retryable=True)
    return attempt_move(kind, retryable=attempt < max_attempts)


def target(move: str) -> State:
    return _TARGET[move]


def allows(state: State | None, move: str) -> bool:
    return move in _ALLOWED[state]


def step(state: State | None, move: str) -> State:
    """The state after ``move``; NotAllowed if ``state`` does not allow it."""
    if not allows(state, move):
        raise NotAllowed(f"{move} is not allowed in state {state or 'new'}")
    return _TARGET[move]


def walk(moves: Iterable[str]) -> State | None:
    """Step through an order's moves in seq order, from no event at all."""
    state: State | None = None
    for move in moves:
        state = step(state, move)
    return state


def status_of(state: State) -> Status:
    """What a client sees: the waits between attempts are still ``building``; a waiting
    order is ``pending`` until it is watched, and still ``open`` once fired until it is
    routed."""
    if state in ("rerouting", "giving_up"):
        return "building"
    if state == "opening":
        return "pending"
    if state == "triggered":
        return "open"
    assert state in STATUSES
    return state


def sets_status(event_type: str) -> Status | None:
    """The status an event type sets, or None where the client's status stays as it was
    (a failed attempt, a new route)."""
    return _SETS_STATUS.get(event_type)


def is_terminal(state: State | None) -> bool:
    return state is not None and not _ALLOWED[state]


def lua_allowed() -> list[str]:
    """Every allowed (state, move) pair as ``state|move``, ``|move`` for a new order: the
    table the store's script checks against."""
    return sorted(f"{state or ''}|{move}" for state, moves in _ALLOWED.items() for move in moves)


def _status_setters() -> dict[str, Status]:
    """Event type -> the status it moves a client to. A type whose moves never change what
    a client sees (a failed attempt, a new route) sets none, so it sends no status message;
    the table must not have a type that changes the status from some states only."""
    changes: dict[str, set[bool]] = {}
    for state, moves in _ALLOWED.items():
        for move in moves:
            before = status_of(state) if state is not None else None
            changes.setdefault(move.partition(":")[0], set()).add(
                before != status_of(_TARGET[move]))
    assert all(len(kinds) == 1 for kinds in changes.values()), changes
    return {move.partition(":")[0]: status_of(state) for move, state in _TARGET.items()
            if changes[move.partition(":")[0]] == {True}}


_SETS_STATUS: Final[Mapping[str, Status]] = _status_setters()
