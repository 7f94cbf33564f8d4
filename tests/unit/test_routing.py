"""shared/routing.py: candidates in a real (seeded) market, the winner, the slippage bound."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.market import KEYS, Market, PoolKey
from shared.pools import InsufficientLiquidity, swap
from shared.route import FULL, Candidate, Share
from shared.routing import (
    Decision,
    NoRoute,
    PoolsBetween,
    best_split,
    candidates,
    decide,
    direct,
    min_amount_out,
    run_route,
)
from shared.tokens import TOKENS, get

SEED = "unit-tests"
T0 = 1_700_000_000.0  # a fixed moment; the market is seeded, so every run sees these pools
MARKET = Market(SEED, 0.03, 1_000)
POOL_OF = MARKET.pool_at(T0)
SOL = 10**9  # lamports
# Moments at which each venue pays more for a small SOL -> USDC order (checked below).
METEORA_AHEAD = (T0, T0 + 600)
RAYDIUM_AHEAD = (T0 + 1_200, T0 + 1_800)

DETERMINISTIC = settings(derandomize=True, max_examples=60, deadline=None, database=None)


def route(token_in: str, token_out: str, amount_in: int, slippage: float = 0.01,
          at: float = T0) -> Decision:
    return decide(token_in, token_out, amount_in, slippage, MARKET.pools_between,
                  MARKET.pool_at(at))


def direct_outputs(token_in: str, token_out: str, amount_in: int,
                   at: float = T0) -> dict[str, int]:
    """Each venue's output straight from its pool, without the router."""
    return {
        key.dex: swap(MARKET.pool(key, at), token_in, amount_in).amount_out
        for key in MARKET.pools_between(token_in, token_out)
    }


def only(dex: str) -> PoolsBetween:
    """The market's pools_between, as if only one venue existed."""

    def pools_between(a: str, b: str) -> Sequence[PoolKey]:
        return [key for key in MARKET.pools_between(a, b) if key.dex == dex]

    return pools_between


# --- small orders go direct to the better venue --------------------------------------------


@pytest.mark.parametrize("at", METEORA_AHEAD + RAYDIUM_AHEAD)
def test_small_order_goes_direct_to_the_venue_paying_more(at: float) -> None:
    outputs = direct_outputs("SOL", "USDC", SOL, at)
    winner = max(outputs, key=lambda dex: outputs[dex])
    loser = min(outputs, key=lambda dex: outputs[dex])
    decision = route("SOL", "USDC", SOL, at=at)
    best = decision.best
    assert best.kind == "direct"
    assert best.venues == winner
    assert best.amount_out == outputs[winner]
    assert best.path == ["SOL", "USDC"]
    assert [leg.dex for leg in best.legs] == [winner]
    assert best.legs[0].amount_in == SOL
    # The reason names the winner and the runner-up (the other venue), with both outputs.
    runner_up = decision.candidates[1]
    assert runner_up.kind == "direct"
    assert runner_up.venues == loser
    assert runner_up.amount_out == outputs[loser]
    assert decision.reason.startswith(f"{winner} direct pays {outputs[winner]} net of fees")
    assert f"{outputs[winner] - outputs[loser]} (" in decision.reason
    assert decision.reason.endswith(f"more than {runner_up.describe()}")
    assert runner_up.describe() == f"{loser} direct"


def test_each_venue_wins_at_some_moment() -> None:
    winners = set()
    for at in METEORA_AHEAD + RAYDIUM_AHEAD:
        outputs = direct_outputs("SOL", "USDC", SOL, at)
        winners.add(max(outputs, key=lambda dex: outputs[dex]))
        assert route("SOL", "USDC", SOL, at=at).best.venues in winners
    assert winners == {"raydium", "meteora"}
    for at in METEORA_AHEAD:
        assert route("SOL", "USDC", SOL, at=at).best.venues == "meteora"
    for at in RAYDIUM_AHEAD:
        assert route("SOL", "USDC", SOL, at=at).best.venues == "raydium"


def test_the_direction_of_the_order_follows_the_pool() -> None:
    decision = route("USDC", "SOL", 150_000_000)
    outputs = direct_outputs("USDC", "SOL", 150_000_000)
    assert decision.best.amount_out == max(outputs.values())
    leg = decision.best.legs[0]
    assert (leg.token_in, leg.token_out) == ("USDC", "SOL")
    # The share names the pool as the market lists it.
    (share,) = decision.best.hops[0]
    assert (share.base, share.quote, share.bps) == ("SOL", "USDC", FULL)


