"""Measures one trigger process at scale, against a real Redis: how long from a market tick
that crosses limits to their ``Triggered`` being in the store, with N open limit orders;
and the memory each open order costs. ``python -m bench.limits --orders 100000``.

The market is a function of time, so the run walks simulated ticks (``check(at)`` with the
tick's time) and measures wall-clock time from the start of each tick's check to the return
of the append that put its Triggered events in: the trigger's own latency, which is what a
tick costs in production, where the check starts at the tick.

The market takes its seed from ``--seed`` (``scale`` by default, whatever ``OEE_SEED`` says):
the figures in ``docs/performance.md`` are of that market, whose window crosses thousands of
limits. Where no limit crosses (another seed, a narrower band), there is nothing to time:
the tool says so and exits 1."""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import secrets
import sys
import time
import tracemalloc
from decimal import Decimal

import msgspec
import uvloop

from services.trigger.book import Watched, least_price
from services.trigger.service import Trigger
from shared.config import load
from shared.events import OrderOpened, OrderRequested
from shared.process import hold_many_objects
from shared.stream import EventStore


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


# The walk starts here, whenever it runs: the market is a function of time, so every run
# meets the same prices (2026-09-21, a moment with no meaning of its own).
START = 1_790_000_000.0


async def run(orders: int, ticks: int, band: float, seed: str,
              start: float = START) -> dict[str, object]:
    settings = msgspec.structs.replace(load(), namespace=f"scale-{secrets.token_hex(3)}",
                                       seed=seed)
    store = EventStore(settings)
    trigger = Trigger(settings, store)
    tick_s = trigger.market.tick_s
    # The SOL price over the window, for a few order sizes, to spread limits across it.
    amounts = [int(Decimal(a).scaleb(9)) for a in ("0.1", "0.5", "1", "2", "5")]
    prices = [trigger.quote(("SOL", "USDC"), amounts[0], start + k * tick_s)
              for k in range(ticks)]
    low = min(p for p in prices if p) / amounts[0] * 1e3
    high = max(p for p in prices if p) / amounts[0] * 1e3
    first = (prices[0] or 0) / amounts[0] * 1e3 * 1.0001
    draw = random.Random(f"{settings.seed}/scale")
    built: list[Watched] = []
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(orders):
        amount_in = draw.choice(amounts)
        # Limits spread over the window's prices widened by ``band`` upward: most wait,
        # some cross as the price moves. A band of 0 packs every limit into the window.
        # Each starts above the first tick's price, so all of them are open when it starts.
        limit = round(draw.uniform(max(first, low * (1 - band)), high * (1 + band)), 4)
        order = OrderRequested(
            order_id=f"scale-{n:07d}", seq=1, token_in="SOL", token_out="USDC",
            amount_in=amount_in, amount=str(Decimal(amount_in).scaleb(-9)), slippage=0.01,
            order_type="limit", limit_price=str(limit))
        built.append(Watched(order=order, seq=2, price=least_price(order)))
    for watched in built:
        trigger.book.add(watched)
    per_order = (tracemalloc.get_traced_memory()[0] - before) / orders
    tracemalloc.stop()
    # Their events, as the gateway and the trigger would have appended them.
    for begin in range(0, orders, 5000):
        chunk = built[begin : begin + 5000]
        await store.append([e for w in chunk for e in
                            (w.order, OrderOpened(order_id=w.order_id, seq=2))])
    # What the market meets already would have fired as it opened: not a crossing.
    marketable = await trigger.check(start)
    latencies: list[float] = []
    fired_per_tick: list[int] = []
    for k in range(1, ticks):
        at = start + k * tick_s
        began = time.perf_counter()
        fired = await trigger.check(at)
        if fired:
            latencies += [(time.perf_counter() - began) * 1000] * fired
        fired_per_tick.append(fired)
    await store.redis.delete(trigger.registry.key)
    async for key in store.redis.scan_iter(match=f"{settings.namespace}:*", count=5000):
        await store.redis.delete(key)
    await store.close()
    return {
        "orders": orders, "ticks": ticks - 1, "band": band, "marketableAtOnce": marketable,
        "fired": sum(fired_per_tick),
        "maxFiredInOneTick": max(fired_per_tick), "stillOpen": len(trigger.book),
        "tickToTriggeredMs": {"p50": round(percentile(latencies, 50), 1),
                              "p99": round(percentile(latencies, 99), 1),
                              "max": round(max(latencies, default=0.0), 1)},
        "bytesPerOpenOrder": round(per_order), "pid": os.getpid(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=120)
    parser.add_argument("--band", type=float, default=0.05,
                        help="limits spread this fraction beyond the window's prices")
    parser.add_argument("--seed", default="scale", help="the market's seed")
    args = parser.parse_args()
    # As the service runs: uvloop, and the collector set for a process holding many objects.
    hold_many_objects()
    result = uvloop.run(run(args.orders, args.ticks, args.band, args.seed))
    print(json.dumps(result, indent=1))
    if not result["fired"]:
        sys.exit(f"no limit crossed in the window (seed {args.seed!r}, band {args.band}): "
                 "nothing was timed; try another --seed or a wider --band")


if __name__ == "__main__":
    main()
