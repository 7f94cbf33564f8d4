"""What a swap against a simulated pool gives back, shared by both venues."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

# Covariant: a result is read-only, so a SwapResult[CpmmPool] is a SwapResult[Pool].
PoolT = TypeVar("PoolT", covariant=True)


class InsufficientLiquidity(ValueError):
    """The pool cannot fill the whole input; the router treats the pool as unable to quote."""


class Fill(msgspec.Struct, frozen=True):
    """What a swap gives for its input, against the pool as it was."""

    amount_in: int
    amount_out: int
    # In base units of the input token. It is part of amount_in and stays in the pool.
    fee: int
    # See price_impact below: how far the fill moved from the pre-trade spot price, fees excluded.
    price_impact: float


class SwapResult(Fill, Generic[PoolT], frozen=True):
    # The pool as the swap leaves it; pools are values, so the caller decides what to keep.
    pool_after: PoolT


# Bits of the spot price that settle an impact before its exact integers are used.
_SPOT_BITS = 128


def price_impact(amount_out: int, net_in: int, p: int, q: int) -> float:
    """1 - (amount_out / net_in) / spot, with net_in = amount_in - fee and spot = p / q.

    ``spot`` is output per input (base units) before the trade. Measuring against the input net
    of fees keeps the fee out of the impact, so a tiny trade reads ~0 rather than ~fee. Output
    floors only ever lose the trader value, so the impact is >= 0. When nothing is left after
    the fee there is no execution price; nothing moved, so the impact is 0.

    The float is the exact value correctly rounded. A DLMM bin's price runs to thousands of
    digits, so the value is first bounded by the spot's leading bits: the impact rises with
    p and falls with q, so p and q cut down to them, each bound turned its way, give a value
    on each side of the exact one, and where both round to one float so does the exact one.
    """
    if net_in == 0:
        return 0.0
    shift = min(p.bit_length(), q.bit_length()) - _SPOT_BITS
    if shift > 0:
        p_cut, q_cut = p >> shift, q >> shift
        low = (net_in * p_cut - amount_out * (q_cut + 1)) / (net_in * p_cut)
        high = (net_in * (p_cut + 1) - amount_out * q_cut) / (net_in * (p_cut + 1))
        if low == high:
            return low
    return (net_in * p - amount_out * q) / (net_in * p)
