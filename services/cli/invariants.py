"""What an audit checks, as pure functions over events: no I/O here, so each invariant is
unit-tested on its own and the same checks run on PostgreSQL, on Redis and on an export.

An ``Auditor`` is fed one whole order at a time (its events in any order), then, where a
live system is at hand, the projection row, the chain's landings and the stream entries of
each order; ``finish`` returns the report: per invariant how much was checked and every
offender, named by order.

``endings`` judges a set of accepted orders the way a load that submitted them sees them
(``oee soak``): each reached exactly one terminal state, in PostgreSQL and in the log, or
still waits within its own deadline, and none executed twice. What is terminal, and what
still waits, is the lifecycle's to say.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import msgspec

from shared import decisions, lifecycle
from shared.config import Settings
from shared.decisions import backoff_ms
from shared.events import AnyEvent, Confirmed, Event, Routed, Submitted
from shared.order import OrderState, fold
from shared.stream import Entry

# In the order the report lists them.
INVARIANTS: tuple[str, ...] = (
    "seq",          # seq runs 1..n without gaps or repeats
    "terminal",     # at most one terminal event, and it is the last one
    "forward",      # the status never moves back
    "min_out",      # every Confirmed gives at least the minAmountOut of the route in force
    "signatures",   # no two attempts share a signature
    "deadline",     # an order not yet terminal is still within its deadline
    "projection",   # the orders row agrees with the log (status, last seq)
    "chain",        # a confirmed order landed exactly once, a failed one never
    "stream",       # what Redis still holds is in PostgreSQL, identical
)

class Violation(msgspec.Struct, frozen=True, rename="camel"):
    invariant: str
    order_id: str
    detail: str


class Tally(msgspec.Struct, kw_only=True):
    checked: int = 0
    violations: int = 0
    # Why the invariant was not checked, or what the count leaves out.
    note: str | None = None
    skipped: bool = False


class Report(msgspec.Struct, kw_only=True, rename="camel"):
    orders: int = 0
    events: int = 0
    invariants: dict[str, Tally] = msgspec.field(
        default_factory=lambda: {name: Tally() for name in INVARIANTS})
    violations: list[Violation] = msgspec.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, invariant: str, order_id: str, detail: str) -> None:
        self.invariants[invariant].violations += 1
        self.violations.append(Violation(invariant, order_id, detail))

    def skip(self, invariant: str, note: str) -> None:
        tally = self.invariants[invariant]
        tally.skipped, tally.note = True, note


class Landed(msgspec.Struct, frozen=True):
    """One attempt of an order found on the simulated chain."""

    attempt: int
    signature: str
    amount_out: int


def deadline(settings: Settings) -> timedelta:
    """How long an accepted order may stay open before the audit calls it stuck.

    Each attempt may wait for its quotes, execute with a route up to ``quote_max_age_ms``
    old (an older one is routed again), take the slowest execution time, then back off for
    the longest retry delay; ``max_attempts`` of those. On top, the margin a crash adds: a
    dead consumer's entries are claimed after ``claim_idle_ms``, and an entry is dead-
    lettered (its order failed) after ``max_deliveries`` deliveries; plus a minute for
    restarts and the persister's lag."""
    attempt_ms = (settings.quote_latency_ms + settings.quote_max_age_ms
                  + settings.execution_latency_ms.high
                  + backoff_ms(settings.max_attempts, settings.retry_base_ms))
    margin_ms = settings.max_deliveries * settings.claim_idle_ms + 60_000
    return timedelta(milliseconds=settings.max_attempts * attempt_ms + margin_ms)


