"""The gateway's tail reads the log only while someone follows, and a follower that wakes
it, or registers while it pauses or resumes, still gets every status of its order once and
in order."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from services.gateway import subscriptions
from services.gateway.feed import Follower, Owners, follow_all
from services.gateway.read_model import ReadModel
from services.gateway.subscriptions import Tail, follow
from shared.accounts import Account
from shared.stream import EventStore, Positions
from tests.helpers import eventually, stories
from tests.unit import builders

RNG = random.Random(7)
WAVES, WAVE = 12, 15
HAPPY_SEQS = [1, 2, 3, 4, 5]


@contextlib.asynccontextmanager
async def tailing(store: EventStore) -> AsyncIterator[Tail]:
    tail = Tail(store)
    await tail.start()
    task = asyncio.create_task(tail.run())
    try:
        yield tail
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def paused(tail: Tail) -> None:
    async def check() -> bool | None:
        return True if not any(reading.is_set() for reading in tail.reading) else None
    await eventually(check, 10, every_s=0.01)


async def test_a_tail_nobody_follows_reads_nothing(store: EventStore) -> None:
    async with tailing(store) as tail:
        order_ids = [str(uuid.uuid4()) for _ in range(20)]
        await asyncio.gather(*(store.append(builders.happy_story(o)) for o in order_ids))
        # Read back from the log: it holds them, and a reader that was waiting on it has had
        # them since.
        await stories(store, order_ids, 10)
        assert tail.events_seen == 0
        assert not any(reading.is_set() for reading in tail.reading)
        assert await tail.now() == await store.heads()


async def test_the_tail_pauses_when_the_last_follower_leaves_and_wakes_for_the_next(
    store: EventStore,
) -> None:
    async with tailing(store) as tail:
        for turn in range(4):
            await paused(tail)
            before = tail.events_seen
            # Appended while paused: not read, but where ``now`` says the log stands.
            unfollowed = str(uuid.uuid4())
            await store.append(builders.happy_story(unfollowed))
            await stories(store, [unfollowed], 10)
            assert tail.events_seen == before
            assert await tail.now() == await store.heads()
            order_id = str(uuid.uuid4())
            if turn % 2 == 0:
                queue = tail.subscribe(order_id)
                await asyncio.wait_for(tail.ready(), 10)
                [requested] = builders.happy_story(order_id)[:1]
                await store.append([requested])
                assert await asyncio.wait_for(queue.take(), 10) == [requested]
                assert tail.events_seen > before
                # Reading: ``now`` is the tail's own position, no round trip.
                assert await tail.now() == tail.position
                tail.unsubscribe(order_id, queue)
            else:
                everything = tail.subscribe_all()
                await asyncio.wait_for(tail.ready(), 10)
                [requested] = builders.happy_story(order_id)[:1]
                await store.append([requested])
                [entry] = await asyncio.wait_for(everything.take(), 10)
                assert entry.event == requested
                tail.unsubscribe_all(everything)


async def yields(most: int) -> None:
    for _ in range(RNG.randrange(most + 1)):
        await asyncio.sleep(0)


@pytest.fixture
def slow_heads(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The heads read may take its time (a busy process, a busy Redis) while the log
    grows."""
    heads = store.heads

    async def slow() -> Positions:
        await yields(3)
        return await heads()

    monkeypatch.setattr(store, "heads", slow)


@contextlib.asynccontextmanager
async def noise(store: EventStore) -> AsyncIterator[None]:
    """Orders nobody follows, appended all along."""
    stop = asyncio.Event()

    async def append() -> None:
        while not stop.is_set():
            await store.append(builders.happy_story(str(uuid.uuid4())))
            await asyncio.sleep(0.005)  # a pace, not a wait for anything

    appending = asyncio.create_task(append())
    try:
        yield
    finally:
        stop.set()
        await appending


async def grow(store: EventStore, order_id: str, begun: asyncio.Event) -> None:
    """Appends the order event by event."""
    for event in builders.happy_story(order_id):
        await store.append([event])
        begun.set()
        await yields(3)


