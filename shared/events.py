"""The facts of an order's life, named in the past tense.

Every event carries the same envelope (id, order id, per-order sequence number, type, time);
the type tag selects the payload. One schema serves the stream, PostgreSQL and the API.
An event's ``seq`` is decided by the event that caused it (``cause.seq + 1``), so a service
that handles the same cause twice produces the same (order, seq) and the store drops the copy.

Every event carries its schema version ``v``; events stored before versions existed have
none and are version 1. ``decode`` is the one read path and upcasts older versions
(``shared.upcast``; the rules are in docs/events.md). What an event does to its order (the
status it sets, the move it makes) is the lifecycle's to say (``shared.lifecycle``).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType

from shared import lifecycle
from shared.lifecycle import FailureKind
from shared.lifecycle import Status as Status  # re-exported: readers of events name statuses
from shared.route import Candidate, Dex
from shared.upcast import Schema

OrderType = Literal["market", "limit", "sniper"]
ORDER_TYPES: tuple[OrderType, ...] = get_args(OrderType)

STATUSES = lifecycle.STATUSES
TERMINAL_STATUSES: frozenset[str] = frozenset(lifecycle.TERMINAL)

_EVENT_NAMESPACE = uuid.UUID("6f1d3c0e-6c59-4d2a-9b0e-4f6b8f0c2a11").bytes


def event_id(order_id: str, seq: int) -> str:
    """``uuid5(namespace, "order/seq")``, as ``uuid.uuid5`` spells it. Every event written
    computes one: made straight from the hash, it costs a third of building a UUID."""
    raw = bytearray(hashlib.sha1(_EVENT_NAMESPACE + f"{order_id}/{seq}".encode(),
                                 usedforsecurity=False).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def now() -> datetime:
    return datetime.now(UTC)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", rename="camel"):
    order_id: str
    seq: int
    at: datetime = msgspec.field(default_factory=now)
    id: str = ""
    # The schema version this event was written at; a new version of a type raises the
    # default in its class (and registers an upcaster, see SCHEMA below).
    v: int = 1
    # The W3C trace context of the span that made this event (``shared.tracing``), so the
    # service that acts on it continues the order's trace. Written only while tracing is
    # on and the order is sampled: unset, it is not in the JSON, so events read and write
    # back byte for byte as before it existed.
    traceparent: str | UnsetType = UNSET

    def __post_init__(self) -> None:
        if not self.id:
            msgspec.structs.force_setattr(self, "id", event_id(self.order_id, self.seq))

    @property
    def type(self) -> str:
        # The wire tag, not the class name: a later version's class keeps its type's tag.
        return type(self).__struct_config__.tag  # type: ignore[return-value]

    @property
    def status(self) -> Status | None:
        """The status this event moves its order to; None for facts that do not change it."""
        return lifecycle.sets_status(self.type)

    @property
    def move(self) -> str:
        """What this event does in the order's lifecycle."""
        return self.type

    @property
    def is_terminal(self) -> bool:
        return self.status in lifecycle.TERMINAL


class OrderRequested(Event, tag=True, frozen=True):
    token_in: str
    token_out: str
    # Base units of token_in; `amount` keeps the client's decimal text for the audit trail.
    amount_in: int
    amount: str
    slippage: float
    order_type: OrderType = "market"
    # The account that submitted the order (never its key); "" on orders from before keys.
    account: str = ""
    # Waiting orders only, and absent from a market order's JSON (UNSET is not written),
    # so orders written before waiting orders existed read and write back byte for byte.
    # A limit order's least tokenOut per tokenIn, net of fees; a sniper's most tokenIn per
    # tokenOut; both decimal text, exact.
    limit_price: str | UnsetType = UNSET
    max_price: str | UnsetType = UNSET
    # When a waiting order that has not fired ends expired; unset: never.
    expires_at: datetime | UnsetType = UNSET

    @property
    def move(self) -> str:
        # A waiting order goes to the trigger service, a market order to the router.
        return "OrderRequested" if self.order_type == "market" else "OrderRequested:waiting"

    @property
    def is_waiting(self) -> bool:
        return self.order_type != "market"


class OrderOpened(Event, tag=True, frozen=True):
    """The trigger service watches the order: its price (limit) or its pool (sniper)."""


