"""services/router/market.py: the simulated venues' prices and quotes."""

from __future__ import annotations

import math
import random

import pytest

from services.router.market import FEE_BPS, SPREAD, quote_at, venue_prices
from shared.events import Dex
from shared.tokens import get
from tests.unit.builders import requested

SEEDS = range(500)


def test_two_venues_priced() -> None:
    prices = venue_prices(requested(), random.Random(1))
    assert set(prices) == {"raydium", "meteora"}
    assert all(p > 0 for p in prices.values())


def test_venue_prices_differ_by_two_to_five_percent() -> None:
    order = requested()
    for seed in SEEDS:
        prices = venue_prices(order, random.Random(seed))
        high, low = max(prices.values()), min(prices.values())
        spread = high / low - 1
        # (1 + h) / (1 - h) - 1 for h = spread / 2 in [0.01, 0.025]
        assert 0.02 <= spread <= 0.0527, (seed, spread)


def test_venue_prices_stay_near_the_reference() -> None:
    order = requested(token_in="SOL", token_out="USDC")
    reference = get("SOL").usd / get("USDC").usd
    for seed in SEEDS:
        for price in venue_prices(order, random.Random(seed)).values():
            assert abs(price / reference - 1) < 0.04


def test_either_venue_can_be_cheaper() -> None:
    order = requested()
    winners = set()
    for seed in SEEDS:
        prices = venue_prices(order, random.Random(seed))
        winners.add(max(prices, key=lambda d: prices[d]))
    assert winners == {"raydium", "meteora"}


def test_venue_prices_are_reproducible_from_the_seed() -> None:
    order = requested()
    assert venue_prices(order, random.Random("s")) == venue_prices(order, random.Random("s"))


def test_spread_constant() -> None:
    assert SPREAD == (0.02, 0.05)


@pytest.mark.parametrize("dex", ["raydium", "meteora"])
def test_quote_charges_the_fee(dex: Dex) -> None:
    order = requested(token_in="SOL", token_out="USDC", amount_in=500_000_000)
    q = quote_at(order, dex, 150.0, 201.23456)
    gross = math.floor(0.5 * 150.0 * 10**6)  # 75 USDC in base units
    fee = math.ceil(gross * FEE_BPS[dex] / 10_000)
    assert q.dex == dex
    assert q.fee == fee > 0
    assert q.amount_out == gross - fee
    assert q.fee_bps == FEE_BPS[dex]
    assert q.price == 150.0
    assert q.latency_ms == 201.235


def test_fee_rates() -> None:
    assert FEE_BPS == {"raydium": 25, "meteora": 30}


def test_fee_is_rounded_up() -> None:
    # 1 SOL -> USDC at 1.0 USDC per SOL: gross 1_000_000, 25 bps = 2500 exactly.
    order = requested(amount_in=1_000_000_000)
    assert quote_at(order, "raydium", 1.0, 0).fee == 2_500
    # A gross of 1 base unit still pays a fee of one unit.
    tiny = requested(token_in="USDC", token_out="USDT", amount_in=1, amount="0.000001")
    q = quote_at(tiny, "raydium", 1.0, 0)
    assert (q.fee, q.amount_out) == (1, 0)


@pytest.mark.parametrize("amount_in", [1_000, 123_456_789, 10**12, 2**64 - 1])
def test_fee_positive_for_non_trivial_amounts(amount_in: int) -> None:
    order = requested(amount_in=amount_in)
    for dex in ("raydium", "meteora"):
        q = quote_at(order, dex, 148.5, 0)
        assert q.fee > 0
        assert q.amount_out + q.fee == math.floor(amount_in / 10**9 * 148.5 * 10**6)


def test_quote_units_follow_token_decimals() -> None:
    # 150 USDC -> SOL at 1/150 SOL per USDC: about 1 SOL (10**9 lamports) before fees.
    order = requested(token_in="USDC", token_out="SOL", amount_in=150_000_000, amount="150")
    q = quote_at(order, "meteora", 1 / 150, 0)
    assert abs(q.amount_out + q.fee - 10**9) <= 1
    assert q.fee == math.ceil((q.amount_out + q.fee) * 30 / 10_000)


def test_higher_price_gives_more_output() -> None:
    order = requested()
    low = quote_at(order, "raydium", 147.0, 0)
    high = quote_at(order, "raydium", 153.0, 0)
    assert high.amount_out > low.amount_out