class Auditor:
    def __init__(self, now: datetime, deadline: timedelta) -> None:
        self.now, self.deadline = now, deadline
        self.report = Report()
        # signature -> the (order, attempt) pairs that carry it.
        self._signatures: dict[str, set[tuple[str, int]]] = defaultdict(set)
        self._open_in_time = 0
        # Confirmed orders whose landing the chain has let go of.
        self._released = 0

    def order(self, order_id: str, events: Sequence[AnyEvent]) -> OrderState:
        """The checks of the log alone; returns the order's state folded from it."""
        ordered = sorted(events, key=lambda e: e.seq)
        self.report.orders += 1
        self.report.events += len(ordered)
        self._seq(order_id, ordered)
        self._terminal(order_id, ordered)
        self._forward(order_id, ordered)
        self._min_out(order_id, ordered)
        for event in ordered:
            if isinstance(event, Submitted | Confirmed):
                self._signatures[event.tx_hash].add((order_id, event.attempt))
        state = fold(order_id, ordered)
        self._deadline(order_id, ordered, state)
        return state

    def _seq(self, order_id: str, events: Sequence[Event]) -> None:
        self.report.invariants["seq"].checked += 1
        seqs = [e.seq for e in events]
        if seqs == list(range(1, len(seqs) + 1)):
            return
        present = set(seqs)
        problems = []
        if missing := sorted(set(range(1, max(seqs) + 1)) - present):
            problems.append(f"seq {_list(missing)} missing")
        if repeated := sorted({s for s in seqs if seqs.count(s) > 1}):
            problems.append(f"seq {_list(repeated)} more than once")
        if outside := sorted(s for s in present if s < 1):
            problems.append(f"seq {_list(outside)} below 1")
        self.report.add("seq", order_id, f"{'; '.join(problems)} (has {_list(seqs)})")

    def _terminal(self, order_id: str, events: Sequence[Event]) -> None:
        self.report.invariants["terminal"].checked += 1
        terminals = [e for e in events if e.is_terminal]
        if len(terminals) > 1:
            found = ", ".join(f"{e.type} at seq {e.seq}" for e in terminals)
            self.report.add("terminal", order_id, f"{len(terminals)} terminal events: {found}")
        elif terminals and terminals[0].seq != events[-1].seq:
            end, last = terminals[0], events[-1]
            self.report.add("terminal", order_id, f"{end.type} at seq {end.seq} is followed by "
                                                  f"{last.type} at seq {last.seq}")

    def _forward(self, order_id: str, events: Sequence[Event]) -> None:
        """Every event is a move the lifecycle allows from where the order stood: so a
        status only moves forward, and a waiting order goes back to ``open`` only by the
        move that exists for that (``Reopened``)."""
        self.report.invariants["forward"].checked += 1
        state: lifecycle.State | None = None
        for event in events:
            try:
                state = lifecycle.step(state, event.move)
            except (lifecycle.NotAllowed, KeyError):
                self.report.add("forward", order_id,
                                f"{event.type} at seq {event.seq} is not allowed after "
                                f"{state or 'nothing'}")
                return

    def _min_out(self, order_id: str, events: Sequence[Event]) -> None:
        route: Routed | None = None
        for event in events:
            if isinstance(event, Routed):  # Rerouted too: the route in force is the latest
                route = event
            elif isinstance(event, Confirmed):
                self.report.invariants["min_out"].checked += 1
                if route is None:
                    self.report.add("min_out", order_id,
                                    f"Confirmed at seq {event.seq} without a route before it")
                elif event.amount_out < route.min_amount_out:
                    self.report.add(
                        "min_out", order_id,
                        f"Confirmed amountOut {event.amount_out} below minAmountOut "
                        f"{route.min_amount_out} of the {route.type} at seq {route.seq}")

    def _deadline(self, order_id: str, events: Sequence[Event], state: OrderState) -> None:
        self.report.invariants["deadline"].checked += 1
        if state.is_terminal:
            return
        started = _clock_start(events, state)
        if started is None or self.now - started <= self.deadline:
            self._open_in_time += 1
            return
        self.report.add("deadline", order_id,
                        f"still {state.status or 'without a status'} "
                        f"{_span(self.now - started)} after its first event, "
                        f"past the {_span(self.deadline)} deadline")

    def projection(self, order_id: str, state: OrderState | None,
                   row: tuple[str, int] | None) -> None:
        """The orders row (status, last seq) against the state the log folds to; either may
        be missing."""
        self.report.invariants["projection"].checked += 1
        if state is None:
            self.report.add("projection", order_id, "in orders, but no event in the log")
        elif row is None:
            self.report.add("projection", order_id, "in the log, but not in orders")
        elif row != (state.status, state.last_seq):
            self.report.add(
                "projection", order_id,
                f"orders has status {row[0]} at seq {row[1]}; "
                f"the log says {state.status} at seq {state.last_seq}")

    def landings(self, order_id: str, events: Sequence[AnyEvent],
                 landed: Sequence[Landed]) -> None:
        """The chain's landings of one order, against how its log ended. The chain keeps a
        confirmed order's landing only a while: none found is counted, not blamed."""
        confirmed = [e for e in events if isinstance(e, Confirmed)]
        ended_failed = any(e.is_terminal for e in events) and not confirmed
        if not confirmed and not ended_failed and len(landed) <= 1:
            return  # open: it may land once, or already has
        tally = self.report.invariants["chain"]
        tally.checked += 1
        if ended_failed and landed:
            self.report.add("chain", order_id, f"failed, yet attempt "
                                               f"{_list([x.attempt for x in landed])} landed")
        elif len(landed) > 1:
            self.report.add("chain", order_id, f"landed {len(landed)} times (attempts "
                                               f"{_list([x.attempt for x in landed])})")
        elif confirmed and not landed:
            self._released += 1
        elif confirmed:
            [landing], end = landed, confirmed[-1]
            if (landing.signature, landing.attempt) != (end.tx_hash, end.attempt):
                self.report.add("chain", order_id,
                                f"landed as attempt {landing.attempt} {landing.signature}, "
                                f"confirmed as attempt {end.attempt} {end.tx_hash}")
            elif landing.amount_out != end.amount_out:
                self.report.add("chain", order_id,
                                f"landed with amountOut {landing.amount_out}, "
                                f"confirmed with {end.amount_out}")

    def stream_entry(self, entry: Entry, stored: Entry | None) -> None:
        """One entry the stream still holds, against the row PostgreSQL has for it."""
        self.report.invariants["stream"].checked += 1
        event = entry.event
        where = f"{event.type} seq {event.seq} (stream {entry.id})"
        if stored is None:
            self.report.add("stream", event.order_id, f"{where} is not in PostgreSQL")
        elif stored.event != event:
            self.report.add("stream", event.order_id, f"{where} differs in PostgreSQL")
        elif stored.id != entry.id:
            self.report.add("stream", event.order_id,
                            f"{where} is recorded at stream position {stored.id}")

    def finish(self) -> Report:
        duplicates = {sig: owners for sig, owners in self._signatures.items() if len(owners) > 1}
        self.report.invariants["signatures"].checked = len(self._signatures)
        for sig, owners in sorted(duplicates.items()):
            for order_id, attempt in sorted(owners):
                others = ", ".join(f"{o} attempt {a}" for o, a in sorted(owners)
                                   if (o, a) != (order_id, attempt))
                self.report.add("signatures", order_id,
                                f"attempt {attempt} signature {sig} is also {others}'s")
        if self._open_in_time:
            self._note("deadline", f"{self._open_in_time} open, within the deadline")
        if self._released:
            self._note("chain", f"{self._released} confirmed no longer held by the chain")
        return self.report

    def _note(self, invariant: str, note: str) -> None:
        tally = self.report.invariants[invariant]
        tally.note = f"{tally.note}; {note}" if tally.note else note


