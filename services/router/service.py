"""The router: consume OrderRequested, quote both venues, decide, append Routed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from services.router.market import fetch_quotes
from services.router.routing import choose
from shared.config import Settings
from shared.events import OrderRequested, Routed
from shared.seeded import rng
from shared.stream import Entry, EventStore
from shared.worker import Worker, worker_settings

log = logging.getLogger("oee.router")


async def route(order: OrderRequested, settings: Settings) -> Routed:
    draw = rng(settings.seed, order.order_id, "quote")
    quotes = await fetch_quotes(order, settings.quote_latency_ms, draw)
    decision = choose(quotes, order.slippage)
    log.info("order %s routed: %s", order.order_id, decision.reason)
    return Routed(
        order_id=order.order_id,
        seq=order.seq + 1,
        dex=decision.dex,
        quotes=quotes,
        amount_out=decision.amount_out,
        min_amount_out=decision.min_amount_out,
        reason=decision.reason,
    )


async def main(settings: Settings, stop: asyncio.Event) -> None:
    store = EventStore(settings)

    async def handle(entries: Sequence[Entry]) -> None:
        orders = [e.event for e in entries if isinstance(e.event, OrderRequested)]
        routed = await asyncio.gather(*(route(order, settings) for order in orders))
        await store.append(routed)

    worker = Worker(
        store,
        worker_settings(
            settings, "router", (OrderRequested,),
            batch_size=settings.batch_size, chunk_size=settings.batch_size, concurrency=4,
        ),
        handle,
    )
    try:
        await worker.run(stop)
    finally:
        await store.close()
