"""shared/pools: constant-product and DLMM swap math, golden numbers and properties."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.pools import (
    Bin,
    CpmmPool,
    DlmmPool,
    Fill,
    InsufficientLiquidity,
    Pool,
    SwapResult,
    fill,
    make_pool,
    spot_price,
    swap,
)
from shared.pools.meteora import bin_price, ceil_times, floor_times, nearest_bin_id
from shared.pools.result import price_impact

Venue = Literal["raydium", "meteora"]
Side = Literal["base", "quote"]

PROPERTY = settings(derandomize=True, max_examples=200, deadline=None, database=None)

# x = 1 SOL, y = 150 USDC in base units (9 and 6 decimals): 0.15 quote units per base unit.
RAYDIUM = CpmmPool("SOL", "USDC", base_reserve=1_000_000_000, quote_reserve=150_000_000)

# bin_step 100 (1%): bin 0 at price 1, bin 1 at 101/100, bin 2 at 10201/10000.
# Quote below and in the active bin, base above and in it, as a real DLMM pool sits.
METEORA = DlmmPool(
    "SOL",
    "USDC",
    bin_step=100,
    active_id=1,
    bins=(Bin(0, 0, 1_000_000), Bin(1, 500_000, 500_000), Bin(2, 1_000_000, 0)),
    base_fee_bps=20,
    variable_fee_bps_per_bin=5,
    max_fee_bps=500,
)


def totals(pool: Pool) -> tuple[int, int]:
    """(base, quote) held by the pool."""
    if isinstance(pool, CpmmPool):
        return pool.base_reserve, pool.quote_reserve
    return sum(b.base for b in pool.bins), sum(b.quote for b in pool.bins)


def token(pool: Pool, side: Side) -> str:
    return pool.base if side == "base" else pool.quote


def try_swap(pool: Pool, token_in: str, amount_in: int) -> SwapResult[Pool] | None:
    """The swap, or None where the pool cannot fill it (DLMM only: x * y = k always can)."""
    try:
        return swap(pool, token_in, amount_in)
    except InsufficientLiquidity:
        assert isinstance(pool, DlmmPool)
        return None


# --- Raydium golden numbers -------------------------------------------------------------


def test_raydium_sell_base_golden() -> None:
    # fee = ceil(10_000_000 * 25 / 10_000) = ceil(25_000) = 25_000
    # a'  = 10_000_000 - 25_000 = 9_975_000
    # out = floor(150_000_000 * 9_975_000 / (1_000_000_000 + 9_975_000))
    #     = floor(1_496_250_000_000_000 / 1_009_975_000)
    #     = 1_481_472   (1_481_472 * 1_009_975_000 = 1_496_249_683_200_000, remainder 316_800_000)
    result = swap(RAYDIUM, "SOL", 10_000_000)
    assert result.fee == 25_000
    assert result.amount_out == 1_481_472
    assert result.amount_in == 10_000_000
    # Before floors the impact is a' / (x + a') = 9_975_000 / 1_009_975_000 = 0.0098765...
    assert result.price_impact == pytest.approx(9_975_000 / 1_009_975_000, abs=1e-6)
    # The whole input, fee included, stays in the pool.
    assert result.pool_after == CpmmPool(
        "SOL", "USDC", base_reserve=1_010_000_000, quote_reserve=148_518_528
    )


def test_raydium_sell_quote_golden() -> None:
    # fee = ceil(1_500_000 * 25 / 10_000) = ceil(3_750) = 3_750
    # a'  = 1_500_000 - 3_750 = 1_496_250
    # out = floor(1_000_000_000 * 1_496_250 / (150_000_000 + 1_496_250))
    #     = floor(1_496_250_000_000_000 / 151_496_250)
    #     = 9_876_482   (9_876_482 * 151_496_250 = 1_496_249_986_192_500, remainder 13_807_500)
    result = swap(RAYDIUM, "USDC", 1_500_000)
    assert (result.fee, result.amount_out) == (3_750, 9_876_482)
    assert result.pool_after == CpmmPool(
        "SOL", "USDC", base_reserve=990_123_518, quote_reserve=151_500_000
    )


def test_raydium_fee_rounds_up() -> None:
    # ceil(1 * 25 / 10_000) = 1: a dust trade still pays, and nothing net reaches the curve.
    result = swap(RAYDIUM, "SOL", 1)
    assert (result.fee, result.amount_out, result.price_impact) == (1, 0, 0.0)


def test_raydium_spot_price() -> None:
    assert spot_price(RAYDIUM, "SOL") == 0.15
    assert spot_price(RAYDIUM, "USDC") == pytest.approx(1 / 0.15)


# --- Meteora golden numbers -------------------------------------------------------------


def test_meteora_sell_base_within_the_active_bin() -> None:
    # Bin 1, price 101/100, fee 20 bps (no bins crossed):
    # fee = ceil(123_457 * 20 / 10_000) = ceil(246.914) = 247
    # net = 123_457 - 247 = 123_210
    # out = floor(123_210 * 101 / 100) = floor(124_442.1) = 124_442  (<= 500_000 held)
    result = swap(METEORA, "SOL", 123_457)
    assert (result.fee, result.amount_out) == (247, 124_442)
    assert result.pool_after.active_id == 1
    assert result.pool_after.bins[1] == Bin(1, 500_000 + 123_457, 500_000 - 124_442)
    # Only the floor moves the price within a bin: 1 - 124_442 / (123_210 * 1.01) ~ 8e-7.
    assert 0 < result.price_impact < 1e-6


def test_meteora_sell_quote_within_the_active_bin() -> None:
    # fee = ceil(101_000 * 20 / 10_000) = 202; net = 100_798
    # out = floor(100_798 * 100 / 101) = 99_800 exactly, so the impact is exactly 0.
    result = swap(METEORA, "USDC", 101_000)
    assert (result.fee, result.amount_out, result.price_impact) == (202, 99_800, 0.0)
    assert result.pool_after.bins[1] == Bin(1, 500_000 - 99_800, 500_000 + 101_000)


def test_meteora_sell_base_crosses_into_the_next_bin() -> None:
    # Bin 1 (price 101/100, 20 bps) holds 500_000 quote. Draining it costs, net of the fee,
    #   ceil(500_000 * 100 / 101) = ceil(495_049.50) = 495_050 base,
    # and gross the least g with g - ceil(g * 20 / 10_000) >= 495_050:
    #   g = ceil(495_050 * 10_000 / 9_980) = ceil(496_042.08) = 496_043; its fee 993.
    # The remaining 600_000 - 496_043 = 103_957 go to bin 0 (price 1), one bin crossed,
    # so 20 + 5 = 25 bps: fee = ceil(103_957 * 25 / 10_000) = ceil(259.89) = 260,
    #   net = 103_697, out = floor(103_697 * 1) = 103_697.
    # Total: out = 500_000 + 103_697 = 603_697, fee = 993 + 260 = 1_253.
    result = swap(METEORA, "SOL", 600_000)
    assert (result.fee, result.amount_out) == (1_253, 603_697)
    assert result.pool_after.active_id == 0
    assert result.pool_after.bins == (
        Bin(0, 103_957, 1_000_000 - 103_697),
        Bin(1, 500_000 + 496_043, 0),
        Bin(2, 1_000_000, 0),
    )
    # The crossing made the swap dearer than the base fee alone: ceil(600_000 * 20 / 10_000).
    assert result.fee > 1_200


def test_meteora_sell_quote_crosses_into_the_next_bin() -> None:
    # Bin 1 holds 500_000 base: net cost ceil(500_000 * 101 / 100) = 505_000 quote,
    #   gross ceil(505_000 * 10_000 / 9_980) = ceil(506_012.02) = 506_013, fee 1_013.
    # Bin 2 (price 10_201/10_000, 25 bps) takes 700_000 - 506_013 = 193_987:
    #   fee ceil(193_987 * 25 / 10_000) = ceil(484.97) = 485, net 193_502,
    #   out floor(193_502 * 10_000 / 10_201) = floor(189_689.25) = 189_689.
    # Total: out = 500_000 + 189_689 = 689_689, fee = 1_013 + 485 = 1_498.
    result = swap(METEORA, "USDC", 700_000)
    assert (result.fee, result.amount_out) == (1_498, 689_689)
    assert result.pool_after.active_id == 2
    assert result.pool_after.bins[1:] == (
        Bin(1, 0, 500_000 + 506_013),
        Bin(2, 1_000_000 - 189_689, 193_987),
    )


def test_meteora_fee_is_capped() -> None:
    pool = msgspec.structs.replace(METEORA, variable_fee_bps_per_bin=10_000, max_fee_bps=30)
    # Bin 0 is one bin away: min(30, 20 + 10_000) = 30 bps, as in test_..._crosses above
    # with 30 instead of 25: ceil(103_957 * 30 / 10_000) = ceil(311.87) = 312.
    assert swap(pool, "SOL", 600_000).fee == 993 + 312


def test_meteora_spot_price_is_the_active_bin_price() -> None:
    assert spot_price(METEORA, "SOL") == 1.01
    assert spot_price(METEORA, "USDC") == pytest.approx(100 / 101)


def test_meteora_runs_out_of_liquidity() -> None:
    # Quote on offer: 1_500_000 in bins 1 and 0; 10 M base is far more than it buys.
    with pytest.raises(InsufficientLiquidity):
        swap(METEORA, "SOL", 10_000_000)
    assert issubclass(InsufficientLiquidity, ValueError)


def test_meteora_never_pays_out_the_last_unit() -> None:
    pool = DlmmPool("SOL", "USDC", 100, 0, (Bin(0, 0, 100),), base_fee_bps=0, max_fee_bps=0)
    # At price 1 and no fee, 99 in buys 99 out; 100 would empty the pool's quote side.
    assert swap(pool, "SOL", 99).amount_out == 99
    with pytest.raises(InsufficientLiquidity):
        swap(pool, "SOL", 100)


def test_meteora_walks_past_empty_bins() -> None:
    # The active bin has no quote; selling base crosses it (and the missing bin -1) into -2,
    # two bins away: 20 + 2 * 5 = 30 bps. Price (101/100) ** -2 = 10_000 / 10_201.
    pool = DlmmPool("SOL", "USDC", 100, 0, (Bin(-2, 0, 1_000_000), Bin(0, 1_000, 0)))
    # fee = ceil(10_201 * 30 / 10_000) = ceil(30.603) = 31; net 10_170;
    # out = floor(10_170 * 10_000 / 10_201) = floor(9_969.61) = 9_969.
    result = swap(pool, "SOL", 10_201)
    assert (result.fee, result.amount_out) == (31, 9_969)
    assert result.pool_after.active_id == -2
    assert result.pool_after.bins[1] == Bin(0, 1_000, 0)


def test_meteora_fills_on_both_sides_of_an_empty_bin() -> None:
    # Selling base: bin 0 (price 1, no fee) is drained for 1_000, bin -1 holds nothing and
    # is walked past, bin -2 takes the other 4_000: floor(4_000 * 10_000 / 10_201) = 3_921.
    pool = DlmmPool("SOL", "USDC", 100, 0,
                    (Bin(-2, 0, 1_000_000), Bin(-1, 0, 0), Bin(0, 0, 1_000), Bin(1, 500, 0)),
                    base_fee_bps=0, max_fee_bps=0)
    result = swap(pool, "SOL", 5_000)
    assert result.amount_out == 1_000 + 3_921
    assert result.pool_after == DlmmPool(
        "SOL", "USDC", 100, -2,
        (Bin(-2, 4_000, 1_000_000 - 3_921), Bin(-1, 0, 0), Bin(0, 1_000, 0), Bin(1, 500, 0)),
        base_fee_bps=0, max_fee_bps=0)
    # The pool swapped against is a value: unchanged.
    assert pool.active_id == 0 and pool.bins[2] == Bin(0, 0, 1_000)


# --- Shared behaviour -------------------------------------------------------------------


@pytest.mark.parametrize("pool", [RAYDIUM, METEORA], ids=["raydium", "meteora"])
def test_bad_input_is_a_value_error(pool: Pool) -> None:
    for amount in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            swap(pool, "SOL", amount)
    with pytest.raises(ValueError, match="BONK"):
        swap(pool, "BONK", 1_000)
    with pytest.raises(ValueError, match="BONK"):
        spot_price(pool, "BONK")


def test_pools_refuse_nonsense_state() -> None:
    with pytest.raises(ValueError):
        CpmmPool("SOL", "USDC", 0, 1)
    with pytest.raises(ValueError):
        CpmmPool("SOL", "SOL", 1, 1)
    with pytest.raises(ValueError):
        CpmmPool("SOL", "USDC", 1, 1, fee_bps=10_000)
    with pytest.raises(ValueError):
        DlmmPool("SOL", "USDC", 25, 0, (Bin(1, 0, 1), Bin(0, 0, 1)))
    with pytest.raises(ValueError):
        DlmmPool("SOL", "USDC", 25, 0, (Bin(0, -1, 1),))
    with pytest.raises(ValueError):
        DlmmPool("SOL", "USDC", 25, 0, (), base_fee_bps=30, max_fee_bps=20)


def test_pools_are_plain_data() -> None:
    # Pools travel in messages: msgspec round-trips them exactly.
    for pool in (RAYDIUM, METEORA):
        assert msgspec.json.decode(msgspec.json.encode(pool), type=type(pool)) == pool
    result = swap(METEORA, "SOL", 600_000)
    assert msgspec.json.decode(msgspec.json.encode(result), type=SwapResult[DlmmPool]) == result


def test_swaps_chain_on_pool_after() -> None:
    # Each: fee 200, net 99_800, out floor(99_800 * 101 / 100) = 100_798, all within bin 1.
    pool = METEORA
    for _ in range(4):
        pool = swap(pool, "SOL", 100_000).pool_after
    assert pool.active_id == 1
    assert totals(pool) == (1_500_000 + 4 * 100_000, 1_500_000 - 4 * 100_798)


# --- make_pool --------------------------------------------------------------------------


def test_make_pool_centres_on_the_nearest_bin() -> None:
    # 150 USDC per SOL = 150e6 / 1e9 = 0.15 quote per base unit.
    # log(0.15) / log(1.0025) = -759.8, so bin -760: 1.0025 ** -760 = 0.14997.
    pool = make_pool("SOL", "USDC", 0.15, 25, 10**12, 150 * 10**9, 5)
    assert pool.active_id == -760
    assert abs(bin_price(25, -760) - 0.15) < abs(bin_price(25, -759) - 0.15)
    assert [b.id for b in pool.bins] == list(range(-765, -754))
    assert totals(pool) == (10**12, 150 * 10**9)
    active = pool.bins[5]
    assert active.base > 0 and active.quote > 0
    assert all(b.base == 0 for b in pool.bins[:5])
    assert all(b.quote == 0 for b in pool.bins[6:])


def test_make_pool_spreads_evenly_with_the_remainder_in_the_active_bin() -> None:
    pool = make_pool("SOL", "USDC", 1.0, 100, 10, 7, 2, base_fee_bps=10)
    assert pool.active_id == 0
    assert pool.bins == (Bin(-2, 0, 2), Bin(-1, 0, 2), Bin(0, 4, 3), Bin(1, 3, 0), Bin(2, 3, 0))
    assert pool.base_fee_bps == 10


def test_make_pool_refuses_a_bad_price() -> None:
    for price in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            make_pool("SOL", "USDC", price, 25, 1, 1, 1)


# --- Properties, both venues and both directions ----------------------------------------

RESERVES = st.integers(1, 10**15)
LIQUIDITY = st.integers(0, 10**12)
# Small amounts exercise the floors and the fee rounding; large ones walk many bins.
AMOUNTS = st.one_of(st.integers(1, 10**6), st.integers(1, 10**13))


def cpmm_pools() -> st.SearchStrategy[Pool]:
    return st.builds(
        CpmmPool,
        base=st.just("SOL"),
        quote=st.just("USDC"),
        base_reserve=RESERVES,
        quote_reserve=RESERVES,
        fee_bps=st.integers(1, 1_000),
    )


@st.composite
def dlmm_pools(draw: st.DrawFn) -> Pool:
    bin_step = draw(st.integers(1, 200))
    active = draw(st.integers(-100, 100))
    # Quote in the bins below the active one, base above; a gap of 2 leaves unfunded bins
    # between them, which a swap must walk past.
    gap = draw(st.integers(1, 2))
    below = draw(st.lists(LIQUIDITY, max_size=6))
    above = draw(st.lists(LIQUIDITY, max_size=6))
    base_fee = draw(st.integers(1, 100))
    return DlmmPool(
        "SOL",
        "USDC",
        bin_step=bin_step,
        active_id=active,
        bins=(
            *(Bin(active - gap * k, 0, q) for k, q in reversed(list(enumerate(below, 1)))),
            Bin(active, draw(LIQUIDITY), draw(LIQUIDITY)),
            *(Bin(active + gap * k, b, 0) for k, b in enumerate(above, 1)),
        ),
        base_fee_bps=base_fee,
        variable_fee_bps_per_bin=draw(st.integers(0, 50)),
        max_fee_bps=draw(st.integers(base_fee, 1_000)),
    )


POOLS: dict[Venue, st.SearchStrategy[Pool]] = {"raydium": cpmm_pools(), "meteora": dlmm_pools()}


def output_stays_below_the_output_side(pool: Pool, side: Side, amount: int) -> None:
    result = try_swap(pool, token(pool, side), amount)
    if result is None:
        return
    out_side = totals(pool)[1 if side == "base" else 0]
    assert 0 <= result.amount_out < out_side


def output_is_monotone_in_input(pool: Pool, side: Side, a: int, b: int) -> None:
    small, large = sorted((a, b))
    lo, hi = try_swap(pool, token(pool, side), small), try_swap(pool, token(pool, side), large)
    if lo is None:
        # A pool that cannot fill an amount cannot fill more either.
        assert hi is None
    elif hi is not None:
        assert hi.amount_out >= lo.amount_out


def fees_are_always_charged(pool: Pool, side: Side, amount: int) -> None:
    result = try_swap(pool, token(pool, side), amount)
    if result is None:
        return
    base_bps = pool.fee_bps if isinstance(pool, CpmmPool) else pool.base_fee_bps
    assert result.fee > 0
    assert result.fee >= -(-amount * base_bps // 10_000)
    assert result.fee <= amount
    if isinstance(pool, DlmmPool):
        # Never above the cap either, but for each filled bin rounding its own fee up.
        assert isinstance(result.pool_after, DlmmPool)
        bins_filled = abs(result.pool_after.active_id - pool.active_id) + 1
        assert result.fee <= -(-amount * pool.max_fee_bps // 10_000) + bins_filled - 1


def swaps_conserve_tokens(pool: Pool, side: Side, amount: int) -> None:
    result = try_swap(pool, token(pool, side), amount)
    if result is None:
        return
    (base, quote), (base_after, quote_after) = totals(pool), totals(result.pool_after)
    if side == "base":
        assert (base_after, quote_after) == (base + amount, quote - result.amount_out)
    else:
        assert (base_after, quote_after) == (base - result.amount_out, quote + amount)
    if isinstance(pool, CpmmPool):
        # The floor and the fee only ever grow k.
        assert base_after * quote_after >= base * quote
    else:
        after = result.pool_after
        assert isinstance(after, DlmmPool)
        assert [b.id for b in after.bins] == [b.id for b in pool.bins]
        assert all(b.base >= 0 and b.quote >= 0 for b in after.bins)


def impact_slack(pool: Pool, side: Side, result: SwapResult[Pool]) -> float:
    """How far output floors alone can lift the price impact of ``result``.

    Before rounding, impact is monotone in size: a bigger trade only adds input at prices no
    better than the ones before. Rounding only ever costs the trader, less than one output
    unit per bin filled, or less than one bin price's worth of output when ceil(held / price)
    drains a bin. So impact(2a) >= exact impact(2a) >= exact impact(a) >= impact(a) - slack(a),
    with slack = lost output / (net input * spot). It vanishes as trades grow; it matters
    only at dust sizes, where a single unit of output is a large fraction of the fill.
    """
    net = result.amount_in - result.fee
    if net == 0:
        return 0.0
    spot = spot_price(pool, token(pool, side))
    if isinstance(pool, CpmmPool):
        return 1 / (net * spot)
    assert isinstance(result.pool_after, DlmmPool)
    bins_filled = abs(result.pool_after.active_id - pool.active_id) + 1
    return bins_filled * max(1.0, spot) / (net * spot)


def price_impact_grows_with_size(pool: Pool, side: Side, amount: int) -> None:
    token_in = token(pool, side)
    single, double = try_swap(pool, token_in, amount), try_swap(pool, token_in, 2 * amount)
    if single is None or double is None:
        return
    assert single.price_impact >= 0
    # 1e-12 absorbs the float conversion of two exact fractions.
    slack = impact_slack(pool, side, single) + 1e-12
    assert double.price_impact >= single.price_impact - slack


@pytest.mark.parametrize("side", ["base", "quote"])
@pytest.mark.parametrize("venue", ["raydium", "meteora"])
@PROPERTY
@given(data=st.data())
def test_swap_properties(venue: Venue, side: Side, data: st.DataObject) -> None:
    # One run checks every property on the same draws: hypothesis spends ~1 ms generating
    # each example and the swaps are microseconds, so this keeps the file fast.
    pool, a, b = data.draw(POOLS[venue]), data.draw(AMOUNTS), data.draw(AMOUNTS)
    output_stays_below_the_output_side(pool, side, a)
    output_is_monotone_in_input(pool, side, a, b)
    fees_are_always_charged(pool, side, a)
    swaps_conserve_tokens(pool, side, a)
    price_impact_grows_with_size(pool, side, a)
    a_fill_is_the_swap_without_its_pool(pool, side, a)


def a_fill_is_the_swap_without_its_pool(pool: Pool, side: Side, amount: int) -> None:
    token_in = token(pool, side)
    swapped = try_swap(pool, token_in, amount)
    if swapped is None:
        with pytest.raises(InsufficientLiquidity):
            fill(pool, token_in, amount)
        return
    assert fill(pool, token_in, amount) == Fill(swapped.amount_in, swapped.amount_out,
                                                 swapped.fee, swapped.price_impact)


def _nearest_exactly(price: float, bin_step: int) -> int:
    """The rule itself: the bin whose exact price is closest to ``price``, ties to the lower."""
    guess = round(math.log(price) / math.log1p(bin_step / 10_000))
    return min((guess - 1, guess, guess + 1),
               key=lambda i: abs(bin_price(bin_step, i) - Fraction(price)))


@settings(derandomize=True, max_examples=100, deadline=None, database=None)
@given(price=st.floats(min_value=1e-2, max_value=1e2), bin_step=st.sampled_from([10, 100]))
def test_the_nearest_bin_is_the_one_whose_exact_price_is_closest(price: float,
                                                                 bin_step: int) -> None:
    assert nearest_bin_id(price, bin_step) == _nearest_exactly(price, bin_step)


@pytest.mark.parametrize("bin_step", [10, 100])
def test_a_price_halfway_between_two_bins_goes_where_the_exact_prices_say(bin_step: int) -> None:
    # Halfway is where the floats cannot tell the two bins apart: the exact prices decide.
    for i in range(-200, 200, 9):
        halfway = float((bin_price(bin_step, i) + bin_price(bin_step, i + 1)) / 2)
        for price in (halfway, math.nextafter(halfway, 0), math.nextafter(halfway, math.inf)):
            assert nearest_bin_id(price, bin_step) == _nearest_exactly(price, bin_step)


def _floor_and_ceil_as_the_integers(amount: int, p: int, q: int) -> None:
    ratio = float(Fraction(p, q)) if p.bit_length() - q.bit_length() < 1000 else math.inf
    assert floor_times(amount, p, q, ratio) == amount * p // q
    assert ceil_times(amount, p, q, ratio) == -(-amount * p // q)


@settings(derandomize=True, max_examples=300, deadline=None, database=None)
@given(amount=st.integers(0, 2**64), bin_id=st.integers(-8000, 8000),
       bin_step=st.sampled_from([1, 10, 25, 100]))
def test_a_bins_floor_and_ceil_by_floats_are_the_exact_ones(amount: int, bin_id: int,
                                                            bin_step: int) -> None:
    price = bin_price(bin_step, bin_id)
    _floor_and_ceil_as_the_integers(amount, price.numerator, price.denominator)
    _floor_and_ceil_as_the_integers(amount, price.denominator, price.numerator)


@settings(derandomize=True, max_examples=200, deadline=None, database=None)
@given(amount=st.integers(0, 2**52), p=st.integers(1, 2**40), shift=st.integers(0, 40))
def test_a_product_on_or_next_to_an_integer_is_settled_exactly(amount: int, p: int,
                                                               shift: int) -> None:
    # A ratio whose float is exact puts the product on integers and halves, where the
    # floats' bounds straddle the answer and the integers decide.
    _floor_and_ceil_as_the_integers(amount, p, 2**shift)
    _floor_and_ceil_as_the_integers(amount * 2**shift, p, 2**shift)
    _floor_and_ceil_as_the_integers(amount * 2**shift + 1, p, 2**shift)


def test_a_ratio_beyond_a_floats_range_is_taken_exactly() -> None:
    huge = bin_price(100, 80_000)  # about 10**345
    for p, q in ((huge.numerator, huge.denominator), (huge.denominator, huge.numerator)):
        ratio = math.inf if p > q else 0.0
        assert floor_times(12_345, p, q, ratio) == 12_345 * p // q
        assert ceil_times(12_345, p, q, ratio) == -(-12_345 * p // q)


@settings(derandomize=True, max_examples=200, deadline=None, database=None)
@given(whole=st.integers(2**40, 2**50), bin_id=st.integers(-6000, -100))
def test_a_product_a_hair_from_an_integer_is_settled_exactly(whole: int, bin_id: int) -> None:
    # The least amount whose output reaches ``whole`` lands above it by less than the price,
    # and one unit less just below: closer to the integer than the floats' own error.
    price = bin_price(10, bin_id)
    p, q = price.numerator, price.denominator
    least = -(-whole * q // p)
    for amount in (least, least - 1):
        _floor_and_ceil_as_the_integers(amount, p, q)



def _exact_impact(amount_out: int, net_in: int, p: int, q: int) -> float:
    return float(1 - Fraction(amount_out, net_in) / Fraction(p, q))


@settings(derandomize=True, max_examples=400, deadline=None, database=None)
@given(net_in=st.integers(1, 2**64), bin_id=st.integers(-8000, 8000),
       bin_step=st.sampled_from([1, 10, 25, 100]), kept=st.integers(0, 2**40),
       sells_base=st.booleans())
def test_a_price_impact_is_the_exact_one_rounded(net_in: int, bin_id: int, bin_step: int,
                                                 kept: int, sells_base: bool) -> None:
    # Outputs from the spot's whole worth down to well under it: small impacts are where
    # the exact integers' leading digits cancel.
    price = bin_price(bin_step, bin_id)
    p, q = (price.numerator, price.denominator) if sells_base else (price.denominator,
                                                                     price.numerator)
    worth = net_in * p // q
    amount_out = worth * kept // 2**40
    assert price_impact(amount_out, net_in, p, q) == _exact_impact(amount_out, net_in, p, q)


def test_a_price_impact_on_a_rounding_tie_is_settled_exactly() -> None:
    # 1 - 2**-54 lies halfway between two floats: the cut spot's bounds fall on either side
    # of it, and the exact integers round it to even.
    spot = 2**139
    assert price_impact(1, 2**54, spot, spot) == _exact_impact(1, 2**54, spot, spot) == 1.0
    # A spot a unit over 2**139 as q puts the exact value a hair under the tie, and its
    # leading bits alone (the unit cut off) would put it on the tie.
    just_under = _exact_impact(1, 2**54, spot, spot + 1)
    assert price_impact(1, 2**54, spot, spot + 1) == just_under == 1 - 2**-53
    assert price_impact(7, 0, 3, 2) == 0.0  # nothing left after the fee: nothing moved
