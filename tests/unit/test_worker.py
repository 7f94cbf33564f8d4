"""shared/worker.py: the loops of a worker wait out a Redis outage, and stop when told; how
long a linger lasts."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import pytest
from redis.exceptions import RedisError

from shared.events import OrderRequested
from shared.worker import Linger, Worker, WorkerSettings

SETTINGS = WorkerSettings(group="g", consumer="c", types=(OrderRequested,))


class Store:
    """The little of an event store that building a worker touches."""

    partitions = range(1)

    def group(self, name: str) -> None:
        return None


def worker() -> Worker:
    store: Any = Store()
    return Worker(store, SETTINGS, handle=lambda entries: asyncio.sleep(0))


async def test_an_outage_is_waited_out_doubling_and_a_success_starts_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    outcomes: list[bool | Exception] = [RedisError("down"), RuntimeError("a bug"), False,
                                        RedisError("down again"), True]
    steps: list[float] = []

    async def step(stop: asyncio.Event) -> bool:
        steps.append(loop.time())
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(worker()._retrying(asyncio.Event(), step), 5)
    gaps = [later - earlier for earlier, later in itertools.pairwise(steps)]
    # 0.2 s after the first failure, 0.4 s after the second; none after a step that went
    # through; and 0.2 s again after the failure that follows it.
    for gap, waited in zip(gaps, [0.2, 0.4, 0.0, 0.2], strict=True):
        assert waited <= gap < waited + 0.15, gaps
    assert "Redis unavailable (down)" in caplog.text
    assert "reading failed" in caplog.text and "RuntimeError: a bug" in caplog.text


async def test_a_stop_ends_the_wait_for_redis_at_once() -> None:
    stop = asyncio.Event()
    steps = 0

    async def step(stop: asyncio.Event) -> bool:
        nonlocal steps
        steps += 1
        raise RedisError("down")

    loop = asyncio.get_running_loop()
    loop.call_later(0.05, stop.set)
    started = loop.time()
    await asyncio.wait_for(worker()._retrying(stop, step), 5)
    assert loop.time() - started < 0.15
    assert steps == 1


def test_a_linger_lasts_its_most_until_a_round_shows_a_full_read_comes_sooner() -> None:
    linger = Linger(most_s=1.0, full_read=500)
    assert linger.begin(now=10.0) == 1.0  # nothing known yet
    for entries in (500, 500, 20):  # 1,020 entries in the round: 2,000 a second
        linger.count(entries)
    assert linger.begin(now=10.51) == pytest.approx(0.25)  # 500 of them come in 0.25 s
    linger.count(50)  # 50 a second: 500 would take 10 s
    assert linger.begin(now=11.51) == 1.0
    assert linger.begin(now=12.0) == 1.0  # a round that read nothing
