"""A launch's snipers in turn: the trigger's one-pass fills, each routed on its fill, and
the simulated chain executing each against the pool as the ones before it
leave it, so the first gets the best executed price."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.executor.chain import execute_route
from services.trigger.book import Book, Watched
from services.trigger.fills import after, direct
from shared import lifecycle
from shared.events import Routed, Triggered
from shared.launches import PoolLaunched, apply, pushed
from shared.market import Market, PoolKey
from shared.pools import Pool
from shared.queues import queue_of
from shared.route import Candidate
from shared.routing import decide, min_amount_out
from shared.waiting import own_bound, routed_on_launch
from tests.unit.builders import requested

SOL = 10**9
MARKET = Market("fills", 0.03, 1000)


def launched(venue: str) -> PoolLaunched:
    launch = PoolLaunched(mint=base58.b58encode(secrets.token_bytes(32)).decode(),
                          symbol=f"F{venue[:3].upper()}{secrets.token_hex(2).upper()}",
                          decimals=6, venue=venue,  # type: ignore[arg-type]
                          price="0.0001", liquidity="50")
    apply(launch)
    return launch


LAUNCHES = {venue: launched(venue) for venue in ("raydium", "meteora")}


@pytest.fixture(params=sorted(LAUNCHES))
def launch(request: pytest.FixtureRequest) -> Iterator[PoolLaunched]:
    yield LAUNCHES[request.param]


def walk(launch: PoolLaunched, amounts: list[int]) -> list[tuple[Candidate, int]]:
    """What the trigger does at a launch: each sniper's route, and the quote bought in
    before it."""
    pool: Pool = MARKET.pool(launch.key, 0.0)
    found, ahead = [], 0
    for amount in amounts:
        moved = after(pool, launch.key, ahead)
        route = direct(moved, launch.key, amount) if moved is not None else None
        if route is None:
            break
        found.append((route, ahead))
        ahead += amount
    return found


def routed(route: Candidate, **overrides: object) -> Routed:
    return Routed(order_id="o-1", seq=3, dex=route.venues, route=route, candidates=[route],
                  quotes=[], amount_out=route.amount_out, min_amount_out=route.amount_out,
                  reason="", **overrides)  # type: ignore[arg-type]


def executed(launch: PoolLaunched, route: Candidate, ahead: int, amount: int) -> int:
    event = routed(route, pushed=ahead)
    return execute_route(event, amount, MARKET.pool_at(0.0))[1]


@settings(max_examples=50, deadline=None)
@given(amounts=st.lists(st.integers(SOL // 1000, SOL // 2), min_size=1, max_size=20))
def test_the_chain_executes_each_sniper_at_exactly_its_quote(amounts: list[int]) -> None:
    """Whatever the snipers' sizes, on either venue: the chain, given the volume bought
    ahead, lands each sniper's route at the output the trigger quoted, to the base unit."""
    for launch in LAUNCHES.values():
        for route, ahead in walk(launch, amounts):
            assert executed(launch, route, ahead, route.legs[0].amount_in) == route.amount_out


