"""A launch's snipers, filled in turn on the launched pool. Pure integer pool math.

The snipers of one launch fire in submission order and each moves the pool for the next.
The volume the ones before a sniper bought in is one number, ``pushed`` (the launched
pool's quote token), and the pool a sniper trades against is the launched pool with that
volume swapped in first (``shared.launches.pushed``): the trigger quotes it so, the router
routes it so and the simulated chain executes it so, and all three agree to the base unit.

A sniper paying in the launch's quote token has one route, the launched pool itself (a
launched token has no other pool, so there is no split and no second hop): one swap prices
it. So a launch of n snipers costs 2n swaps, in one pass, instead of n route searches.
"""

from __future__ import annotations

from shared.market import PoolKey
from shared.pools import InsufficientLiquidity, Pool, swap
from shared.route import FULL, Candidate, Leg, Share


def after(pool: Pool, key: PoolKey, pushed: int) -> Pool | None:
    """The launched pool once ``pushed`` of its quote token bought in; None when it cannot
    take that much."""
    if pushed <= 0:
        return pool
    try:
        return swap(pool, key.quote, pushed).pool_after
    except (InsufficientLiquidity, ZeroDivisionError):
        return None


def direct(pool: Pool, key: PoolKey, amount_in: int) -> Candidate | None:
    """The route that swaps ``amount_in`` of the quote token for the launched token in
    ``pool``; None when the pool cannot fill it."""
    try:
        result = swap(pool, key.quote, amount_in)
    except (InsufficientLiquidity, ZeroDivisionError):
        return None
    if result.amount_out <= 0:
        return None
    leg = Leg(key.dex, key.quote, key.base, amount_in, result.amount_out, result.fee,
              result.price_impact)
    return Candidate("direct", [key.quote, key.base],
                     [[Share(key.dex, key.base, key.quote, FULL)]], [leg],
                     result.amount_out, round(result.price_impact, 8))
