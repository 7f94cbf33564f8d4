"""services/router/venues.py: both venues asked at once, each answering after its own
simulated delay, in one wait."""

from __future__ import annotations

import random

from services.router.venues import VENUES, ask_all
from shared.market import keys


async def test_each_venue_answers_after_its_own_delay_and_the_slower_sets_the_time() -> None:
    drawn = random.Random(7)
    delays_ms = [30 * drawn.uniform(0.8, 1.2) for _ in VENUES]
    quotes = await ask_all(30, random.Random(7))
    assert [q.dex for q in quotes] == list(VENUES)
    for quote, delay_ms in zip(quotes, delays_ms, strict=True):
        assert quote.latency_ms >= round(delay_ms, 3)
        assert quote.pools == sum(1 for key in keys() if key.dex == quote.dex)
    # The faster venue answers first.
    faster, slower = sorted(zip(delays_ms, quotes, strict=True), key=lambda pair: pair[0])
    assert faster[1].latency_ms <= slower[1].latency_ms
