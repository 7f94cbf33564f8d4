"""A follower's mailbox: everything put, taken in order, once; a taker waits for the
first item and no longer."""

from __future__ import annotations

import asyncio

from services.gateway.mailbox import Mailbox


async def test_items_are_taken_in_order_and_only_once() -> None:
    box: Mailbox[int] = Mailbox()
    for n in range(3):
        box.put_nowait(n)
    assert await box.take() == [0, 1, 2]
    box.put_nowait(3)
    assert await box.take() == [3]


async def test_a_taker_waits_for_the_first_item() -> None:
    box: Mailbox[str] = Mailbox()
    taking = asyncio.create_task(box.take())
    await asyncio.sleep(0)
    assert not taking.done()
    box.put_nowait("a")
    box.put_nowait("b")
    assert await asyncio.wait_for(taking, 5) == ["a", "b"]


async def test_a_cancelled_taker_leaves_the_items_for_the_next() -> None:
    box: Mailbox[str] = Mailbox()
    taking = asyncio.create_task(box.take())
    await asyncio.sleep(0)
    taking.cancel()
    await asyncio.gather(taking, return_exceptions=True)
    box.put_nowait("kept")
    assert await asyncio.wait_for(box.take(), 5) == ["kept"]