def test_fees_are_net_of_the_output() -> None:
    best = route("SOL", "USDC", SOL).best
    (leg,) = best.legs
    assert leg.fee > 0
    assert leg.amount_out == best.amount_out
    assert 0 <= best.price_impact < 0.001  # 1 SOL barely moves a $12M pool


# --- two hops ------------------------------------------------------------------------------


def test_no_direct_pool_routes_two_hop_through_sol() -> None:
    amount = 10_000_000 * get("BONK").unit  # 10M BONK, about $200
    decision = route("BONK", "RAY", amount)
    best = decision.best
    assert MARKET.pools_between("BONK", "RAY") == []
    assert best.kind == "two_hop"
    assert best.path == ["BONK", "SOL", "RAY"]
    # USDC is no hub here: BONK has no USDC pool. So this is the only route.
    assert decision.candidates == [best]
    first, second = best.legs
    assert (first.token_in, first.token_out) == ("BONK", "SOL")
    assert (second.token_in, second.token_out) == ("SOL", "RAY")
    assert first.amount_in == amount
    assert second.amount_in == first.amount_out
    assert second.amount_out == best.amount_out
    # The first hop takes the BONK/SOL venue that pays more.
    outputs = direct_outputs("BONK", "SOL", amount)
    assert first.dex == max(outputs, key=lambda dex: outputs[dex])
    assert first.amount_out == max(outputs.values())
    assert second.dex == "raydium"  # the only RAY/SOL pool
    assert best.venues == f"{first.dex}>raydium"
    assert decision.reason == (
        f"BONK -> SOL -> RAY via {best.venues} pays {best.amount_out} net of fees"
    )
    # Price impact compounds over the hops.
    kept = (1 - first.price_impact) * (1 - second.price_impact)
    assert best.price_impact == pytest.approx(1 - kept, abs=1e-8)


def test_a_pair_with_both_direct_and_two_hop_routes() -> None:
    # SOL -> USDT: two direct pools, their split, and SOL -> USDC -> USDT.
    found = candidates("SOL", "USDT", 1_000 * SOL, MARKET.pools_between, POOL_OF)
    kinds = sorted(c.kind for c in found)
    assert kinds.count("direct") == 2
    assert "two_hop" in kinds
    (hop,) = [c for c in found if c.kind == "two_hop"]
    assert hop.path == ["SOL", "USDC", "USDT"]


# --- large orders split --------------------------------------------------------------------


def test_very_large_order_splits_across_both_venues() -> None:
    amount = 50_000 * SOL  # about $7.5M against $20M and $12M pools
    decision = route("SOL", "USDC", amount)
    best = decision.best
    assert best.kind == "split"
    assert best.venues == "raydium+meteora"
    singles = [c for c in decision.candidates if c.kind == "direct"]
    assert singles  # Meteora's bins alone cannot take it all, Raydium's curve can
    assert all(best.amount_out > c.amount_out for c in singles)
    (hop,) = best.hops
    assert [s.dex for s in hop] == ["raydium", "meteora"]
    assert sum(s.bps for s in hop) == FULL
    assert all(0 < s.bps < FULL for s in hop)
    assert [leg.dex for leg in best.legs] == ["raydium", "meteora"]
    assert sum(leg.amount_in for leg in best.legs) == amount
    assert best.legs[0].amount_in == amount * hop[0].bps // FULL
    assert sum(leg.amount_out for leg in best.legs) == best.amount_out
    assert decision.reason.startswith(f"split {hop[0].bps / 100:g}% raydium, ")
    assert f"more than {decision.candidates[1].describe()}" in decision.reason


def split_grid(amount: int, step: int = 250) -> dict[int, int]:
    """Raydium's share (bps) -> the output of that split of a SOL -> USDC order, for every
    share on the grid that both pools can fill."""
    grid = {}
    for bps in range(0, FULL + 1, step):
        hop = [Share("raydium", "SOL", "USDC", bps), Share("meteora", "SOL", "USDC", FULL - bps)]
        try:
            grid[bps] = run_route(["SOL", "USDC"], [hop], amount, POOL_OF)[1]
        except InsufficientLiquidity:
            continue
    return grid


@pytest.mark.parametrize("sol", [20_000, 50_000, 100_000])
def test_the_split_share_beats_a_grid(sol: int) -> None:
    decision = route("SOL", "USDC", sol * SOL)
    grid = split_grid(sol * SOL)
    assert len(grid) > 10
    assert decision.best.kind == "split"
    assert decision.best.amount_out >= max(grid.values())


