"""Events as the services would append them, for tools that feed one service directly."""

from __future__ import annotations

import time

from shared.config import Settings
from shared.events import OrderRequested, Routed
from shared.market import Market
from shared.routing import decide


def order(order_id: str, token_in: str = "SOL", token_out: str = "USDC",
          amount_in: int = 500_000_000, slippage: float = 0.01) -> OrderRequested:
    return OrderRequested(order_id=order_id, seq=1, token_in=token_in, token_out=token_out,
                          amount_in=amount_in, amount="0.5", slippage=slippage)


def route_now(requested: OrderRequested, settings: Settings) -> Routed:
    """The Routed event the router would append for this order now."""
    market = Market.from_settings(settings)
    decision = decide(requested.token_in, requested.token_out, requested.amount_in,
                      requested.slippage, market.pools_between, market.pool_at(time.time()))
    return Routed(order_id=requested.order_id, seq=requested.seq + 1, dex=decision.best.venues,
                  route=decision.best, candidates=decision.candidates, quotes=[],
                  amount_out=decision.best.amount_out, min_amount_out=decision.min_amount_out,
                  reason=decision.reason)
