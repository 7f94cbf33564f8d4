"""What a waiting order's own terms allow: the least output it accepts. Pure.

A limit order never fills below ``amount x limitPrice``; a sniper with a ``maxPrice`` never
pays more than that per token, so it never fills below ``amount / maxPrice``. The execution
bound of either is the larger of that and the quote less slippage, as for a market order.
A sniper fired on its launched pool is routed on the route the trigger priced there.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

from shared.events import OrderRequested, Routed
from shared.route import Candidate
from shared.routing import min_amount_out
from shared.tokens import find


def own_bound(order: OrderRequested) -> int:
    """The least tokenOut (base units) the order's own price allows; 0 when it sets none
    or its tokenOut is not known yet (a sniper before its launch)."""
    token_out = find(order.token_out)
    if token_out is None:
        return 0
    with localcontext(prec=80):
        amount = Decimal(order.amount)
        if isinstance(order.limit_price, str):
            least = amount * Decimal(order.limit_price)
        elif isinstance(order.max_price, str):
            least = amount / Decimal(order.max_price)
        else:
            return 0
        return math.ceil(least.scaleb(token_out.decimals))


def execution_bound(order: OrderRequested, quoted_min: int) -> int:
    """The minAmountOut of an execution: the quote less slippage, raised to the order's
    own bound."""
    return max(quoted_min, own_bound(order))


def routed_on_launch(order: OrderRequested, seq: int, fill: Candidate, ahead: int) -> Routed:
    """A fired sniper's route: its fill on the launched pool, as the trigger priced it with
    ``ahead`` of the pool's quote token bought in by the snipers fired before it. A launched
    pool is the same at any moment, so no venue is asked and nothing is searched again."""
    return Routed(
        order_id=order.order_id, seq=seq, dex=fill.venues, route=fill, candidates=[fill],
        quotes=[], amount_out=fill.amount_out,
        min_amount_out=execution_bound(order, min_amount_out(fill.amount_out, order.slippage)),
        reason=f"{fill.describe()} pays {fill.amount_out} net of fees on the launched pool",
        pushed=ahead,
    )

