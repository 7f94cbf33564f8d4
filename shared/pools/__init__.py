"""Pure AMM math for the simulated venues: Raydium's constant product, Meteora's DLMM bins.

No I/O and no clock: a pool is a value; a fill says what a swap gives, and a swap returns
the fill and the next pool.
"""

from __future__ import annotations

from typing import overload

from shared.pools import meteora, raydium
from shared.pools.meteora import Bin, DlmmPool, make_pool
from shared.pools.raydium import CpmmPool
from shared.pools.result import Fill, InsufficientLiquidity, SwapResult

Pool = CpmmPool | DlmmPool

__all__ = [
    "Bin",
    "CpmmPool",
    "DlmmPool",
    "Fill",
    "InsufficientLiquidity",
    "Pool",
    "SwapResult",
    "fill",
    "make_pool",
    "spot_price",
    "swap",
]


def fill(pool: Pool, token_in: str, amount_in: int) -> Fill:
    """What swapping ``amount_in`` base units of ``token_in`` in any pool gives, the pool
    left as it is: what a route is quoted and executed by."""
    if isinstance(pool, CpmmPool):
        return raydium.fill(pool, token_in, amount_in)
    return meteora.fill(pool, token_in, amount_in)


@overload
def swap(pool: CpmmPool, token_in: str, amount_in: int) -> SwapResult[CpmmPool]: ...
@overload
def swap(pool: DlmmPool, token_in: str, amount_in: int) -> SwapResult[DlmmPool]: ...
def swap(pool: Pool, token_in: str, amount_in: int) -> SwapResult[Pool]:
    """Swap ``amount_in`` base units of ``token_in`` (the pool's base or quote) in any pool."""
    if isinstance(pool, CpmmPool):
        return raydium.swap(pool, token_in, amount_in)
    return meteora.swap(pool, token_in, amount_in)


def spot_price(pool: Pool, token_in: str) -> float:
    """Output per input in base units, before fees, for an infinitesimal trade."""
    if isinstance(pool, CpmmPool):
        return raydium.spot_price(pool, token_in)
    return meteora.spot_price(pool, token_in)
