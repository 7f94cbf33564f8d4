"""The simulated venues: each quotes a price 2-5% away from the other, after a delay."""

from __future__ import annotations

import asyncio
import math
import random
import time

from shared.events import Dex, OrderRequested, Quote
from shared.tokens import get

FEE_BPS: dict[Dex, int] = {"raydium": 25, "meteora": 30}
SPREAD = (0.02, 0.05)


def venue_prices(order: OrderRequested, rng: random.Random) -> dict[Dex, float]:
    """Output-per-input prices of both venues: around the reference price, apart by a
    fraction drawn from SPREAD, with either venue the cheaper one."""
    reference = get(order.token_in).usd / get(order.token_out).usd
    centre = reference * (1 + rng.uniform(-0.01, 0.01))
    half = rng.uniform(*SPREAD) / 2
    high, low = centre * (1 + half), centre * (1 - half)
    return {"raydium": high, "meteora": low} if rng.random() < 0.5 else {
        "raydium": low,
        "meteora": high,
    }


def quote_at(order: OrderRequested, dex: Dex, price: float, latency_ms: float) -> Quote:
    token_in, token_out = get(order.token_in), get(order.token_out)
    gross = math.floor(order.amount_in / token_in.unit * price * token_out.unit)
    fee = math.ceil(gross * FEE_BPS[dex] / 10_000)
    return Quote(
        dex=dex,
        amount_out=gross - fee,
        fee=fee,
        price=price,
        fee_bps=FEE_BPS[dex],
        latency_ms=round(latency_ms, 3),
    )


async def fetch_quote(order: OrderRequested, dex: Dex, price: float, latency_ms: float) -> Quote:
    started = time.perf_counter()
    await asyncio.sleep(latency_ms / 1000)
    return quote_at(order, dex, price, (time.perf_counter() - started) * 1000)


async def fetch_quotes(order: OrderRequested, latency_ms: float, rng: random.Random) -> list[Quote]:
    """Both venues at once; the slower one sets the time."""
    prices = venue_prices(order, rng)
    delays = {dex: latency_ms * rng.uniform(0.8, 1.2) for dex in prices}
    return list(
        await asyncio.gather(*(fetch_quote(order, d, prices[d], delays[d]) for d in prices))
    )
