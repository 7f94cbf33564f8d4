"""The facts of an order's life, named in the past tense.

Every event carries the same envelope (id, order id, per-order sequence number, type, time);
the type tag selects the payload. One schema serves the stream, PostgreSQL and the API.
An event's ``seq`` is decided by the event that caused it (``cause.seq + 1``), so a service
that handles the same cause twice produces the same (order, seq) and the store drops the copy.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import ClassVar, Literal

import msgspec

from shared.route import Candidate, Dex

Status = Literal["pending", "routing", "building", "submitted", "confirmed", "failed"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"confirmed", "failed"})

_EVENT_NAMESPACE = uuid.UUID("6f1d3c0e-6c59-4d2a-9b0e-4f6b8f0c2a11")


def now() -> datetime:
    return datetime.now(UTC)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", rename="camel"):
    order_id: str
    seq: int
    at: datetime = msgspec.field(default_factory=now)
    id: str = ""

    # The order status this event moves to; None for facts that do not change it.
    status: ClassVar[Status | None] = None

    def __post_init__(self) -> None:
        if not self.id:
            event_id = str(uuid.uuid5(_EVENT_NAMESPACE, f"{self.order_id}/{self.seq}"))
            msgspec.structs.force_setattr(self, "id", event_id)

    @property
    def type(self) -> str:
        return type(self).__name__

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class OrderRequested(Event, tag=True, frozen=True):
    status = "pending"
    token_in: str
    token_out: str
    # Base units of token_in; `amount` keeps the client's decimal text for the audit trail.
    amount_in: int
    amount: str
    slippage: float
    order_type: Literal["market"] = "market"
    # The account that submitted the order (never its key); "" on orders from before keys.
    account: str = ""


class Quote(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One venue's answer to the router: how many of its pools it returned, how fast."""

    dex: Dex
    pools: int
    latency_ms: float


class Routed(Event, tag=True, frozen=True):
    status: ClassVar[Status | None] = "routing"
    # The venues of the chosen route: "raydium", "raydium+meteora" (split), "meteora>raydium".
    dex: str
    route: Candidate
    # Every route considered, best first, each with its output, fees and price impact.
    candidates: list[Candidate]
    quotes: list[Quote]
    amount_out: int
    min_amount_out: int
    reason: str


class Rerouted(Routed, tag=True, frozen=True):
    """A new route after an attempt failed on price (slippage) or age (expired quote).
    The order's status does not change: it is still being executed."""

    status = None


class Built(Event, tag=True, frozen=True):
    status = "building"
    dex: str
    instructions: list[str]
    wraps_sol: bool
    unwraps_sol: bool


class Submitted(Event, tag=True, frozen=True):
    status = "submitted"
    tx_hash: str
    attempt: int


class AttemptFailed(Event, tag=True, frozen=True):
    attempt: int
    error: str
    retryable: bool
    retry_in_ms: float | None = None
    # transient: sent again after a backoff; slippage / expired: routed again first.
    kind: Literal["transient", "slippage", "expired"] = "transient"

    @property
    def reroute(self) -> bool:
        return self.retryable and self.kind != "transient"


class Confirmed(Event, tag=True, frozen=True):
    status = "confirmed"
    tx_hash: str
    attempt: int
    dex: str
    amount_in: int
    amount_out: int
    min_amount_out: int
    executed_price: float
    # The simulated chain time of the landed attempt, so benchmarks can tell the engine's
    # own overhead from the simulated delays.
    simulated_ms: float = 0.0


class Failed(Event, tag=True, frozen=True):
    status = "failed"
    error: str
    reason: str
    attempts: int


AnyEvent = (
    OrderRequested | Routed | Rerouted | Built | Submitted | AttemptFailed | Confirmed | Failed
)
EVENT_TYPES: tuple[type[Event], ...] = (
    OrderRequested,
    Routed,
    Rerouted,
    Built,
    Submitted,
    AttemptFailed,
    Confirmed,
    Failed,
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes | str) -> AnyEvent:
    event: AnyEvent = _decoder.decode(data)
    return event


def to_builtins(event: Event) -> dict[str, object]:
    builtins = msgspec.to_builtins(event)
    assert isinstance(builtins, dict)
    return builtins