def test_a_huge_order_still_finds_the_split() -> None:
    amount = 150_000 * SOL
    grid = split_grid(amount)
    assert min(grid) > FULL * 2 // 3  # Meteora alone fills less than a third of it
    best = route("SOL", "USDC", amount).best
    assert best.kind == "split"
    assert best.amount_out >= max(grid.values())


def test_best_split_is_none_when_one_venue_alone_is_best() -> None:
    raydium, meteora = (Share(k.dex, k.base, k.quote, FULL)
                        for k in MARKET.pools_between("SOL", "USDC"))
    alone = (direct("SOL", "USDC", raydium, SOL, POOL_OF),
             direct("SOL", "USDC", meteora, SOL, POOL_OF))
    # A small order does best on one venue: nothing to split.
    assert best_split("SOL", "USDC", raydium, meteora, SOL, POOL_OF, alone) is None


# --- ordering, NoRoute ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_in", "token_out", "amount"),
    [("SOL", "USDC", 50_000 * SOL), ("SOL", "USDT", 1_000 * SOL), ("USDC", "USDT", 10**12),
     ("JUP", "SOL", 10**9), ("SOL", "BONK", 10 * SOL)],
)
def test_candidates_are_sorted_best_first(token_in: str, token_out: str, amount: int) -> None:
    decision = route(token_in, token_out, amount)
    outs = [c.amount_out for c in decision.candidates]
    assert outs == sorted(outs, reverse=True)
    assert decision.best == decision.candidates[0]
    assert decision.min_amount_out == min_amount_out(decision.best.amount_out, 0.01)
    assert all(c.amount_out > 0 for c in decision.candidates)


def test_decide_records_every_candidate() -> None:
    amount = 1_000 * SOL
    decision = route("SOL", "USDT", amount)
    assert decision.candidates == candidates("SOL", "USDT", amount, MARKET.pools_between,
                                             POOL_OF)


def test_dust_cannot_fill() -> None:
    # One lamport: the fee takes it all on either venue, nothing comes out.
    with pytest.raises(NoRoute, match="no route from SOL to USDC for 1 base units"):
        route("SOL", "USDC", 1)


def test_no_pools_no_route() -> None:
    with pytest.raises(NoRoute):
        decide("SOL", "USDC", SOL, 0.01, lambda a, b: [], POOL_OF)


def test_absurd_amount_cannot_fill_bins() -> None:
    # Meteora's bins hold a finite amount; with no constant-product pool to fall back on,
    # 10**30 lamports find no route. (Raydium's x * y = k curve pays *something* for any
    # input, so on the full market such an order routes there at ~100% price impact.)
    with pytest.raises(NoRoute):
        decide("SOL", "USDC", 10**30, 0.01, only("meteora"), POOL_OF)
    assert issubclass(NoRoute, ValueError)


def test_routing_is_pure() -> None:
    before = [MARKET.pool(key, T0) for key in KEYS]
    first = route("SOL", "USDC", 50_000 * SOL)
    assert route("SOL", "USDC", 50_000 * SOL) == first
    assert [MARKET.pool(key, T0) for key in KEYS] == before


# --- min_amount_out ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quoted", "slippage", "expected"),
    [
        (1_000, 0.01, 990),
        (1_000, 0.5, 500),
        (999, 0.01, 990),  # 989.01 rounds up
        (1, 0.01, 1),
        (0, 0.01, 0),
        (74_000_000, 0.01, 73_260_000),
        (100, 0.45, 55),
        (5_220_244_780_370_680, 0.01, 5_168_042_332_566_974),
    ],
)
def test_min_amount_out(quoted: int, slippage: float, expected: int) -> None:
    assert min_amount_out(quoted, slippage) == expected


@pytest.mark.parametrize(
    ("quoted", "slippage_text"),
    [
        (100, "0.45"),  # exact 55, float gives 56 (stricter)
        (5_220_244_780_370_680, "0.01"),  # exact ...973.2, float gives ...973 (looser)
        (2**64 - 1, "0.01"),  # float off by far more than one unit
    ],
)
def test_min_amount_out_is_exact_ceiling(quoted: int, slippage_text: str) -> None:
    exact = Fraction(quoted) * (1 - Fraction(slippage_text))
    assert min_amount_out(quoted, float(slippage_text)) == math.ceil(exact)


@DETERMINISTIC
@given(
    st.integers(min_value=0, max_value=2**64),
    st.sampled_from(["0.0001", "0.001", "0.005", "0.01", "0.02", "0.03", "0.1", "0.25", "0.5"]),
)
def test_min_amount_out_is_the_ceiling(quoted: int, slippage_text: str) -> None:
    exact = Fraction(quoted) * (1 - Fraction(slippage_text))
    assert min_amount_out(quoted, float(slippage_text)) == math.ceil(exact)


