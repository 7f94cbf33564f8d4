"""services/router/routing.py: the better net output wins; the slippage bound."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.routing import choose, min_amount_out
from tests.unit.builders import quote


def test_higher_net_amount_wins() -> None:
    quotes = [quote("raydium", 1_000), quote("meteora", 1_030, fee_bps=30)]
    decision = choose(quotes, 0.01)
    assert decision.dex == "meteora"
    assert decision.amount_out == 1_030
    assert decision.min_amount_out == min_amount_out(1_030, 0.01)


def test_order_of_quotes_does_not_matter() -> None:
    a, b = quote("raydium", 2_000), quote("meteora", 1_900)
    assert choose([a, b], 0.01) == choose([b, a], 0.01)
    assert choose([a, b], 0.01).dex == "raydium"


def test_net_output_decides_not_price() -> None:
    # Meteora has the better price but its net output after fees is lower.
    quotes = [
        quote("raydium", 1_000, price=100.0, fee=3),
        quote("meteora", 999, price=101.0, fee=30, fee_bps=30),
    ]
    assert choose(quotes, 0.01).dex == "raydium"


def test_reason_names_both_venues() -> None:
    decision = choose([quote("raydium", 1_000), quote("meteora", 1_050)], 0.01)
    assert "meteora" in decision.reason
    assert "raydium" in decision.reason
    assert "1050" in decision.reason
    assert "1000" in decision.reason


@pytest.mark.parametrize("first", ["raydium", "meteora"])
def test_tie_is_broken_by_dex_name(first: str) -> None:
    other = "meteora" if first == "raydium" else "raydium"
    quotes = [quote(first, 5_000), quote(other, 5_000)]
    decision = choose(quotes, 0.01)
    assert decision.dex == "meteora"  # alphabetically first, whatever the input order
    assert decision == choose(list(reversed(quotes)), 0.01)


def test_single_quote() -> None:
    decision = choose([quote("raydium", 777)], 0.02)
    assert decision.dex == "raydium"
    assert decision.amount_out == 777
    assert decision.min_amount_out == min_amount_out(777, 0.02)
    assert "raydium" in decision.reason
    assert "only" in decision.reason


def test_runner_up_with_zero_output_does_not_crash() -> None:
    decision = choose([quote("raydium", 10), quote("meteora", 0)], 0.01)
    assert decision.dex == "raydium"
    assert "meteora" in decision.reason


def test_no_quotes_raises() -> None:
    with pytest.raises(ValueError):
        choose([], 0.01)


@pytest.mark.parametrize(
    ("quoted", "slippage", "expected"),
    [
        (1_000, 0.01, 990),
        (1_000, 0.5, 500),
        (999, 0.01, 990),  # 989.01 rounds up
        (1, 0.01, 1),
        (0, 0.01, 0),
        (74_000_000, 0.01, 73_260_000),
    ],
)
def test_min_amount_out(quoted: int, slippage: float, expected: int) -> None:
    assert min_amount_out(quoted, slippage) == expected


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.integers(min_value=0, max_value=2**40),
    st.sampled_from(["0.0001", "0.001", "0.005", "0.01", "0.02", "0.03", "0.1", "0.25", "0.5"]),
)
def test_min_amount_out_never_below_floor(quoted: int, slippage_text: str) -> None:
    exact = Fraction(quoted) * (1 - Fraction(slippage_text))
    bound = min_amount_out(quoted, float(slippage_text))
    assert math.floor(exact) <= bound <= quoted
    assert bound <= math.ceil(exact) + 1


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
