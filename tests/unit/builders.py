"""Small builders of events for the unit tests: every field has a plausible default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import (
    AnyEvent,
    AttemptFailed,
    Built,
    Confirmed,
    Failed,
    OrderRequested,
    Quote,
    Routed,
    Submitted,
)

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
TX = "5" * 87


def at(seq: int) -> datetime:
    return T0 + timedelta(seconds=seq)


def requested(order_id: str = "o-1", **overrides: Any) -> OrderRequested:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "seq": 1,
        "at": at(1),
        "token_in": "SOL",
        "token_out": "USDC",
        "amount_in": 500_000_000,
        "amount": "0.5",
        "slippage": 0.01,
    }
    return OrderRequested(**(fields | overrides))


def quote(dex: Any = "raydium", amount_out: int = 74_000_000, **overrides: Any) -> Quote:
    fields: dict[str, Any] = {
        "dex": dex,
        "amount_out": amount_out,
        "fee": 185_000,
        "price": 148.0,
        "fee_bps": 25,
        "latency_ms": 200.0,
    }
    return Quote(**(fields | overrides))


def routed(order_id: str = "o-1", **overrides: Any) -> Routed:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "seq": 2,
        "at": at(2),
        "dex": "raydium",
        "quotes": [quote("raydium", 74_000_000), quote("meteora", 72_000_000, fee_bps=30)],
        "amount_out": 74_000_000,
        "min_amount_out": 73_260_000,
        "reason": "raydium pays more",
    }
    return Routed(**(fields | overrides))


def built(order_id: str = "o-1", **overrides: Any) -> Built:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "seq": 3,
        "at": at(3),
        "dex": "raydium",
        "instructions": ["raydium.swap(...)"],
        "wraps_sol": True,
        "unwraps_sol": False,
    }
    return Built(**(fields | overrides))


def submitted(order_id: str = "o-1", **overrides: Any) -> Submitted:
    fields: dict[str, Any] = {
        "order_id": order_id, "seq": 4, "at": at(4), "tx_hash": TX, "attempt": 1,
    }
    return Submitted(**(fields | overrides))


def attempt_failed(order_id: str = "o-1", **overrides: Any) -> AttemptFailed:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "seq": 5,
        "at": at(5),
        "attempt": 1,
        "error": "RPC node timed out",
        "retryable": True,
        "retry_in_ms": 500.0,
    }
    return AttemptFailed(**(fields | overrides))


def confirmed(order_id: str = "o-1", **overrides: Any) -> Confirmed:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "seq": 5,
        "at": at(5),
        "tx_hash": TX,
        "attempt": 1,
        "dex": "raydium",
        "amount_in": 500_000_000,
        "amount_out": 73_900_000,
        "min_amount_out": 73_260_000,
        "executed_price": 147.8,
    }
    return Confirmed(**(fields | overrides))


def failed(order_id: str = "o-1", **overrides: Any) -> Failed:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "seq": 9,
        "at": at(9),
        "error": "RPC node timed out",
        "reason": "gave up after 3 attempts",
        "attempts": 3,
    }
    return Failed(**(fields | overrides))


def happy_story(order_id: str = "o-1") -> list[AnyEvent]:
    """pending -> routing -> building -> submitted -> confirmed."""
    return [
        requested(order_id),
        routed(order_id),
        built(order_id),
        submitted(order_id),
        confirmed(order_id),
    ]