# --- properties over random amounts --------------------------------------------------------

# 0.0001 SOL to 99,000 SOL, spread over the magnitudes.
AMOUNTS = st.builds(lambda mantissa, exponent: mantissa * 10**exponent,
                    st.integers(1, 99), st.integers(5, 12))


def _best_direct(found: list[Candidate]) -> int:
    return max(c.amount_out for c in found if c.kind == "direct")


@DETERMINISTIC
@given(AMOUNTS)
def test_best_is_never_worse_than_any_candidate(amount: int) -> None:
    decision = route("SOL", "USDC", amount)
    assert decision.best in decision.candidates
    assert all(decision.best.amount_out >= c.amount_out for c in decision.candidates)
    assert decision.min_amount_out == min_amount_out(decision.best.amount_out, 0.01)
    assert decision.min_amount_out <= decision.best.amount_out


@DETERMINISTIC
@given(st.one_of(
    st.builds(lambda mantissa, exponent: mantissa * 10**exponent,
              st.integers(1, 99), st.integers(7, 12)),
    # Where splits happen: orders that move a pool by more than the venues' 2-5% gap.
    st.integers(10_000 * SOL, 300_000 * SOL),
))
def test_split_is_never_worse_than_the_best_single_venue(amount: int) -> None:
    """From 0.01 SOL up; dust amounts have a test of their own right after."""
    found = candidates("SOL", "USDC", amount, MARKET.pools_between, POOL_OF)
    for split in (c for c in found if c.kind == "split"):
        assert split.amount_out >= _best_direct(found)


def test_split_is_never_worse_than_the_best_single_venue_for_dust() -> None:
    for amount in (11_000, 137_000):
        found = candidates("SOL", "USDC", amount, MARKET.pools_between, POOL_OF)
        for split in (c for c in found if c.kind == "split"):
            assert split.amount_out >= _best_direct(found), amount


# A pair and an order worth $1 to $1M of the input token.
PAIRS = [(a.symbol, b.symbol) for a in TOKENS for b in TOKENS if a != b]


@DETERMINISTIC
@given(st.sampled_from(PAIRS), st.integers(0, 6), st.integers(1, 9))
def test_run_route_reproduces_the_best_route(pair: tuple[str, str], magnitude: int,
                                             digit: int) -> None:
    token_in, token_out = pair
    token = get(token_in)
    amount = int(digit * 10**magnitude / token.usd * token.unit)
    decision = route(token_in, token_out, amount)
    best = decision.best
    legs, out = run_route(best.path, best.hops, amount, POOL_OF)
    assert out == best.amount_out
    assert legs == best.legs
    # Against a fresh market of the same seed at the same moment, too.
    fresh = Market(SEED, 0.03, 1_000).pool_at(T0)
    assert run_route(best.path, best.hops, amount, fresh)[1] == best.amount_out


def test_run_route_gives_the_remainder_to_the_last_share() -> None:
    hop = [Share("raydium", "SOL", "USDC", 3_333), Share("meteora", "SOL", "USDC", 6_667)]
    legs, out = run_route(["SOL", "USDC"], [hop], 1_000_001, POOL_OF)
    assert [leg.amount_in for leg in legs] == [333_300, 666_701]
    assert out == sum(leg.amount_out for leg in legs)


def test_run_route_skips_an_empty_share() -> None:
    hop = [Share("raydium", "SOL", "USDC", 0), Share("meteora", "SOL", "USDC", FULL)]
    legs, _ = run_route(["SOL", "USDC"], [hop], SOL, POOL_OF)
    assert [leg.dex for leg in legs] == ["meteora"]


@pytest.mark.parametrize(("token_in", "token_out"),
                         [("JUP", "BONK"), ("BONK", "JUP"), ("RAY", "USDT"), ("USDT", "BONK")])
def test_every_candidate_is_its_route_run_on_the_pools(token_in: str, token_out: str) -> None:
    # A two-hop candidate is put together from the legs found for it: it must be what
    # running its route gives, leg for leg.
    amount_in = 7 * get(token_in).unit // 10
    found = candidates(token_in, token_out, amount_in, MARKET.pools_between, POOL_OF)
    assert any(c.kind == "two_hop" for c in found)
    for candidate in found:
        legs, out = run_route(candidate.path, candidate.hops, amount_in, POOL_OF)
        assert (candidate.legs, candidate.amount_out) == (legs, out)
