"""Meteora-style DLMM pool: liquidity in discrete price bins, constant-sum within each bin.

Bin ``i`` prices the base token at ``(1 + bin_step / 10000) ** i`` quote base units per base
base unit. Prices are exact ``Fraction``s, so walking many bins never drifts and the
properties (conservation, monotone output, fees in the pool's favour) hold exactly; only
``spot_price`` and ``price_impact`` are floats, at the edge.

The fee is charged bin by bin, as on Meteora, where the variable fee grows with the bins a swap
crosses: the input that fills the k-th bin away from the active one pays
``min(max_fee_bps, base_fee_bps + variable_fee_bps_per_bin * k)``, rounded up per bin. A
bigger swap only adds input to bins further out, so its earlier fills and fees are unchanged:
output is monotone in input, and the total fee is >= ceil(amount_in * base_fee_bps / 10000).
Unlike Meteora, the variable fee does not carry over between swaps (no volatility accumulator):
pools are values and the engine's simulated swaps are independent.
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_left, bisect_right
from fractions import Fraction
from functools import lru_cache

import msgspec
from msgspec.structs import force_setattr

from shared.pools.fees import BPS, ceil_div, fee_for
from shared.pools.result import Fill, InsufficientLiquidity, SwapResult, price_impact


class Bin(msgspec.Struct, frozen=True):
    id: int
    # Liquidity held in the bin, in base units of each token.
    base: int
    quote: int


class DlmmPool(msgspec.Struct, frozen=True):
    base: str
    quote: str
    bin_step: int
    active_id: int
    # Sorted by id; ids need not be contiguous (a missing bin is an empty one).
    bins: tuple[Bin, ...]
    base_fee_bps: int = 20
    variable_fee_bps_per_bin: int = 5
    max_fee_bps: int = 500

    def __post_init__(self) -> None:
        if self.base == self.quote:
            raise ValueError(f"a pool needs two tokens, got {self.base} twice")
        if self.bin_step <= 0:
            raise ValueError(f"bin_step must be positive, got {self.bin_step}")
        if any(a.id >= b.id for a, b in zip(self.bins, self.bins[1:], strict=False)):
            raise ValueError("bins must be sorted by id without duplicates")
        if any(b.base < 0 or b.quote < 0 for b in self.bins):
            raise ValueError("bin liquidity must not be negative")
        # A 100% fee would leave nothing to fill a bin with.
        if not 0 <= self.base_fee_bps <= self.max_fee_bps < BPS:
            raise ValueError(f"fees must satisfy 0 <= base_fee_bps <= max_fee_bps < {BPS}")
        if self.variable_fee_bps_per_bin < 0:
            raise ValueError("variable_fee_bps_per_bin must not be negative")


@lru_cache(maxsize=4096)
def bin_price(bin_step: int, bin_id: int) -> Fraction:
    """Quote base units per base base unit in bin ``bin_id``, exactly."""
    return Fraction(BPS + bin_step, BPS) ** bin_id


@lru_cache(maxsize=4096)
def _rates(bin_step: int, bin_id: int) -> tuple[float, float]:
    """Bin ``bin_id``'s price and its inverse as floats, each correctly rounded (inf where
    one is beyond a float's range)."""
    price = bin_price(bin_step, bin_id)
    p, q = price.numerator, price.denominator
    return _ratio(p, q), _ratio(q, p)


def _ratio(p: int, q: int) -> float:
    try:
        return p / q
    except OverflowError:
        return math.inf


# A float product settles floor(amount * p / q) where no integer lies within its error of
# it: the amount, the ratio and their product are each rounded once, by 2**-53 of the value
# at most, and 2**-48 leaves room for the rounding of the bounds themselves. Only where the
# ratio is a normal float (a subnormal one is coarser) and the product is within 2**52 (beyond
# it the bounds are more than an integer apart anyway).
_SLACK = 2.0**-48
_SMALLEST, _LARGEST = 2.0**-1000, 2.0**52


def floor_times(amount: int, p: int, q: int, ratio: float) -> int:
    """floor(amount * p / q), where ``ratio`` is p / q as a float: by floats where they
    settle it, else by the exact integers, whose bin prices run to thousands of digits. (A
    negative amount turns the bounds round, which the comparison does not mind.)"""
    x = amount * ratio
    if ratio > _SMALLEST and abs(x) < _LARGEST:
        slack = x * _SLACK
        low = math.floor(x - slack)
        if low == math.floor(x + slack):
            return low
    return amount * p // q