# A waiting order ends expired within this long of its deadline.
EXPIRY_GRACE_S = 1.0


class Endings(msgspec.Struct, kw_only=True, rename="camel"):
    """How accepted orders ended; ``violations`` names each offender."""

    accepted: int = 0
    # Per terminal status, the orders that reached it in PostgreSQL.
    ended: dict[str, int] = msgspec.field(default_factory=dict)
    # Not ended, but waiting within its own deadline: not lost.
    still_open: int = 0
    lost: int = 0
    # More than one terminal event, in PostgreSQL or in the log.
    duplicated: int = 0
    executed_twice: int = 0
    violations: list[Violation] = msgspec.field(default_factory=list)

    @property
    def terminal(self) -> int:
        return sum(self.ended.values())

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.executed_twice)


def endings(order_ids: Sequence[str], statuses: Mapping[str, str],
            stored_ends: Mapping[str, int], logged_ends: Mapping[str, int],
            executions: Mapping[str, int], deadlines: Mapping[str, float],
            now: float) -> Endings:
    """Each accepted order against what the system says of it: its status and number of
    terminal events in PostgreSQL (``statuses``, ``stored_ends``), its terminal events in
    the log (``logged_ends``), how many of its attempts executed (``executions``), and for
    a waiting order its deadline (``deadlines``, epoch seconds at ``now``)."""
    found = Endings(accepted=len(order_ids))
    for order_id in order_ids:
        status = statuses.get(order_id)
        if status in lifecycle.TERMINAL:
            assert status is not None
            found.ended[status] = found.ended.get(status, 0) + 1
        elif (status in lifecycle.WAITING_STATUSES and order_id in deadlines
              and now < deadlines[order_id] + EXPIRY_GRACE_S):
            found.still_open += 1
        else:
            found.lost += 1
            found.violations.append(Violation(
                "terminal", order_id, f"accepted, yet {status or 'not in PostgreSQL'} and "
                                      "not waiting within its deadline"))
        ends = (stored_ends.get(order_id, 0), logged_ends.get(order_id, 0))
        if max(ends) > 1:
            found.duplicated += 1
            found.violations.append(Violation(
                "terminal", order_id, f"{ends[0]} terminal events in PostgreSQL, {ends[1]} "
                                      "in the log"))
        if executions.get(order_id, 0) > 1:
            found.executed_twice += 1
            found.violations.append(Violation(
                "chain", order_id, f"executed {executions[order_id]} times"))
    return found


def _list(values: Iterable[int]) -> str:
    return ", ".join(str(v) for v in values)


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86_400:
        return f"{seconds // 86_400} d {seconds % 86_400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


def _clock_start(events: Sequence[Event], state: OrderState) -> datetime | None:
    """From when an unfinished order's deadline runs: its first event; for a waiting order,
    its last trigger while it executes, or its expiry while it waits (None: it may wait
    for ever)."""
    requested = state.requested
    if requested is None or not requested.is_waiting:
        return min(e.at for e in events)
    if not decisions.still_waits(state):
        return max(e.at for e in events if e.type in ("Triggered", "OrderRequested"))
    expires_at = requested.expires_at
    return None if isinstance(expires_at, msgspec.UnsetType) else expires_at
