"""A launch's snipers in turn: the trigger's one-pass fills, the router taking the carried
route, and the simulated chain executing each against the pool as the ones before it
leave it, so the first gets the best executed price."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.executor.chain import execute_route
from services.router.service import carried
from services.trigger.fills import after, direct
from shared.events import Routed
from shared.launches import PoolLaunched, apply, pushed
from shared.market import Market, PoolKey
from shared.pools import Pool
from shared.route import Candidate
from shared.routing import decide
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


def test_the_router_takes_a_carried_route_only_for_its_own_order(launch: PoolLaunched) -> None:
    [(route, _)] = walk(launch, [SOL // 10])
    order = requested(token_in="SOL", token_out=launch.mint, amount_in=SOL // 10,
                      order_type="sniper")
    assert carried(order, route)
    assert not carried(requested(token_in="SOL", token_out=launch.mint, amount_in=SOL // 9,
                                 order_type="sniper"), route)
    assert not carried(requested(token_in="SOL", token_out="USDC", amount_in=SOL // 10),
                       route)
