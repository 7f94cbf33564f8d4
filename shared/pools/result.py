"""What a swap against a simulated pool gives back, shared by both venues."""

from __future__ import annotations

from fractions import Fraction
from typing import Generic, TypeVar

import msgspec

# Covariant: a result is read-only, so a SwapResult[CpmmPool] is a SwapResult[Pool].
PoolT = TypeVar("PoolT", covariant=True)


class InsufficientLiquidity(ValueError):
    """The pool cannot fill the whole input; the router treats the pool as unable to quote."""


class SwapResult(msgspec.Struct, Generic[PoolT], frozen=True):
    amount_in: int
    amount_out: int
    # In base units of the input token. It is part of amount_in and stays in the pool.
    fee: int
    # See price_impact below: how far the fill moved from the pre-trade spot price, fees excluded.
    price_impact: float
    # The pool as the swap leaves it; pools are values, so the caller decides what to keep.
    pool_after: PoolT


def price_impact(amount_out: int, net_in: int, spot: Fraction) -> float:
    """1 - (amount_out / net_in) / spot, with net_in = amount_in - fee.

    ``spot`` is output per input (base units) before the trade. Measuring against the input net
    of fees keeps the fee out of the impact, so a tiny trade reads ~0 rather than ~fee. Output
    floors only ever lose the trader value, so the impact is >= 0. When nothing is left after
    the fee there is no execution price; nothing moved, so the impact is 0.
    """
    if net_in == 0:
        return 0.0
    # In integers, one correctly rounded division: the same float as the Fraction arithmetic
    # gives, without reducing three fractions on every swap.
    p, q = spot.numerator, spot.denominator
    return (net_in * p - amount_out * q) / (net_in * p)