def ceil_times(amount: int, p: int, q: int, ratio: float) -> int:
    """ceil(amount * p / q), as ``floor_times``."""
    return -floor_times(-amount, p, q, ratio)


def nearest_bin_id(price: float, bin_step: int) -> int:
    """The id of the bin whose price is closest to ``price`` (quote per base, base units)."""
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"price must be positive and finite, got {price}")
    growth = math.log1p(bin_step / BPS)
    guess = round(math.log(price) / growth)
    neighbours = (guess - 1, guess, guess + 1)
    # Floats settle the neighbours where the nearest is nearer by far more than their error
    # (bins are bin_step bps apart; exp errs by under 1e-13 of the price over the floats'
    # whole range). Otherwise the exact prices do, whose big powers cost a thousand times
    # more. Ties go to the lower id.
    try:
        (near, nearest), (next_near, _) = sorted(
            (abs(math.exp(i * growth) - price), i) for i in neighbours)[:2]
    except OverflowError:
        pass
    else:
        if next_near - near > 1e-9 * price:
            return nearest
    return min(neighbours, key=lambda i: abs(bin_price(bin_step, i) - Fraction(price)))


def _sells_base(pool: DlmmPool, token_in: str) -> bool:
    if token_in == pool.base:
        return True
    if token_in == pool.quote:
        return False
    raise ValueError(f"{token_in} is not traded by the {pool.base}/{pool.quote} pool")


def _spot(pool: DlmmPool, sells_base: bool) -> tuple[int, int]:
    """Output per input (base units) in the active bin, as p / q: the bin price, or its
    inverse, whose fraction would cost a gcd of thousands of digits to make."""
    price = bin_price(pool.bin_step, pool.active_id)
    p, q = price.numerator, price.denominator
    return (p, q) if sells_base else (q, p)


def spot_price(pool: DlmmPool, token_in: str) -> float:
    """Output per input in base units at the active bin's price, before fees."""
    p, q = _spot(pool, _sells_base(pool, token_in))
    return p / q


def _walk(pool: DlmmPool, sells_base: bool) -> range:
    """The indexes of the bins a swap walks, in order: selling base takes quote from the
    active bin down (lower prices), selling quote takes base from the active bin up."""
    if sells_base:
        return range(bisect_right(pool.bins, pool.active_id, key=_id) - 1, -1, -1)
    return range(bisect_left(pool.bins, pool.active_id, key=_id), len(pool.bins))


def _id(b: Bin) -> int:
    return b.id


def fill(pool: DlmmPool, token_in: str, amount_in: int) -> Fill:
    """What swapping ``amount_in`` of ``token_in`` gives, walking bins until the input is
    used up.

    In each bin the input (net of that bin's fee) buys the output token at exactly the bin
    price, floored, up to what the bin holds. Draining a bin costs the least input that buys
    all of it, ceil(held / price) net, and the rest walks on.

    Raises InsufficientLiquidity when the bins cannot take the whole input, or when the swap
    would take the last unit of the output token: an empty side has no price, just as a
    constant-product pool never pays out its whole reserve.

    The work is in the bins walked, not in the pool's size: the router runs many swaps an
    order, and a pool of 161 bins once cost each swap a pass over all of them.
    """
    return _filled(pool, token_in, amount_in)[0]


def swap(pool: DlmmPool, token_in: str, amount_in: int) -> SwapResult[DlmmPool]:
    """``fill``, and the pool after it: the input, fee included, is added to the bins it
    filled from, and the active bin becomes the last one filled."""
    filled, walk, walked, active_id = _filled(pool, token_in, amount_in)
    return SwapResult(filled.amount_in, filled.amount_out, filled.fee, filled.price_impact,
                      _after(pool, walk, walked, active_id))


