"""Writes the golden log (events.jsonl) and the projection it must replay to
(projection.json). Run once, when a new story is added: `python -m tests.golden.generate`.
Never to make a failing golden test pass: a golden line that no longer reads as it did is a
stored event that the code can no longer read (docs/events.md).

Routes come from the seeded market and the real router; builds, signatures and prices from
the executor's own rules, so each story is one the engine could have written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from services.executor.execution import build, executed_price, signature
from services.persister.projection import order_rows
from services.trigger.fills import after, direct
from shared.events import (
    AnyEvent,
    AttemptFailed,
    Built,
    Cancelled,
    Confirmed,
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
    encode,
)
from shared.launches import PoolLaunched, apply
from shared.market import Market
from shared.routing import decide
from shared.stream import Entry, StreamId
from shared.tokens import get
from shared.waiting import routed_on_launch

HERE = Path(__file__).parent
LOG = HERE / "events.jsonl"
PROJECTION = HERE / "projection.json"

SEED = "golden"
MARKET = Market(SEED, 0.03, 1_000)
T0 = 1_700_000_000.0
# The orders written before events carried a version: their lines have no "v".
UNVERSIONED = frozenset({"golden-10-unversioned"})
LAUNCH = PoolLaunched(mint="GoLDenMint1111111111111111111111111111111111", symbol="GLDN",
                      decimals=6, venue="raydium", price="0.0001", liquidity="1000")


class Story:
    """One order's events, each seq the previous one's plus one, a second apart."""

    def __init__(self, order_id: str, token_in: str, token_out: str, amount: str,
                 slippage: float = 0.01, start: float = 0.0, **terms: Any) -> None:
        self.order_id, self.t = order_id, T0 + start
        units = get(token_in).to_base_units(Decimal(amount))
        self.events: list[AnyEvent] = []
        self.order = self.add(OrderRequested, token_in=token_in, token_out=token_out,
                              amount_in=units, amount=amount, slippage=slippage, **terms)
        self.route: Routed | None = None

    def add(self, event_type: type[Any], **fields: Any) -> Any:
        seq = len(self.events) + 1
        at = datetime.fromtimestamp(self.t, UTC) + timedelta(seconds=seq)
        event = event_type(order_id=self.order_id, seq=seq, at=at, **fields)
        self.events.append(event)
        return event

    def routed(self, kind: type[Routed] = Routed, after_s: float = 0.0) -> Routed:
        order = self.order
        decision = decide(order.token_in, order.token_out, order.amount_in, order.slippage,
                          MARKET.pools_between, MARKET.pool_at(self.t + after_s))
        self.route = self.add(
            kind, dex=decision.best.venues, route=decision.best,
            candidates=decision.candidates,
            quotes=[Quote(dex="raydium", pools=6, latency_ms=201.5),
                    Quote(dex="meteora", pools=6, latency_ms=188.25)],
            amount_out=decision.best.amount_out, min_amount_out=decision.min_amount_out,
            reason=decision.reason)
        return self.route

    def built(self) -> None:
        assert self.route is not None
        tx = build(self.order, self.route)
        self.add(Built, dex=self.route.dex, instructions=tx.instructions,
                 wraps_sol=tx.wraps_sol, unwraps_sol=tx.unwraps_sol)

    def attempt_failed(self, attempt: int, kind: str, error: str, last: bool = False) -> None:
        self.add(AttemptFailed, attempt=attempt, error=error, retryable=not last, kind=kind,
                 retry_in_ms=500.0 * 2 ** (attempt - 1) if kind == "transient" and not last
                 else None)

    def landed(self, attempt: int = 1) -> None:
        assert self.route is not None
        tx = signature(SEED, self.order_id, attempt)
        self.add(Submitted, tx_hash=tx, attempt=attempt)
        out = self.route.amount_out
        self.add(Confirmed, tx_hash=tx, attempt=attempt, dex=self.route.dex,
                 amount_in=self.order.amount_in, amount_out=out,
                 min_amount_out=self.route.min_amount_out,
                 executed_price=executed_price(self.order, out), simulated_ms=2_400.0)


def stories() -> list[Story]:
    happy = Story("golden-01-direct", "SOL", "USDC", "0.5")
    happy.routed()
    happy.built()
    happy.landed()

    retry = Story("golden-02-transient-retry", "USDC", "SOL", "250", start=60)
    retry.routed()
    retry.built()
    retry.attempt_failed(1, "transient", "TransientError: RPC node timed out")
    retry.landed(attempt=2)

    slippage = Story("golden-03-slippage-reroute", "SOL", "USDC", "3", slippage=0.005)
    slippage.routed()
    slippage.built()
    slippage.attempt_failed(1, "slippage", "SlippageExceeded: the route would give "
                            "445120000, below its bound 445980000")
    slippage.routed(Rerouted, after_s=300)
    slippage.landed(attempt=2)

    expired = Story("golden-04-expired-quote", "JUP", "USDC", "1000")
    expired.routed()
    expired.built()
    expired.attempt_failed(1, "expired", "QuoteExpired: the route is 61250 ms old, "
                           "older than 60000 ms")
    expired.routed(Rerouted, after_s=900)
    expired.landed(attempt=2)

    split = Story("golden-05-split", "SOL", "USDC", "50000", slippage=0.02, start=240)
    assert split.routed().route.kind == "split"
    split.built()
    split.landed()

    two_hop = Story("golden-06-two-hop", "BONK", "RAY", "10000000", start=300)
    assert two_hop.routed().route.kind == "two_hop"
    two_hop.built()
    two_hop.landed()

    dead = Story("golden-07-dead-lettered", "SOL", "BONK", "2", start=360)
    dead.routed()
    dead.add(Failed, reason="dead_lettered", attempts=0,
             error="executor could not finish Routed #2 in 6 deliveries")

    exhausted = Story("golden-08-attempts-exhausted", "RAY", "USDC", "40", start=420)
    exhausted.routed()
    exhausted.built()
    errors = ["RPC node timed out", "blockhash not found", "node is behind"]
    for attempt, error in enumerate(errors, start=1):
        exhausted.attempt_failed(attempt, "transient", f"TransientError: {error}",
                                 last=attempt == len(errors))
    exhausted.add(Failed, reason="attempts_exhausted", attempts=3,
                  error="failed after 3 attempts; last error: TransientError: node is behind")

    no_route = Story("golden-09-no-route", "USDT", "BONK", "5", start=480)
    no_route.add(Failed, reason="no_route", attempts=0,
                 error="no route from USDT to BONK for 5000000 base units")

    old = Story("golden-10-unversioned", "SOL", "USDC", "1.25", start=540)
    old.routed()
    old.built()
    old.landed()
    return [happy, retry, slippage, expired, split, two_hop, dead, exhausted, no_route, old,
            *waiting_stories()]


def waiting_stories() -> list[Story]:
    """Limit and sniper orders: opened, fired, cancelled, expired, back to open."""
    deadline = datetime.fromtimestamp(T0 + 7_200, UTC)
    filled = Story("golden-11-limit-filled", "SOL", "USDC", "2", start=600,
                   order_type="limit", limit_price="140", expires_at=deadline)
    filled.add(OrderOpened)
    filled.add(Triggered, price=151.7, reason="the market pays 151.7 USDC per SOL, "
               "at least the limit 140")
    filled.routed(after_s=2)
    filled.built()
    filled.landed()

    cancelled = Story("golden-12-limit-cancelled", "SOL", "USDC", "1", start=660,
                      order_type="limit", limit_price="400")
    cancelled.add(OrderOpened)
    cancelled.add(Cancelled, account="desk-1")

    lapsed = Story("golden-13-limit-expired", "USDC", "SOL", "100", start=720,
                   order_type="limit", limit_price="0.01", expires_at=deadline)
    lapsed.add(OrderOpened)
    lapsed.add(Expired, expires_at=deadline)

    again = Story("golden-14-limit-reopened", "SOL", "USDC", "3", start=780,
                  order_type="limit", limit_price="150", expires_at=deadline)
    again.add(OrderOpened)
    again.add(Triggered, price=150.2, reason="the market pays 150.2 USDC per SOL, "
              "at least the limit 150")
    again.routed(after_s=1)
    again.built()
    again.attempt_failed(1, "slippage", "SlippageExceeded: the route would give "
                         "449100000, below minAmountOut 450000000")
    again.add(Reopened, reason="the route gives 449100000, below the bound 450000000")
    again.add(Expired, expires_at=deadline)

    sniper = Story("golden-15-sniper-cancelled", "SOL", "USDC", "0.25", start=840,
                   order_type="sniper", max_price="0.001")
    sniper.add(OrderOpened)
    sniper.add(Cancelled, account="desk-1")

    # The second sniper at a launch: priced on the pool as the first left it, and routed
    # by the trigger in the same append (Triggered:routed).
    apply(LAUNCH)
    second = Story("golden-16-sniper-fired-at-launch", "SOL", LAUNCH.mint, "0.5", start=900,
                   order_type="sniper", max_price="0.01", slippage=0.05)
    second.add(OrderOpened)
    ahead = get("SOL").to_base_units(Decimal("2"))
    pool = after(MARKET.pool(LAUNCH.key, second.t), LAUNCH.key, ahead)
    assert pool is not None
    fill = direct(pool, LAUNCH.key, second.order.amount_in)
    assert fill is not None
    second.add(Triggered, price=fill.amount_out / 10**LAUNCH.decimals / 0.5, pushed=ahead,
               fill=fill, reason=f"{LAUNCH.symbol} launched on {LAUNCH.venue}")
    routed = routed_on_launch(second.order, len(second.events) + 1, fill, ahead)
    second.route = second.add(Routed, **{field: getattr(routed, field) for field in (
        "dex", "route", "candidates", "quotes", "amount_out", "min_amount_out", "reason",
        "pushed")})
    second.built()
    second.landed()
    return [filled, cancelled, lapsed, again, sniper, second]


def stored_form(event: AnyEvent) -> bytes:
    """The line as the store holds it; before versions existed, without "v"."""
    if event.order_id not in UNVERSIONED:
        return encode(event)
    raw = json.loads(encode(event))
    del raw["v"]
    return msgspec.json.encode(raw)


def entries(events: list[AnyEvent]) -> list[Entry]:
    """The golden events as the persister reads them, one stream id each."""
    return [Entry(StreamId(1_700_000_000_000 + n, 0), e) for n, e in enumerate(events)]


def projection(events: list[AnyEvent]) -> dict[str, Any]:
    rows = order_rows(entries(events))
    return {row.order_id: msgspec.to_builtins(row) for row in rows}


def main() -> None:
    events = [e for story in stories() for e in story.events]
    LOG.write_bytes(b"".join(stored_form(e) + b"\n" for e in events))
    PROJECTION.write_text(json.dumps(projection(events), indent=1, sort_keys=True) + "\n")
    print(f"{len(events)} events -> {LOG.name}, {PROJECTION.name}")


if __name__ == "__main__":
    main()
