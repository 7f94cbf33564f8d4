"""Asking the venues for their pools: both at once, each after its simulated latency."""

from __future__ import annotations

import asyncio
import random
import time

from shared import tracing
from shared.events import Quote
from shared.market import keys
from shared.metrics import QUOTE_SECONDS
from shared.route import Dex

VENUES: tuple[Dex, ...] = ("raydium", "meteora")
# Each venue's series, looked up once rather than on every quote.
_QUOTE_SECONDS = {dex: QUOTE_SECONDS.labels(dex) for dex in VENUES}


async def ask(dex: Dex, latency_ms: float) -> Quote:
    started = time.perf_counter()
    with tracing.within("quote", "quote.dex", dex):
        await asyncio.sleep(latency_ms / 1000)
        pools = sum(1 for key in keys() if key.dex == dex)
    took = time.perf_counter() - started
    _QUOTE_SECONDS[dex].observe(took)
    return Quote(dex=dex, pools=pools, latency_ms=round(took * 1000, 3))


async def ask_all(latency_ms: float, draw: random.Random) -> list[Quote]:
    """The slower venue sets the time; each varies by ±20% around ``latency_ms``."""
    delays = [latency_ms * draw.uniform(0.8, 1.2) for _ in VENUES]
    return list(await asyncio.gather(*(ask(d, t) for d, t in zip(VENUES, delays, strict=True))))
