"""What clients read: status messages and order views, built from events. No I/O here."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

import msgspec
from starlette.responses import Response

from shared.events import (
    AnyEvent,
    AttemptFailed,
    Confirmed,
    Failed,
    OrderRequested,
    Routed,
    Status,
    Submitted,
)
from shared.order import OrderState
from shared.route import Candidate
from shared.routing import Decision
from shared.tokens import TOKENS, find, listed

T = TypeVar("T")
_encoder = msgspec.json.Encoder()


def json(content: Any, status_code: int = 200,
         headers: dict[str, str] | None = None) -> Response:
    """A JSON response, encoded by msgspec (Structs as they are, no conversion first)."""
    return Response(_encoder.encode(content), status_code, headers, "application/json")

def decimal_text(token: str | None, base_units: int | None) -> str | None:
    """Base units as decimal text; None where a token is not known (yet) to this process,
    as a sniper's mint before its launch."""
    known = find(token) if token is not None else None
    if known is None or base_units is None:
        return None
    return format(known.to_decimal(base_units).normalize(), "f")


class TokenView(msgspec.Struct, rename="camel"):
    symbol: str
    mint: str
    decimals: int
    # False for the seed's tokens, true for those launched since.
    launched: bool


def token_views() -> list[TokenView]:
    return [TokenView(t.symbol, t.mint, t.decimals, t not in TOKENS) for t in listed()]


class Links(msgspec.Struct):
    order: str
    events: str


class Accepted(msgspec.Struct, rename="camel"):
    """The 202 answer to a submit over HTTP. (Over WebSocket, the pending status is the
    answer.)"""

    order_id: str
    status: Literal["pending"]
    # Where to follow the order: the WebSocket path, with its orderId.
    stream: str
    links: Links


class StatusMessage(msgspec.Struct, omit_defaults=True, rename="camel"):
    order_id: str
    status: Status
    timestamp: datetime
    seq: int
    routed_dex: str | None = None
    tx_hash: str | None = None
    executed_price: float | None = None
    amount_in: str | None = None
    amount_out: str | None = None
    min_amount_out: str | None = None
    error: str | None = None
    # On /orders/stream only: the event's place in the log, to resume from after a reconnect.
    position: str | None = None


class Statuses(msgspec.Struct, gc=False):
    """What an order's status messages tell, folded from its events in seq order: a
    subscriber keeps this for each order it follows, not the events. A gateway holds
    thousands (the routes' candidates and quotes alone are kilobytes an order), and none
    holds a container, so the collector need not track them."""

    token_in: str | None = None
    token_out: str | None = None
    amount_in: int | None = None
    routed_dex: str | None = None
    min_amount_out: int | None = None
    tx_hash: str | None = None
    amount_out: int | None = None
    executed_price: float | None = None
    error: str | None = None
    last_seq: int = 0

    def message(self, event: AnyEvent) -> StatusMessage | None:
        """Takes in ``event``, the order's next; the message a subscriber gets for it, or
        None for an event that does not change the status."""
        self.last_seq = event.seq
        match event:
            case OrderRequested():
                self.token_in, self.token_out = event.token_in, event.token_out
                self.amount_in = event.amount_in
            case Routed():  # and Rerouted
                self.routed_dex, self.min_amount_out = event.dex, event.min_amount_out
            case Submitted():
                self.tx_hash = event.tx_hash
            case Confirmed():
                self.tx_hash, self.amount_out = event.tx_hash, event.amount_out
                self.executed_price = event.executed_price
            case Failed():
                self.error = event.error
        status = event.status
        if status is None:
            return None
        confirmed = status == "confirmed"
        return StatusMessage(
            order_id=event.order_id,
            status=status,
            timestamp=event.at,
            seq=event.seq,
            routed_dex=self.routed_dex,
            tx_hash=self.tx_hash if status in ("submitted", "confirmed") else None,
            executed_price=self.executed_price if confirmed else None,
            amount_in=decimal_text(self.token_in, self.amount_in) if confirmed else None,
            amount_out=decimal_text(self.token_out, self.amount_out) if confirmed else None,
            min_amount_out=(decimal_text(self.token_out, self.min_amount_out)
                            if confirmed else None),
            error=self.error if status == "failed" else None,
        )

    @classmethod
    def of(cls, events: list[AnyEvent]) -> Statuses:
        """Taken in ``events``, an order's first ones in seq order."""
        statuses = cls()
        for event in events:
            statuses.message(event)
        return statuses


class QuoteLeg(msgspec.Struct, rename="camel"):
    dex: str
    token_in: str
    token_out: str
    amount_in: str
    amount_out: str
    fee: str
    price_impact: float


class Split(msgspec.Struct, rename="camel"):
    dex: str
    pool: str
    percent: float


class RouteView(msgspec.Struct, rename="camel"):
    kind: str
    venues: str
    description: str
    path: list[str]
    # Per hop, how the input is shared between pools.
    splits: list[list[Split]]
    legs: list[QuoteLeg]
    amount_out: str
    price_impact: float