class Triggered(Event, tag=True, frozen=True):
    """The order's condition was met: it goes to the router, as a market order would.
    ``price`` is what the trigger saw: tokenOut per tokenIn, net of fees, for the whole
    amount. ``pushed`` is how much of the launched pool's quote token the snipers fired
    before this one at the same launch put into the pool, so the router quotes the pool as
    they leave it; 0 for everything else."""

    price: float
    reason: str
    pushed: int = 0
    # A sniper fired on its launched pool: its route there, as the trigger priced it on the
    # pool the snipers before it leave, so the router need not search again. Unset (not
    # written) otherwise.
    fill: Candidate | UnsetType = UNSET

    @property
    def move(self) -> str:
        # A fill comes with its Routed, appended in the same call: no router needed. (Fills
        # appended alone, before that, are in the router's queue and routed there.)
        return "Triggered:routed" if isinstance(self.fill, Candidate) else "Triggered"


class Reopened(Event, tag=True, frozen=True):
    """Execution would have landed below the order's bound: it waits again."""

    reason: str


class Cancelled(Event, tag=True, frozen=True):
    """The client cancelled the order while it was waiting."""

    account: str = ""


class Expired(Event, tag=True, frozen=True):
    """The order's deadline passed while it was waiting."""

    expires_at: datetime


class Quote(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One venue's answer to the router: how many of its pools it returned, how fast."""

    dex: Dex
    pools: int
    latency_ms: float


class Routed(Event, tag=True, frozen=True):
    # The venues of the chosen route: "raydium", "raydium+meteora" (split), "meteora>raydium".
    dex: str
    route: Candidate
    # Every route considered, best first, each with its output, fees and price impact.
    candidates: list[Candidate]
    quotes: list[Quote]
    amount_out: int
    min_amount_out: int
    reason: str
    # A sniper's: how much of the launched pool's quote token the snipers fired before it
    # at the same launch bought in (``Triggered.pushed``), so the chain executes against
    # the pool as they leave it. Unset (not written) for every other order.
    pushed: int | UnsetType = UNSET


class Rerouted(Routed, tag=True, frozen=True):
    """A new route after an attempt failed on price (slippage) or age (expired quote).
    The order's status does not change: it is still being executed."""


class Built(Event, tag=True, frozen=True):
    dex: str
    instructions: list[str]
    wraps_sol: bool
    unwraps_sol: bool


class Submitted(Event, tag=True, frozen=True):
    tx_hash: str
    attempt: int


class AttemptFailed(Event, tag=True, frozen=True):
    attempt: int
    error: str
    retryable: bool
    retry_in_ms: float | None = None
    # transient: sent again after a backoff; slippage / expired: routed again first.
    kind: FailureKind = "transient"

    @property
    def move(self) -> str:
        return lifecycle.attempt_move(self.kind, self.retryable)

    @property
    def reroute(self) -> bool:
        return self.move == "AttemptFailed:reroute"


class Confirmed(Event, tag=True, frozen=True):
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
    error: str
    reason: str
    attempts: int


AnyEvent = (
    OrderRequested | Routed | Rerouted | Built | Submitted | AttemptFailed | Confirmed | Failed
    | OrderOpened | Triggered | Reopened | Cancelled | Expired
)
EVENT_TYPES: tuple[type[Event], ...] = (
    OrderRequested,
    OrderOpened,
    Triggered,
    Reopened,
    Cancelled,
    Expired,
    Routed,
    Rerouted,
    Built,
    Submitted,
    AttemptFailed,
    Confirmed,
    Failed,
)

# Every type at its current version, and the upcasters from its older ones: register a new
# version here (docs/events.md says how).
SCHEMA = Schema(EVENT_TYPES)

_encoder = msgspec.json.Encoder()


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes | str) -> AnyEvent:
    """An event of any version, as its current class."""
    event: AnyEvent = SCHEMA.decode(data)
    return event


_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


def decode_all(data: bytes | str) -> list[AnyEvent]:
    """A JSON array of events, each of any version, as their current classes."""
    return [decode(raw) for raw in _raw_list.decode(data)]


def to_builtins(event: Event) -> dict[str, object]:
    builtins = msgspec.to_builtins(event)
    assert isinstance(builtins, dict)
    return builtins
