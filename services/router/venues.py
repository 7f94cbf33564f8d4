"""Asking the venues for their pools: both at once, each answering after its simulated
latency. Simulated answers need no task each: one wait runs to the first answer, then on
to the second, so asking costs an order a few microseconds, not two tasks."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

from shared import tracing
from shared.events import Quote
from shared.market import keys
from shared.metrics import QUOTE_SECONDS
from shared.route import Dex

VENUES: tuple[Dex, ...] = ("raydium", "meteora")
# Each venue's series, looked up once rather than on every quote.
_QUOTE_SECONDS = {dex: QUOTE_SECONDS.labels(dex) for dex in VENUES}


async def ask_all(latency_ms: float, draw: random.Random) -> list[Quote]:
    """Each venue's answer, in ``VENUES`` order. Each takes ±20% around ``latency_ms``, so
    the slower venue sets the time."""
    delays = [latency_ms * draw.uniform(0.8, 1.2) / 1000 for _ in VENUES]
    asked, asked_ns = time.perf_counter(), time.time_ns()
    pools = Counter(key.dex for key in keys())
    answers: dict[Dex, Quote] = {}
    for delay, dex in sorted(zip(delays, VENUES, strict=True)):
        wait = asked + delay - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        # The loop's timers keep milliseconds and may wake a little early: a venue answers
        # no sooner than its delay.
        took = max(delay, time.perf_counter() - asked)
        tracing.took("quote", "quote.dex", dex, asked_ns, asked_ns + int(took * 1e9))
        _QUOTE_SECONDS[dex].observe(took)
        answers[dex] = Quote(dex=dex, pools=pools[dex], latency_ms=round(took * 1000, 3))
    return [answers[dex] for dex in VENUES]