def _filled(pool: DlmmPool, token_in: str, amount_in: int
            ) -> tuple[Fill, range, list[Bin], int]:
    """The fill, the bins walked, each as the swap leaves it, and the new active bin."""
    if amount_in <= 0:
        raise ValueError(f"amount_in must be positive, got {amount_in}")
    sells_base = _sells_base(pool, token_in)
    walk = _walk(pool, sells_base)
    remaining, out, fee, drained = amount_in, 0, 0, 0
    # Every bin walked, as the swap leaves it; the last one filled becomes the active one.
    walked: list[Bin] = []
    active_id = pool.active_id
    for index in walk:
        if remaining == 0:
            break
        b = pool.bins[index]
        held = b.quote if sells_base else b.base
        # price = p / q; the output per net input is price selling base, 1 / price buying it.
        price = bin_price(pool.bin_step, b.id)
        p, q = price.numerator, price.denominator
        forward, backward = _rates(pool.bin_step, b.id)
        rate = min(
            pool.max_fee_bps,
            pool.base_fee_bps + pool.variable_fee_bps_per_bin * abs(b.id - pool.active_id),
        )
        drain_net = (ceil_times(held, q, p, backward) if sells_base
                     else ceil_times(held, p, q, forward))
        # The least gross g with g - ceil(g * rate / BPS) >= drain_net.
        drain_gross = ceil_div(drain_net * BPS, BPS - rate)
        if remaining >= drain_gross:
            gross, got = drain_gross, held
            drained += held
        else:
            gross = remaining
            net = gross - fee_for(gross, rate)
            # net < drain_net here, so got < held: the bin is never overdrawn.
            got = (floor_times(net, p, q, forward) if sells_base
                   else floor_times(net, q, p, backward))
        if gross == 0:
            # Nothing to buy in this bin; walk past it.
            walked.append(b)
            continue
        remaining -= gross
        out += got
        # Same as drain_gross - drain_net when the bin is drained.
        fee += fee_for(gross, rate)
        if sells_base:
            walked.append(Bin(b.id, b.base + gross, b.quote - got))
        else:
            walked.append(Bin(b.id, b.base - got, b.quote + gross))
        active_id = b.id
    # Only a swap that drained every bin it filled from can have emptied the output side.
    if remaining > 0 or out == drained:
        depth = sum(pool.bins[i].quote if sells_base else pool.bins[i].base for i in walk)
        if remaining > 0:
            raise InsufficientLiquidity(
                f"the {pool.base}/{pool.quote} bins cannot take {amount_in} {token_in}: "
                f"{remaining} would be left once all {depth} on offer is bought"
            )
        if out == depth:
            raise InsufficientLiquidity(
                f"{amount_in} {token_in} would empty the {pool.base}/{pool.quote} pool's "
                "output side"
            )
    impact = price_impact(out, amount_in - fee, *_spot(pool, sells_base))
    return Fill(amount_in, out, fee, impact), walk, walked, active_id


def _after(pool: DlmmPool, walk: range, walked: list[Bin], active_id: int) -> DlmmPool:
    """The pool with the bins walked (the first ``len(walked)`` of ``walk``) replaced. They
    keep their ids and no side goes negative, so the pool stays as valid as it was: it is
    copied rather than built again, as checking every bin again cost more than the swap."""
    start = walk.start
    if walk.step < 0:
        walked.reverse()
        start -= len(walked) - 1
    after = copy.copy(pool)
    force_setattr(after, "bins", (*pool.bins[:start], *walked, *pool.bins[start + len(walked):]))
    force_setattr(after, "active_id", active_id)
    return after


def _split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` equal shares; the remainder goes to the first (active) one."""
    share, rest = divmod(total, parts)
    return [share + rest] + [share] * (parts - 1)


def make_pool(
    base: str,
    quote: str,
    price: float,
    bin_step: int,
    liquidity_base: int,
    liquidity_quote: int,
    bins_each_side: int,
    *,
    base_fee_bps: int = 20,
    variable_fee_bps_per_bin: int = 5,
    max_fee_bps: int = 500,
) -> DlmmPool:
    """A pool centred on the bin nearest ``price`` (quote base units per base base unit).

    Each token is split evenly over ``bins_each_side + 1`` bins: quote over the active bin and
    the ones below it (what sellers of base walk into), base over the active bin and the ones
    above it. The active bin holds one share of each, plus the rounding remainders.
    """
    if bins_each_side < 0:
        raise ValueError(f"bins_each_side must not be negative, got {bins_each_side}")
    if liquidity_base < 0 or liquidity_quote < 0:
        raise ValueError("liquidity must not be negative")
    active = nearest_bin_id(price, bin_step)
    quotes = _split(liquidity_quote, bins_each_side + 1)
    bases = _split(liquidity_base, bins_each_side + 1)
    below = [Bin(active - k, 0, quotes[k]) for k in range(bins_each_side, 0, -1)]
    above = [Bin(active + k, bases[k], 0) for k in range(1, bins_each_side + 1)]
    return DlmmPool(
        base=base,
        quote=quote,
        bin_step=bin_step,
        active_id=active,
        bins=(*below, Bin(active, bases[0], quotes[0]), *above),
        base_fee_bps=base_fee_bps,
        variable_fee_bps_per_bin=variable_fee_bps_per_bin,
        max_fee_bps=max_fee_bps,
    )