class QuoteView(msgspec.Struct, rename="camel"):
    token_in: str
    token_out: str
    amount: str
    slippage: float
    route: RouteView
    expected_out: str
    min_amount_out: str
    price_impact: float
    reason: str
    candidates: list[RouteView]
    quoted_at: datetime


def route_view(candidate: Candidate) -> RouteView:
    def units(token: str, amount: int) -> str:
        return decimal_text(token, amount) or "0"

    return RouteView(
        kind=candidate.kind,
        venues=candidate.venues,
        description=candidate.describe(),
        path=candidate.path,
        splits=[[Split(s.dex, f"{s.base}/{s.quote}", s.bps / 100) for s in hop]
                for hop in candidate.hops],
        legs=[QuoteLeg(leg.dex, leg.token_in, leg.token_out, units(leg.token_in, leg.amount_in),
                       units(leg.token_out, leg.amount_out), units(leg.token_in, leg.fee),
                       leg.price_impact) for leg in candidate.legs],
        amount_out=units(candidate.path[-1], candidate.amount_out),
        price_impact=candidate.price_impact,
    )


def quote_view(order: OrderRequested, decision: Decision, at: datetime) -> QuoteView:
    best = decision.best
    return QuoteView(
        token_in=order.token_in,
        token_out=order.token_out,
        amount=order.amount,
        slippage=order.slippage,
        route=route_view(best),
        expected_out=decimal_text(order.token_out, best.amount_out) or "0",
        min_amount_out=decimal_text(order.token_out, decision.min_amount_out) or "0",
        price_impact=best.price_impact,
        reason=decision.reason,
        candidates=[route_view(c) for c in decision.candidates],
        quoted_at=at,
    )


class Attempt(msgspec.Struct, rename="camel"):
    attempt: int
    error: str
    at: datetime


class OrderView(msgspec.Struct, rename="camel"):
    order_id: str
    status: str | None
    token_in: str | None
    token_out: str | None
    amount: str | None
    slippage: float | None
    type: str | None
    routed_dex: str | None
    quoted_out: str | None
    min_amount_out: str | None
    tx_hash: str | None
    amount_out: str | None
    executed_price: float | None
    failed_attempts: int
    error: str | None
    created_at: datetime | None
    updated_at: datetime | None
    attempts: list[Attempt] | None = None
    # The account that submitted the order; None for orders from before API keys.
    account: str | None = None
    # Waiting orders: a limit's least tokenOut per tokenIn, a sniper's most tokenIn per
    # tokenOut, and when an order that has not fired expires.
    limit_price: str | None = None
    max_price: str | None = None
    expires_at: datetime | None = None


def _said(value: T | msgspec.UnsetType) -> T | None:
    return None if isinstance(value, msgspec.UnsetType) else value


def order_view(state: OrderState, events: list[AnyEvent]) -> OrderView:
    req, routed = state.requested, state.routed
    token_out = req.token_out if req else None
    return OrderView(
        order_id=state.order_id,
        status=state.status,
        token_in=req.token_in if req else None,
        token_out=token_out,
        amount=req.amount if req else None,
        slippage=req.slippage if req else None,
        type=req.order_type if req else None,
        routed_dex=routed.dex if routed else None,
        quoted_out=decimal_text(token_out, routed.amount_out if routed else None),
        min_amount_out=decimal_text(token_out, routed.min_amount_out if routed else None),
        tx_hash=state.tx_hash,
        amount_out=decimal_text(token_out, state.amount_out),
        executed_price=state.executed_price,
        failed_attempts=state.failed_attempts,
        error=state.error,
        created_at=state.created_at,
        updated_at=state.updated_at,
        attempts=[
            Attempt(e.attempt, e.error, e.at) for e in events if isinstance(e, AttemptFailed)
        ],
        account=req.account or None if req else None,
        limit_price=_said(req.limit_price) if req else None,
        max_price=_said(req.max_price) if req else None,
        expires_at=_said(req.expires_at) if req else None,
    )


def order_view_from_row(row: dict[str, Any]) -> OrderView:
    token_out = row["token_out"]

    def units(name: str) -> str | None:
        value = row[name]
        return decimal_text(token_out, int(value)) if value is not None else None

    return OrderView(
        order_id=row["order_id"],
        status=row["status"],
        token_in=row["token_in"],
        token_out=token_out,
        amount=row["amount"],
        slippage=row["slippage"],
        type=row["order_type"],
        routed_dex=row["routed_dex"],
        quoted_out=units("quoted_out"),
        min_amount_out=units("min_amount_out"),
        tx_hash=row["tx_hash"],
        amount_out=units("amount_out"),
        executed_price=row["executed_price"],
        failed_attempts=row["failed_attempts"],
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        account=row.get("account") or None,
    )


class OrderPage(msgspec.Struct):
    orders: list[OrderView]
    # The `before` of the next page; null on the last one.
    next: str | None


class EventList(msgspec.Struct, rename="camel"):
    order_id: str
    events: list[AnyEvent]


class TokenList(msgspec.Struct):
    tokens: list[TokenView]


class CancelAnswer(msgspec.Struct, rename="camel"):
    order_id: str
    status: str


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    # "ok", or "unavailable: <why>", per dependency.
    checks: dict[str, str]
