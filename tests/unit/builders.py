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
    Rerouted,
    Routed,
    Submitted,
)
from shared.market import KEYS
from shared.route import FULL, Candidate, Dex, Leg, Share

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
TX = "5" * 87
# The pools' fees, as shared/pools charges them (Meteora's base fee, before bins add more).
FEE_BPS: dict[str, int] = {"raydium": 25, "meteora": 20}


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


def quote(dex: Dex = "raydium", **overrides: Any) -> Quote:
    """One venue's answer: by default as many pools as the simulated market gives it."""
    fields: dict[str, Any] = {
        "dex": dex,
        "pools": sum(1 for key in KEYS if key.dex == dex),
        "latency_ms": 200.0,
    }
    return Quote(**(fields | overrides))


def share(dex: Dex, token_in: str, token_out: str, bps: int = FULL) -> Share:
    """A share of a hop's input on the venue's pool for the pair, oriented as the market
    lists it (SOL/USDC whichever way the order goes)."""
    for key in KEYS:
        if key.dex == dex and {key.base, key.quote} == {token_in, token_out}:
            return Share(dex, key.base, key.quote, bps)
    return Share(dex, token_in, token_out, bps)


def leg(dex: Dex, token_in: str, token_out: str, amount_in: int, amount_out: int,
        price_impact: float = 0.0001) -> Leg:
    fee = -(-amount_in * FEE_BPS[dex] // 10_000)
    return Leg(dex, token_in, token_out, amount_in, amount_out, fee, price_impact)


def direct(dex: Dex = "raydium", token_in: str = "SOL", token_out: str = "USDC",
           amount_in: int = 500_000_000, amount_out: int = 74_000_000) -> Candidate:
    """A route straight through one pool."""
    return Candidate(
        kind="direct",
        path=[token_in, token_out],
        hops=[[share(dex, token_in, token_out)]],
        legs=[leg(dex, token_in, token_out, amount_in, amount_out)],
        amount_out=amount_out,
        price_impact=0.0001,
    )


def split(token_in: str = "SOL", token_out: str = "USDC", amount_in: int = 500_000_000,
          raydium_bps: int = 6_000, outs: tuple[int, int] = (44_500_000, 29_600_000),
          ) -> Candidate:
    """The input shared between the two venues' pools for the pair."""
    first = amount_in * raydium_bps // FULL
    return Candidate(
        kind="split",
        path=[token_in, token_out],
        hops=[[share("raydium", token_in, token_out, raydium_bps),
               share("meteora", token_in, token_out, FULL - raydium_bps)]],
        legs=[leg("raydium", token_in, token_out, first, outs[0]),
              leg("meteora", token_in, token_out, amount_in - first, outs[1])],
        amount_out=sum(outs),
        price_impact=0.0001,
    )


def two_hop(path: tuple[str, str, str] = ("BONK", "SOL", "RAY"),
            dexes: tuple[Dex, Dex] = ("meteora", "raydium"),
            amounts: tuple[int, int, int] = (10**12, 1_300_000_000, 78_000_000),
            ) -> Candidate:
    """Two hops through a hub token, each on one venue."""
    (a, hub, b), (first, second) = path, dexes
    return Candidate(
        kind="two_hop",
        path=list(path),
        hops=[[share(first, a, hub)], [share(second, hub, b)]],
        legs=[leg(first, a, hub, amounts[0], amounts[1]),
              leg(second, hub, b, amounts[1], amounts[2])],
        amount_out=amounts[2],
        price_impact=0.0002,
    )


def _routed_fields(order_id: str, seq: int, overrides: dict[str, Any]) -> dict[str, Any]:
    route: Candidate = overrides.pop("route", None) or direct()
    reason = f"{route.describe()} pays {route.amount_out} net of fees"
    candidates = [route]
    if route.kind != "two_hop":
        # A direct route on the other venue (Raydium for a split), 3% short.
        other: Dex = "meteora" if route.venues == "raydium" else "raydium"
        runner_up = direct(other, route.path[0], route.path[-1],
                           sum(leg.amount_in for leg in route.legs),
                           route.amount_out * 97 // 100)
        candidates.append(runner_up)
        reason += f", {route.amount_out - runner_up.amount_out} more than {runner_up.describe()}"
    return {
        "order_id": order_id,
        "seq": seq,
        "at": at(seq),
        "dex": route.venues,
        "route": route,
        "candidates": candidates,
        "quotes": [quote("raydium"), quote("meteora", latency_ms=210.5)],
        "amount_out": route.amount_out,
        "min_amount_out": 73_260_000,
        "reason": reason,
    } | overrides


def routed(order_id: str = "o-1", **overrides: Any) -> Routed:
    """By default 0.5 SOL -> USDC straight through Raydium's pool, Meteora the runner-up;
    pass ``route=`` to route otherwise (dex, amount_out and candidates follow it)."""
    return Routed(**_routed_fields(order_id, 2, overrides))


def rerouted(order_id: str = "o-1", **overrides: Any) -> Rerouted:
    """A new route after attempt 1 failed on slippage (seq 5)."""
    fields = {"route": direct("meteora", amount_out=73_500_000), "min_amount_out": 72_765_000}
    return Rerouted(**_routed_fields(order_id, 6, fields | overrides))


def built(order_id: str = "o-1", **overrides: Any) -> Built:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "seq": 3,
        "at": at(3),
        "dex": "raydium",
        "instructions": [
            "createAssociatedTokenAccount(wSOL)",
            "transfer(500000000 lamports -> wSOL account)",
            "syncNative(wSOL)",
            "raydium.swap(500000000 SOL -> USDC)",
            "assertMinimumOut(73260000 USDC)",
            "closeAccount(wSOL) -> unwrap to SOL",
        ],
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
        "kind": "transient",
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
        "simulated_ms": 2_500.0,
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
