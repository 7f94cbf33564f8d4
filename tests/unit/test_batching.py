"""The Batcher alone: who shares a round trip, and what each caller gets back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from shared.batching import Batcher


async def test_callers_at_the_same_moment_share_one_send_and_get_their_own_answers() -> None:
    sends: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        sends.append(items)
        return [2 * i for i in items]

    batch = Batcher(double)
    answers = await asyncio.gather(batch([1, 2]), batch([3]), batch([]), batch([4, 5, 6]))
    assert answers == [[2, 4], [6], [], [8, 10, 12]]
    assert sends == [[1, 2, 3, 4, 5, 6]]  # in call order; an empty call sends nothing
    assert await batch([7]) == [14]  # a later call is a new send
    assert sends[-1] == [7]


async def test_a_failed_send_fails_every_caller_in_it_and_not_the_next() -> None:
    fail = True

    async def flaky(items: list[int]) -> list[int]:
        if fail:
            raise ConnectionError("gone")
        return items

    batch = Batcher(flaky)
    results = await asyncio.gather(batch([1]), batch([2]), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    fail = False
    assert await batch([3]) == [3]


async def test_a_caller_that_gives_up_does_not_disturb_the_others() -> None:
    release = asyncio.Event()

    async def slow(items: list[int]) -> list[int]:
        await release.wait()
        return items

    batch = Batcher(slow)
    leaving = asyncio.create_task(batch([1]))
    staying = asyncio.create_task(batch([2]))
    await asyncio.sleep(0)
    leaving.cancel()
    release.set()
    assert await staying == [2]
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_lingering_batcher_gathers_calls_spread_over_its_linger() -> None:
    sends, record = recorder()
    batch = Batcher(record, linger_s=0.2)
    first = asyncio.create_task(batch([1]))
    await _turns(5)  # the first call's flush is lingering by now
    second = asyncio.create_task(batch([2]))
    assert await asyncio.gather(first, second) == [[1], [2]]
    assert sends == [[1, 2]]


async def test_draining_sends_what_lingers_at_once_and_later_calls_without_linger() -> None:
    sends, record = recorder()
    batch = Batcher(record, linger_s=3600)
    lingering = batch.soon([1])
    await _turns(5)
    assert sends == []  # its hour has not passed
    await batch.drain()
    assert sends == [[1]] and await lingering == [1]
    assert await asyncio.wait_for(batch([2]), 5) == [2]  # no hour's linger now


async def test_a_batcher_without_linger_sends_calls_of_different_turns_apart() -> None:
    sends, record = recorder()
    batch = Batcher(record)
    first = asyncio.create_task(batch([1]))
    await _turns(5)
    second = asyncio.create_task(batch([2]))
    await asyncio.gather(first, second)
    assert sends == [[1], [2]]


def recorder() -> tuple[list[list[int]], Callable[[list[int]], Awaitable[list[int]]]]:
    """What a batcher sends, each send in order, and the send that records it."""
    sends: list[list[int]] = []

    async def record(items: list[int]) -> list[int]:
        sends.append(items)
        return items

    return sends, record


async def _turns(count: int) -> None:
    """Let the loop run ``count`` times round: no clock involved."""
    for _ in range(count):
        await asyncio.sleep(0)
