"""A cancel and a trigger racing on the real store: exactly one wins, every time."""

from __future__ import annotations

import asyncio

from shared.config import Settings
from shared.events import Cancelled, OrderOpened, OrderRequested, Triggered
from shared.stream import EventStore


def waiting(order_id: str) -> OrderRequested:
    return OrderRequested(order_id=order_id, seq=1, token_in="SOL", token_out="USDC",
                          amount_in=500_000_000, amount="0.5", slippage=0.01,
                          order_type="limit", limit_price="150")


async def test_a_cancel_and_a_trigger_race_200_times_and_one_wins_each_time(
        store: EventStore, settings: Settings) -> None:
    """The two are written at different seqs, as two writers that read the order at
    different moments would: no seq is contended, so only the lifecycle keeps the loser
    out (a cancel once fired, a trigger once cancelled)."""
    # Two clients, as the gateway and the trigger are two processes.
    other = EventStore(settings)
    try:
        wins = {"Cancelled": 0, "Triggered": 0}
        for n in range(200):
            order_id = f"race-{n}"
            await store.append([waiting(order_id), OrderOpened(order_id=order_id, seq=2)])
            # Each takes the later seq in turn, and each starts first in turn.
            late = 3 + n % 2
            cancel = Cancelled(order_id=order_id, seq=late, account="desk-1")
            fire = Triggered(order_id=order_id, seq=7 - late, price=151.0, reason="crossed")
            pair = (store.append([cancel]), other.append([fire]))
            results = await asyncio.gather(*(pair if n % 4 < 2 else pair[::-1]))
            appended = [r[0] is not None for r in results]
            assert appended.count(True) == 1, (n, results)
            history = [e.type for e in await store.history(order_id)]
            assert history[:2] == ["OrderRequested", "OrderOpened"] and len(history) == 3
            wins[history[2]] += 1
        assert sum(wins.values()) == 200
    finally:
        await other.close()


async def test_the_store_refuses_a_cancel_after_a_trigger_whatever_its_seq(
        store: EventStore) -> None:
    order_id = "race-late"
    await store.append([waiting(order_id), OrderOpened(order_id=order_id, seq=2),
                        Triggered(order_id=order_id, seq=3, price=151.0, reason="crossed")])
    [late] = await store.append([Cancelled(order_id=order_id, seq=4)])
    assert late is None
    [first] = await store.append([Triggered(order_id=order_id, seq=4, price=1.0, reason="x")])
    assert first is None