@settings(max_examples=50, deadline=None)
@given(amount=st.integers(SOL // 1000, SOL // 5), snipers=st.integers(2, 15))
def test_the_first_sniper_gets_the_best_executed_price(amount: int, snipers: int) -> None:
    for launch in LAUNCHES.values():
        fills = walk(launch, [amount] * snipers)
        outs = [executed(launch, route, ahead, amount) for route, ahead in fills]
        assert outs[0] == max(outs)
        if launch.venue == "raydium":
            assert outs == sorted(set(outs), reverse=True)  # each pays more than the one before
        # On Meteora's bins, volume within one bin is priced alike, and a swap's variable
        # fee starts again at the bin it starts in (shared/pools/meteora.py): a sniper that
        # straddles a bin edge may do a little worse than the next. None beats the first.


def test_without_the_volume_ahead_every_sniper_would_execute_as_the_first(
        launch: PoolLaunched) -> None:
    # Large enough to move Meteora's active bin too.
    (first, _), (second, ahead) = walk(launch, [2 * SOL, 2 * SOL])
    assert ahead == 2 * SOL
    as_launched = execute_route(routed(second), 2 * SOL, MARKET.pool_at(0.0))[1]
    assert as_launched == first.amount_out > executed(launch, second, ahead, 2 * SOL)


def test_a_direct_fill_is_the_route_the_search_finds(launch: PoolLaunched) -> None:
    """On a launched pool the only route is the pool itself: one swap prices it as the
    whole search would."""
    ahead = SOL // 3
    pool_of = pushed(MARKET.pool_at(0.0), launch.key, ahead)
    searched = decide("SOL", launch.symbol, SOL // 7, 0.01, MARKET.pools_between, pool_of)
    moved = after(MARKET.pool(launch.key, 0.0), launch.key, ahead)
    assert moved is not None
    route = direct(moved, launch.key, SOL // 7)
    assert route is not None and [c.kind for c in searched.candidates] == ["direct"]
    assert searched.best.amount_out == route.amount_out
    assert searched.best.legs == route.legs and searched.best.hops == route.hops


def test_a_pool_that_cannot_take_the_volume_fills_nobody() -> None:
    key = LAUNCHES["meteora"].key
    pool = MARKET.pool(key, 0.0)
    assert after(pool, key, 10**30) is None
    assert direct(pool, PoolKey(key.dex, key.base, key.quote), 10**30) is None


def test_a_fired_sniper_is_routed_on_its_fill_straight_to_the_executor(
        launch: PoolLaunched) -> None:
    """The trigger appends a fill's Routed with its Triggered: the fired order goes to the
    executor's queue, not the router's, and executes on the route the trigger priced, at no
    less than its quote less slippage nor its own maxPrice."""
    [_, (route, ahead)] = walk(launch, [SOL // 10, SOL // 10])
    order = requested(token_in="SOL", token_out=launch.mint, amount_in=SOL // 10,
                      amount="0.1", order_type="sniper", slippage=0.02,
                      # A price 1% above the quote's: a tighter bound than 2% slippage.
                      max_price=str(Decimal("0.1") / Decimal(route.amount_out).scaleb(-6)
                                    * Decimal("1.01")))
    fired = Triggered(order_id=order.order_id, seq=3, price=1.0, reason="", pushed=ahead,
                      fill=route)
    routed_ = routed_on_launch(order, 4, route, ahead)
    assert fired.move == "Triggered:routed" and queue_of(fired) is None
    assert queue_of(routed_) == "executor"
    assert lifecycle.walk(["OrderRequested:waiting", "OrderOpened", fired.move, routed_.move])
    assert routed_.route == route and routed_.pushed == ahead and routed_.quotes == []
    assert min_amount_out(route.amount_out, 0.02) < own_bound(order) <= route.amount_out
    assert routed_.min_amount_out == own_bound(order)
    assert execute_route(routed_, SOL // 10, MARKET.pool_at(0.0))[1] == route.amount_out
    # A fill appended alone (by a trigger from before fills came with their Routed) is
    # still the router's.
    assert Triggered(order_id="o", seq=3, price=1.0, reason="").move == "Triggered"
    assert queue_of(Triggered(order_id="o", seq=3, price=1.0, reason="")) == "router"


def test_snipers_being_fired_at_a_launch_are_out_of_a_tick_s_reach() -> None:
    """While a launch fires its snipers in turn, a market tick must not fire the rest as
    limits (at a price that leaves out the snipers ahead); those not fired wait on, as
    limits at their maxPrice."""
    mint = base58.b58encode(secrets.token_bytes(32)).decode()
    book = Book()
    snipers = [Watched(order=requested(f"s-{n}", token_out=mint, order_type="sniper",
                                       at=datetime(2026, 1, 1, 0, 0, n, tzinfo=UTC)),
                       seq=2, price=0.0) for n in range(3)]
    for watched in reversed(snipers):
        book.add(watched)
    launch = PoolLaunched(mint=mint, symbol=f"W{secrets.token_hex(2).upper()}", decimals=6,
                          venue="raydium", price="0.0001", liquidity="50")
    apply(launch)
    firing = book.launched(mint)
    assert [w.order_id for w in firing] == ["s-0", "s-1", "s-2"]  # submission order
    assert book.pairs() == [] and all(w.order_id in book for w in firing)
    book.add(firing[2])  # not fired: waits on as a limit
    assert list(book.meetable(("SOL", launch.symbol), 1e9)) == [firing[2]]
