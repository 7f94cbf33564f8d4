"""What deciding an order's route costs: the router's CPU for an order whose terms it has
not decided this market tick (it remembers a decision per terms and tick, so a benchmark
of identical orders decides once a second). Not a test (it only measures):

    python -m bench.routing

It prints one JSON document: microseconds of CPU per decision (``shared.routing.decide``
against the seeded market at one fixed moment), the median of five rounds of 200, for a few
pairs and sizes: direct, split and two-hop candidates, on both venues; for SOL to USDC in
the first 200 of the sizes ``oee bench`` submits; and what the router and the executor each
pay once a tick for the pools they trade on: every pool of the market built at a new tick,
the median of five rounds of 20 ticks.
"""

from __future__ import annotations

import json
import statistics
import time

from bench.load import amounts
from shared.config import Settings
from shared.market import Market, keys
from shared.routing import decide
from shared.tokens import get

# tokenIn, tokenOut, amount in decimal units of tokenIn.
ORDERS = (("SOL", "USDC", 0.5), ("SOL", "USDC", 500.0), ("USDC", "SOL", 50.0),
          ("SOL", "BONK", 0.5))
ROUNDS, DECISIONS, TICKS = 5, 200, 20
# One moment of the seeded market (2027-01-15): a decision's work depends on the pools'
# state, so every run, whenever it runs, decides on the same pools.
AT = 1_800_000_000.0


def microseconds_per_decision(token_in: str, token_out: str, amounts: list[float]) -> float:
    """Each round decides each of ``amounts`` in turn."""
    market = Market.from_settings(Settings(seed="measure"))
    amounts_in = [int(amount * get(token_in).unit) for amount in amounts]
    pool_of = market.pool_at(AT)
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for amount_in in amounts_in:
            decide(token_in, token_out, amount_in, 0.01, market.pools_between, pool_of)
        rounds.append((time.process_time() - started) / len(amounts_in) * 1e6)
    return round(statistics.median(rounds), 1)


def microseconds_per_tick() -> float:
    market = Market.from_settings(Settings(seed="measure"))
    pools = keys()
    moment = AT
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(TICKS):
            moment += market.tick_s
            for key in pools:
                market.pool(key, moment)
        rounds.append((time.process_time() - started) / TICKS * 1e6)
    return round(statistics.median(rounds), 1)


def main() -> None:
    figures = {f"{token_in}->{token_out} {amount:g}":
               microseconds_per_decision(token_in, token_out, [amount] * DECISIONS)
               for token_in, token_out, amount in ORDERS}
    sizes = [float(amount) for amount in amounts()[:DECISIONS]]
    figures["SOL->USDC in oee bench's sizes"] = microseconds_per_decision("SOL", "USDC", sizes)
    figures[f"every pool ({len(keys())}) at a new tick"] = microseconds_per_tick()
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