@pytest.mark.usefixtures("slow_heads")
async def test_followers_waking_a_paused_tail_get_every_status_once_in_order(
    store: EventStore,
) -> None:
    """Waves of orders, each appended event by event by a task of its own, while orders
    nobody follows go on being appended too. Each order's follower registers at some point
    of its order's growth, the wave's first while the tail is paused, the others while it
    resumes or reads."""

    async def seqs(tail: Tail, order_id: str, begun: asyncio.Event) -> list[int]:
        await begun.wait()  # an order without events is unknown
        await yields(8)
        return [event.seq async for event in follow(tail, order_id, store.history)]

    async with noise(store), tailing(store) as tail:
        for _ in range(WAVES):
            await paused(tail)
            order_ids = [str(uuid.uuid4()) for _ in range(WAVE)]
            begun = {o: asyncio.Event() for o in order_ids}
            following = [seqs(tail, o, begun[o]) for o in order_ids]
            growing = [grow(store, o, begun[o]) for o in order_ids]
            got = await asyncio.wait_for(asyncio.gather(*following, *growing), 10)
            assert got[:WAVE] == [HAPPY_SEQS] * WAVE
        assert tail.events_seen > 0


@pytest.mark.usefixtures("slow_heads")
async def test_stream_followers_waking_a_paused_tail_get_every_status_once_in_order(
    store: EventStore, database_url: str,
) -> None:
    """As above for /orders/stream: each follower starts where the log stood before the
    wave (``now``, as a connection takes it) and registers at some point of the wave."""
    read_model = ReadModel(database_url)
    await read_model.open()

    async def seqs(tail: Tail, opened: Positions, order_ids: set[str]) -> dict[str, list[int]]:
        await yields(40)
        follower = Follower(Account("ops", "operator"), Owners(store.history), store.history)
        got: dict[str, list[int]] = {o: [] for o in order_ids}
        ended: set[str] = set()
        feed = follow_all(tail, store, read_model, follower, opened)
        async with contextlib.aclosing(feed):
            async for message in feed:
                if message.order_id in order_ids:
                    got[message.order_id].append(message.seq)
                    if message.status == "confirmed":
                        ended.add(message.order_id)
                        if ended == order_ids:
                            return got
        raise AssertionError("the feed ended")

    try:
        async with noise(store), tailing(store) as tail:
            for _ in range(WAVES):
                await paused(tail)
                order_ids = [str(uuid.uuid4()) for _ in range(WAVE)]
                opened = [await tail.now() for _ in range(3)]
                following = [seqs(tail, start, set(order_ids)) for start in opened]
                growing = [grow(store, o, asyncio.Event()) for o in order_ids]
                got = await asyncio.wait_for(asyncio.gather(*following, *growing), 10)
                assert got[:len(opened)] == [{o: HAPPY_SEQS for o in order_ids}] * len(opened)
    finally:
        await read_model.close()


async def test_a_tail_that_cannot_wake_tells_its_follower_redis_is_unavailable(
    store: EventStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While Redis does not answer, a follower waking a paused tail gets the error that a
    failed history read would give it (its WebSocket closes 1011, unavailable), not an
    endless wait; once Redis answers again, the next follower is served."""
    monkeypatch.setattr(subscriptions, "READY_TIMEOUT_S", 0.3)
    answer_heads = store.heads

    async def no_answer() -> Positions:
        raise RedisConnectionError("Redis is away")

    monkeypatch.setattr(store, "heads", no_answer)
    async with tailing(store) as tail:
        queue = tail.subscribe("an-order")
        with pytest.raises(RedisConnectionError):
            await tail.ready()
        monkeypatch.setattr(store, "heads", answer_heads)
        monkeypatch.setattr(subscriptions, "READY_TIMEOUT_S", 5.0)
        await tail.ready()  # the loop's next try, a second later
        assert all(reading.is_set() for reading in tail.reading)
        tail.unsubscribe("an-order", queue)
