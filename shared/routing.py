"""Finding the best route for an order in a market state. No I/O here.

Candidates: every direct pool; a split of the input across the two venues' direct pools
(the share found by search over a concave function, so it is never worse than either
venue alone); and two hops through SOL or USDC, each hop on its better venue. The winner is
the candidate with the most output, net of every fee. The router records all candidates and
why the winner won; the executor re-runs the winner against the pools at submit time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext
from typing import Literal

import msgspec

from shared.market import PoolKey
from shared.pools import InsufficientLiquidity, Pool, fill
from shared.route import FULL, Candidate, Leg, Share

HUBS = ("SOL", "USDC")


class Decision(msgspec.Struct, frozen=True):
    best: Candidate
    candidates: list[Candidate]
    min_amount_out: int
    reason: str


class NoRoute(ValueError):
    """No pool, or too little liquidity, for this trade."""


PoolOf = Callable[[Share], Pool]
PoolsBetween = Callable[[str, str], Sequence[PoolKey]]


def min_amount_out(quoted_out: int, slippage: float) -> int:
    """The least the order accepts: quotedOut x (1 - slippage), rounded up so the bound
    is never looser than the client asked for."""
    with localcontext(prec=60):
        return math.ceil(Decimal(quoted_out) * (1 - Decimal(repr(slippage))))


def run_route(path: Sequence[str], hops: Sequence[Sequence[Share]], amount_in: int,
              pool_of: PoolOf) -> tuple[list[Leg], int]:
    """Swaps ``amount_in`` along the route against the given pools; the last share of a
    hop takes the rounding remainder. Raises InsufficientLiquidity."""
    legs: list[Leg] = []
    amount = amount_in
    for token_in, token_out, hop in zip(path[:-1], path[1:], hops, strict=True):
        out = 0
        left = amount
        for index, share in enumerate(hop):
            part = left if index == len(hop) - 1 else amount * share.bps // FULL
            left -= part
            if part <= 0:
                continue
            result = fill(pool_of(share), token_in, part)
            legs.append(Leg(share.dex, token_in, token_out, part, result.amount_out,
                            result.fee, result.price_impact))
            out += result.amount_out
        amount = out
    return legs, amount


def _candidate(kind: Literal["direct", "split", "two_hop"], path: list[str],
               hops: list[list[Share]], amount_in: int, pool_of: PoolOf) -> Candidate | None:
    try:
        legs, out = run_route(path, hops, amount_in, pool_of)
    except (InsufficientLiquidity, ZeroDivisionError):
        return None
    if out <= 0:
        return None
    return _priced(kind, path, hops, legs, out)


def _priced(kind: Literal["direct", "split", "two_hop"], path: list[str],
            hops: list[list[Share]], legs: list[Leg], out: int) -> Candidate:
    """The candidate of a route run: its price impact is amount-weighted within a hop and
    compounded across hops."""
    kept = 1.0
    for token_in in path[:-1]:
        hop_legs = [leg for leg in legs if leg.token_in == token_in]
        total = sum(leg.amount_in for leg in hop_legs) or 1
        kept *= 1 - sum(leg.price_impact * leg.amount_in for leg in hop_legs) / total
    return Candidate(kind, path, hops, legs, out, round(1 - kept, 8))


def direct(token_in: str, token_out: str, share: Share, amount_in: int,
           pool_of: PoolOf) -> Candidate | None:
    """The whole input through one pool (None where it cannot fill)."""
    return _candidate("direct", [token_in, token_out], [[share]], amount_in, pool_of)


def _share(key: PoolKey, bps: int = FULL) -> Share:
    return Share(key.dex, key.base, key.quote, bps)


def best_split(token_in: str, token_out: str, first: Share, second: Share, amount_in: int,
               pool_of: PoolOf, directs: tuple[Candidate | None, Candidate | None]
               ) -> Candidate | None:
    """The best share for ``first`` (the rest to ``second``), or None when no split beats
    both venues alone (``directs``: each one's direct candidate, the split's two ends, which
    run the same swap). A coarse grid finds where both parts can fill; a ternary search
    refines it there, where the total output of two concave pools is concave in the share."""
    found: dict[int, Candidate | None] = {FULL: directs[0], 0: directs[1]}

    def at(bps: int) -> Candidate | None:
        if bps not in found:
            found[bps] = _candidate("split", [token_in, token_out],
                                    [[_with(first, bps), _with(second, FULL - bps)]],
                                    amount_in, pool_of)
        return found[bps]

    def output(bps: int) -> int:
        candidate = at(bps)
        return candidate.amount_out if candidate else -1

    # Concavity again: when the better venue alone beats moving one basis point of the
    # order to the other, no split beats it, and the search is not needed. (The venues
    # alone are compared first: they are known, and a basis point moved costs two swaps.)
    for alone, inward in ((FULL, FULL - 1), (0, 1)):
        if output(alone) >= output(FULL - alone) and output(alone) >= output(inward):
            return None
    step = FULL // 20
    centre = max(range(0, FULL + 1, step), key=output)
    low, high = max(0, centre - step), min(FULL, centre + step)
    while high - low > 2:
        a, b = low + (high - low) // 3, high - (high - low) // 3
        if output(a) < output(b):
            low = a
        else:
            high = b
    bps = max(range(low, high + 1), key=output)
    # Rounding makes dust trades step-shaped in the share: only a strict gain counts.
    if output(bps) <= max(output(0), output(FULL)):
        return None
    return at(bps)


def _with(share: Share, bps: int) -> Share:
    return msgspec.structs.replace(share, bps=bps)


def candidates(token_in: str, token_out: str, amount_in: int, pools_between: PoolsBetween,
               pool_of: PoolOf) -> list[Candidate]:
    found: list[Candidate | None] = []
    shares = [_share(k) for k in pools_between(token_in, token_out)]
    for share in shares:
        found.append(direct(token_in, token_out, share, amount_in, pool_of))
    venues = {s.dex: (s, candidate) for s, candidate in zip(shares, found, strict=True)}
    if len(venues) == 2:
        (raydium, raydium_alone), (meteora, meteora_alone) = (venues["raydium"],
                                                              venues["meteora"])
        found.append(best_split(token_in, token_out, raydium, meteora, amount_in, pool_of,
                                (raydium_alone, meteora_alone)))
    for hub in HUBS:
        if hub in (token_in, token_out):
            continue
        onward = pools_between(hub, token_out)
        if not onward:
            continue
        first = _best_leg(token_in, hub, amount_in, pools_between(token_in, hub), pool_of)
        if first is None:
            continue
        second = _best_leg(hub, token_out, first.amount_out, onward, pool_of)
        if second is None:
            continue
        # The route runs the two legs just found, on the same pools: they are its legs.
        found.append(_priced("two_hop", [token_in, hub, token_out],
                             [first.hops[0], second.hops[0]], [*first.legs, *second.legs],
                             second.amount_out))
    return sorted((c for c in found if c is not None), key=lambda c: -c.amount_out)


def _best_leg(token_in: str, token_out: str, amount_in: int, pools: Sequence[PoolKey],
              pool_of: PoolOf) -> Candidate | None:
    legs = [direct(token_in, token_out, _share(k), amount_in, pool_of) for k in pools]
    return max((c for c in legs if c is not None), key=lambda c: c.amount_out, default=None)


def decide(token_in: str, token_out: str, amount_in: int, slippage: float,
           pools_between: PoolsBetween, pool_of: PoolOf) -> Decision:
    found = candidates(token_in, token_out, amount_in, pools_between, pool_of)
    if not found:
        raise NoRoute(f"no route from {token_in} to {token_out} for {amount_in} base units")
    best = found[0]
    reason = f"{best.describe()} pays {best.amount_out} net of fees"
    if len(found) > 1:
        runner_up = found[1]
        edge = best.amount_out - runner_up.amount_out
        share = edge / runner_up.amount_out if runner_up.amount_out else math.inf
        reason += f", {edge} ({share:.3%}) more than {runner_up.describe()}"
    return Decision(best, found, min_amount_out(best.amount_out, slippage), reason)
