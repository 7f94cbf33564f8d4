"""Raydium-style constant-product pool (x * y = k), the fee taken from the input."""

from __future__ import annotations

import msgspec

from shared.pools.fees import BPS, fee_for
from shared.pools.result import Fill, SwapResult, price_impact


class CpmmPool(msgspec.Struct, frozen=True):
    # Token symbols; reserves are in each token's base units.
    base: str
    quote: str
    base_reserve: int
    quote_reserve: int
    fee_bps: int = 25

    def __post_init__(self) -> None:
        if self.base == self.quote:
            raise ValueError(f"a pool needs two tokens, got {self.base} twice")
        # An empty side has no price, and x * y = k could never refill it.
        if self.base_reserve <= 0 or self.quote_reserve <= 0:
            raise ValueError("pool reserves must be positive")
        # At 100% nothing reaches the curve.
        if not 0 <= self.fee_bps < BPS:
            raise ValueError(f"fee_bps must be in [0, {BPS}), got {self.fee_bps}")


def _reserves(pool: CpmmPool, token_in: str) -> tuple[int, int]:
    """(input-side reserve, output-side reserve)."""
    if token_in == pool.base:
        return pool.base_reserve, pool.quote_reserve
    if token_in == pool.quote:
        return pool.quote_reserve, pool.base_reserve
    raise ValueError(f"{token_in} is not traded by the {pool.base}/{pool.quote} pool")


def spot_price(pool: CpmmPool, token_in: str) -> float:
    """Output per input in base units for an infinitesimal trade, before fees: y / x."""
    x, y = _reserves(pool, token_in)
    return y / x


def fill(pool: CpmmPool, token_in: str, amount_in: int) -> Fill:
    """What swapping ``amount_in`` of ``token_in`` gives: out = floor(y * a' / (x + a')), a'
    net of the fee. The floor keeps k from ever shrinking, and out < y always."""
    if amount_in <= 0:
        raise ValueError(f"amount_in must be positive, got {amount_in}")
    x, y = _reserves(pool, token_in)
    fee = fee_for(amount_in, pool.fee_bps)
    net = amount_in - fee
    out = y * net // (x + net)
    return Fill(amount_in, out, fee, price_impact(out, net, y, x))


def swap(pool: CpmmPool, token_in: str, amount_in: int) -> SwapResult[CpmmPool]:
    """``fill``, and the pool after it. The fee stays in the pool (the input reserve grows by
    the whole amount_in), which is how liquidity providers are paid."""
    filled = fill(pool, token_in, amount_in)
    x, y = _reserves(pool, token_in)
    x_after, y_after = x + amount_in, y - filled.amount_out
    if token_in == pool.base:
        after = msgspec.structs.replace(pool, base_reserve=x_after, quote_reserve=y_after)
    else:
        after = msgspec.structs.replace(pool, base_reserve=y_after, quote_reserve=x_after)
    return SwapResult(filled.amount_in, filled.amount_out, filled.fee, filled.price_impact,
                      after)
