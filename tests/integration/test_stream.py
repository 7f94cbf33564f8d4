"""The event store and the worker loop against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import pytest
from redis.exceptions import ResponseError

from shared.config import Settings
from shared.events import Built, Confirmed, Failed, OrderRequested
from shared.groups import ConsumerGroup
from shared.stream import Entry, EventStore, Positions, StreamId
from shared.worker import Worker, WorkerSettings
from tests.conftest import cleanup
from tests.helpers import eventually, order, route_now


def new_id() -> str:
    return str(uuid.uuid4())


async def test_append_is_idempotent_per_order_and_seq(store: EventStore) -> None:
    first = order(new_id())
    [stream_id] = await store.append([first])
    assert stream_id is not None
    copy = order(first.order_id, amount_in=1)  # same (order, seq), other content
    assert await store.append([copy]) == [None]
    assert await log_length(store) == 1
    assert await store.history(first.order_id) == [first]


async def test_history_is_in_seq_order_and_recorded_orders_expire(store: EventStore) -> None:
    order_id = new_id()
    events = [order(order_id), no_route(order_id, seq=2)]
    ids = await store.append(events)
    assert all(ids) and ids[0] < ids[1]  # type: ignore[operator]
    assert [e.seq for e in await store.history(order_id)] == [1, 2]
    # Kept until PostgreSQL has the order, then only a short while.
    assert await store.redis.ttl(store.order_key(order_id)) > store.settings.finished_order_ttl_s
    await store.recorded([order_id])
    ttl = await store.redis.ttl(store.order_key(order_id))
    assert 0 < ttl <= store.settings.finished_order_ttl_s


async def test_stream_ids_are_stored_as_numbers(store: EventStore) -> None:
    assert StreamId.parse("9-5") < StreamId.parse("10-0")
    [stream_id] = await store.append([order(new_id())])
    assert stream_id == await store.last_id()


async def test_worker_hands_over_only_wanted_types_and_acknowledges(store: EventStore) -> None:
    seen: list[str] = []

    async def handle(entries: Sequence[Entry]) -> None:
        seen.extend(e.event.type for e in entries)

    orders = [order(new_id()) for _ in range(5)]
    await store.append(orders)
    await store.append([route_now(orders[0], store.settings)])
    settings = WorkerSettings(group="g", consumer="c1", types=(OrderRequested,), batch_size=2,
                              chunk_size=2, concurrency=2)
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, handle).run(stop))

    async def acknowledged() -> bool | None:
        return True if len(seen) == 5 and await _pending(store, 0) else None

    await eventually(acknowledged, 10)
    stop.set()
    await task
    assert seen == ["OrderRequested"] * 5


async def test_a_lingering_worker_reads_a_first_event_at_once_and_those_after_it_together(
        store: EventStore) -> None:
    chunks: list[list[str]] = []
    handled = asyncio.Event()

    async def handle(entries: Sequence[Entry]) -> None:
        chunks.append([e.event.order_id for e in entries])
        handled.set()

    # One partition: on a cluster each partition's reads linger on their own.
    first = order(new_id())
    partition = store.partition_of(first.order_id)
    later: list[OrderRequested] = []
    while len(later) < 3:
        if store.partition_of(candidate := new_id()) == partition:
            later.append(order(candidate))
    settings = WorkerSettings(group="g", consumer="c", types=(OrderRequested,), linger_s=3.0)
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, handle).run(stop))
    await store.append([first])
    # At once, not after the linger.
    await asyncio.wait_for(handled.wait(), 1.5)
    for each in later:  # one by one: a read that did not wait would take the first alone
        await store.append([each])

    async def all_handled() -> bool | None:
        return True if sum(map(len, chunks)) == 4 else None

    await eventually(all_handled, 15)
    stop.set()
    await task
    assert chunks == [[first.order_id], [each.order_id for each in later]]


async def test_a_worker_whose_events_come_further_apart_than_its_linger_never_waits(
        store: EventStore) -> None:
    """A first event after a quiet spell longer than the linger is read at once, and so
    is the next one: a linger that could bring no company is not waited out."""
    linger_s = 2.0
    loop = asyncio.get_running_loop()
    handled_at: dict[str, float] = {}

    async def handle(entries: Sequence[Entry]) -> None:
        handled_at.update((e.event.order_id, loop.time()) for e in entries)

    settings = WorkerSettings(group="g", consumer="c", types=(OrderRequested,),
                              linger_s=linger_s)
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, handle).run(stop))

    async def reading() -> bool | None:
        # The consumer exists once the worker's first read has been made: its start-up
        # (slow on a cluster) is over, and its read loops are about to wait.
        stream = store.group("g").streams[0]
        with contextlib.suppress(ResponseError):
            if await store.redis.xinfo_consumers(stream, "g"):
                return True
        return None

    await eventually(reading, 10, every_s=0.01)
    # The quiet spell: no event for longer than the linger, its reads coming back empty.
    await asyncio.sleep(linger_s + 0.3)
    # One partition: on a cluster each partition's reads linger on their own.
    first = order(new_id())
    while store.partition_of((second := order(new_id())).order_id) != store.partition_of(
            first.order_id):
        pass
    await store.append([first])

    async def was_handled(order_id: str) -> bool | None:
        return True if order_id in handled_at else None

    await eventually(lambda: was_handled(first.order_id), 5, every_s=0.005)
    appended_at = loop.time()
    await store.append([second])
    await eventually(lambda: was_handled(second.order_id), 5, every_s=0.005)
    stop.set()
    await task
    # Had the worker lingered after the first, the second would have waited 2 s.
    assert handled_at[second.order_id] - appended_at < linger_s / 2


@pytest.fixture
async def one_partition(settings: Settings) -> AsyncIterator[EventStore]:
    """A store of one partition: a read's count is spread over the partitions it reads."""
    store = EventStore(msgspec.structs.replace(
        settings, partitions=1, namespace=f"{settings.namespace}-one"))
    yield store
    await cleanup(store.redis, store.settings.namespace)
    await store.close()


async def test_a_worker_whose_entries_come_fast_lingers_until_a_full_read_has_come(
        one_partition: EventStore) -> None:
    """After a round in which entries came fast, the linger lasts as long as a full read's
    worth took to come, not ``linger_s``: the work is spread, not gathered into one burst."""
    store, linger_s = one_partition, 2.0
    loop = asyncio.get_running_loop()
    handled_at: dict[str, float] = {}

    async def handle(entries: Sequence[Entry]) -> None:
        handled_at.update((e.event.order_id, loop.time()) for e in entries)

    first, *burst, one_more, last = [order(new_id()) for _ in range(43)]
    settings = WorkerSettings(group="g", consumer="c", types=(OrderRequested,), batch_size=10,
                              chunk_size=10, concurrency=1, linger_s=linger_s)
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, handle).run(stop))

    async def handled(*orders: OrderRequested) -> bool | None:
        return True if all(o.order_id in handled_at for o in orders) else None

    try:
        await store.append([first])
        await eventually(lambda: handled(first), 10, every_s=0.005)
        # The worker lingers the whole linger_s now (nothing known of the rate): 41 entries
        # come within this round, read 10 at a time once it is over.
        await store.append(burst)
        await eventually(lambda: handled(*burst), 10, every_s=0.005)
        await store.append([one_more])
        await eventually(lambda: handled(one_more), 10, every_s=0.005)
        appended_at = loop.time()
        await store.append([last])
        await eventually(lambda: handled(last), 10, every_s=0.005)
    finally:
        stop.set()
        await task
    # 41 entries in a round of about 2 s: 10 came in about half a second.
    assert handled_at[last.order_id] - appended_at < linger_s / 2


async def test_a_busy_worker_acknowledges_with_its_next_read(
        store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries handled one after another, each soon after the last: each one's
    acknowledgement goes with the read that follows, not in a round trip of its own; the
    last one's, with no read after it, goes by the timer."""
    if store.cluster:
        pytest.skip("a cluster acknowledges in a round trip of its own before each read")
    separate_acks: list[int] = []
    acknowledge = ConsumerGroup.ack

    async def counted(group: ConsumerGroup, entries: Sequence[Entry]) -> None:
        separate_acks.append(len(entries))
        await acknowledge(group, entries)

    monkeypatch.setattr(ConsumerGroup, "ack", counted)
    handled: list[str] = []

    async def handle(entries: Sequence[Entry]) -> None:
        handled.extend(e.event.order_id for e in entries)

    settings = WorkerSettings(group="g", consumer="c", types=(OrderRequested,))
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, handle).run(stop))
    orders = [order(new_id()) for _ in range(20)]
    for each in orders:  # each after the one before was handled, well inside the timer
        await store.append([each])

        async def handled_it(order_id: str = each.order_id) -> bool | None:
            return True if order_id in handled else None

        await eventually(handled_it, 10, every_s=0.005)
        await asyncio.sleep(0.03)  # the pace of the load: longer than the old 20 ms linger
    await eventually(lambda: _pending(store, 0), 10)
    stop.set()
    await task
    assert len(handled) == 20
    # The timer acknowledged only what no read came to carry: the last entry or two.
    assert sum(separate_acks) <= 2, separate_acks


async def test_a_restarted_consumer_finishes_its_own_pending_entries_first(
    store: EventStore,
) -> None:
    await store.append([order(new_id()) for _ in range(3)])
    calls: list[int] = []

    async def fail(entries: Sequence[Entry]) -> None:
        calls.append(len(entries))
        raise RuntimeError("crash before the acknowledgement")

    settings = WorkerSettings(group="g", consumer="same", types=(OrderRequested,),
                              batch_size=10, chunk_size=10, claim_idle_ms=3_600_000)
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, fail).run(stop))
    await eventually(lambda: _pending(store, 3), 10)
    stop.set()
    await task

    handled: list[str] = []

    async def succeed(entries: Sequence[Entry]) -> None:
        handled.extend(e.event.order_id for e in entries)

    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, succeed).run(stop))
    await eventually(lambda: _pending(store, 0), 10)
    stop.set()
    await task
    assert len(handled) == 3
    assert sum(calls) == 3  # each handled once (a cluster reads each partition apart)


async def test_idle_entries_of_a_dead_consumer_are_claimed(store: EventStore) -> None:
    await store.append([order(new_id()) for _ in range(2)])
    group = store.group("g")
    await group.ensure()
    # A consumer reads and dies without acknowledging.
    assert len(await group.read("dead", 10, list(store.partitions))) == 2
    handled: list[str] = []

    async def handle(entries: Sequence[Entry]) -> None:
        handled.extend(e.event.order_id for e in entries)

    settings = WorkerSettings(group="g", consumer="alive", types=(OrderRequested,),
                              claim_idle_ms=50)
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, handle).run(stop))
    await eventually(lambda: _pending(store, 0), 10)
    stop.set()
    await task
    assert len(handled) == 2


async def _pending(store: EventStore, count: int, name: str = "g") -> bool | None:
    """The group has ``count`` entries pending and none unread, over every partition."""
    pending = lag = 0
    for stream in store.group_streams(name):
        try:
            groups = await store.redis.xinfo_groups(stream)
        except ResponseError:  # not created yet
            return None
        mine = [group for group in groups if group["name"].decode() == name]
        if not mine:
            # The stream is there (an append made it) but not the group yet: the worker
            # creates a group on each partition's stream in turn.
            return None
        pending += mine[0]["pending"]
        lag += mine[0]["lag"]
    return True if pending == count and lag == 0 else None


async def log_length(store: EventStore) -> int:
    return sum([await store.redis.xlen(key) for key in store.layout.logs()])


async def stream_length(store: EventStore, name: str) -> int:
    return sum([await store.redis.xlen(key) for key in store.group_streams(name)])


def no_route(order_id: str, seq: int) -> Failed:
    return Failed(order_id=order_id, seq=seq, reason="no_route", error="none", attempts=0)


def confirmed(order_id: str, seq: int) -> Confirmed:
    return Confirmed(order_id=order_id, seq=seq, tx_hash="x", attempt=1, dex="raydium",
                     amount_in=1, amount_out=2, min_amount_out=2, executed_price=2.0)


async def test_nothing_is_appended_after_an_order_ended(store: EventStore) -> None:
    order_id = new_id()
    await store.append([order(order_id), no_route(order_id, seq=2)])
    late = msgspec.structs.replace(route_now(order(order_id), store.settings), seq=3)
    assert await store.append([late]) == [None]
    assert [e.seq for e in await store.history(order_id)] == [1, 2]


async def test_the_store_refuses_what_the_lifecycle_does_not_allow(store: EventStore) -> None:
    order_id = new_id()
    requested = order(order_id)
    routed = route_now(requested, store.settings)
    # No order yet: only OrderRequested opens one.
    assert await store.append([routed]) == [None]
    built = Built(order_id=order_id, seq=3, dex=routed.dex, instructions=[], wraps_sol=True,
                  unwraps_sol=False)
    # Confirmed straight after Routed skips building and submitting: refused, in one call
    # with events that are allowed.
    ids = await store.append([requested, routed, confirmed(order_id, seq=3), built])
    assert [i is not None for i in ids] == [True, True, False, True]
    assert [e.type for e in await store.history(order_id)] == [
        "OrderRequested", "Routed", "Built"]
    assert await store.redis.hget(store.order_key(order_id), "st") == b"building"


async def test_a_poison_entry_is_dead_lettered_and_its_order_fails(store: EventStore) -> None:
    poison, fine = order(new_id()), order(new_id())
    await store.append([poison, fine])
    handled: list[str] = []

    async def handle(entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.event.order_id == poison.order_id:
                raise RuntimeError("cannot handle this one")
            handled.append(entry.event.order_id)

    settings = WorkerSettings(group="g", consumer="c", types=(OrderRequested,), chunk_size=1,
                              concurrency=2, claim_idle_ms=20, max_deliveries=3)
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, handle).run(stop))

    async def ended() -> list[Any] | None:
        history = await store.history(poison.order_id)
        return history if history[-1].is_terminal else None

    history = await eventually(ended, 10)
    await eventually(lambda: _pending(store, 0), 10)
    stop.set()
    await task
    assert handled == [fine.order_id]
    failed = history[-1]
    assert isinstance(failed, Failed) and failed.reason == "dead_lettered"
    assert "4 deliveries" in failed.error
    [letter] = [f async for f in store.dead_letter_entries()]
    assert letter[b"order"].decode() == poison.order_id and letter[b"group"] == b"g"


async def test_the_stream_is_trimmed_only_behind_the_slowest_group(store: EventStore) -> None:
    orders = [order(new_id()) for _ in range(500)]
    ids = await store.append(orders)
    everywhere = list(store.partitions)
    fast, slow = store.group("fast"), store.group("slow")
    await fast.ensure()
    await slow.ensure()
    await fast.ack(await fast.read("c", 500 * len(everywhere), everywhere))
    # In each partition the slow group acknowledges its first half; the rest is pending.
    read = await slow.read("c", 500 * len(everywhere), everywhere)
    halves = {p: [e for e in read if e.partition == p] for p in everywhere}
    await slow.ack([e for part in halves.values() for e in part[: len(part) // 2]])
    oldest_pending = {p: part[len(part) // 2].id for p, part in halves.items()}
    assert await store.trim(retention_s=3600) is not None
    assert await log_length(store) == 500  # all younger than the retention
    assert await store.trim(retention_s=0) == min(oldest_pending.values())
    for partition, bound in oldest_pending.items():
        remaining = await store.redis.xrange(store.log_key(partition), count=1)
        assert StreamId.parse(remaining[0][0]) <= bound  # nothing a group still needs is gone
    assert await log_length(store) < 500  # but whole blocks before it are
    assert len(ids) == 500


async def test_events_a_service_acts_on_also_go_to_its_queue(store: EventStore) -> None:
    requested = order(new_id())
    routed = route_now(requested, store.settings)
    built = Built(order_id=requested.order_id, seq=3, dex=routed.dex, instructions=[],
                  wraps_sol=True, unwraps_sol=False)
    await store.append([requested, routed, built])
    assert await log_length(store) == 3  # the log has every event
    router, executor = store.group("router"), store.group("executor")
    for group in (router, executor):
        await group.ensure()
    everywhere = list(store.partitions)
    assert [e.event for e in await router.read("c", 10, everywhere)] == [requested]
    assert [e.event for e in await executor.read("c", 10, everywhere)] == [routed]
    assert store.group("persister").streams == store.layout.logs()


async def test_concurrent_appends_share_one_round_trip(store: EventStore) -> None:
    calls: list[list[int]] = []
    send = store._send

    async def counted(batch: Sequence[Any]) -> list[Any]:
        calls.append([len(indexes) for indexes, _, _ in batch])
        return await send(batch)

    store._send = counted  # type: ignore[method-assign]
    orders = [order(new_id()) for _ in range(20)]
    ids = await asyncio.gather(*(store.append([o]) for o in orders))
    # One round trip: one script call per partition the orders fall in.
    assert len(calls) == 1 and sum(calls[0]) == 20
    assert len(calls[0]) == len({store.partition_of(o.order_id) for o in orders})
    by_partition: dict[int, list[StreamId]] = {}
    for o, [i] in zip(orders, ids, strict=True):
        assert i is not None
        by_partition.setdefault(store.partition_of(o.order_id), []).append(i)
    for part in by_partition.values():  # each caller got its own id, in order
        assert part == sorted(part)
    histories = await asyncio.gather(*(store.history(o.order_id) for o in orders))
    assert [h[0] for h in histories] == orders


async def test_a_failed_round_trip_fails_every_caller_sharing_it(store: EventStore) -> None:
    async def broken(batch: Sequence[Any]) -> list[Any]:
        raise ConnectionError("Redis went away")

    store._send = broken  # type: ignore[method-assign]
    results = await asyncio.gather(*(store.append([order(new_id())]) for _ in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_an_append_repeated_after_a_lost_reply_answers_that_it_is_in(
    store: EventStore,
) -> None:
    first = order(new_id())
    [stream_id] = await store.append([first])
    # The same bytes again (a retry on a fresh connection): in, not refused.
    assert await store.append([first]) == [StreamId(0, 0)]
    assert stream_id is not None and await log_length(store) == 1


async def test_every_key_of_an_order_shares_its_partition_tag(store: EventStore) -> None:
    from redis.crc import key_slot

    order_id = new_id()
    partition = store.partition_of(order_id)
    keys = [store.order_key(order_id), store.log_key(partition),
            store.queue_key("router", partition), store.queue_key("executor", partition),
            store.dead_letters(partition), store.layout.ledger(order_id, "sig")]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    slots = {key_slot(store.log_key(p).encode()) for p in store.partitions}
    assert len(slots) == len(store.partitions)


async def test_reading_across_partitions_after_positions(store: EventStore) -> None:
    orders = [order(new_id()) for _ in range(40)]
    await store.append(orders)
    everything = [e async for e in store.everything_after(page=3)]
    assert sorted(e.event.order_id for e in everything) == sorted(o.order_id for o in orders)
    heads = await store.heads()
    assert [e async for e in store.everything_after(heads)] == []
    middle = Positions.of(max((e.id for e in everything[:20] if e.partition == p),
                              default=StreamId(0, 0)) for p in store.partitions)
    later = [e async for e in store.everything_after(middle)]
    assert {e.id for e in later} == {e.id for e in everything
                                      if e.id > middle[e.partition]}
    assert len(await store.tail(middle, 100)) == len(later)


async def test_a_position_token_round_trips(store: EventStore) -> None:
    await store.append([order(new_id()) for _ in range(10)])
    heads = await store.heads()
    text = heads.token()
    assert Positions.parse(text, len(heads)) == heads
    # Anything that takes a stream id takes the token too.
    assert Positions.from_id(StreamId.parse(text), len(heads)) == heads


async def test_queues_are_trimmed_right_behind_their_group(store: EventStore) -> None:
    await store.append([order(new_id()) for _ in range(300)])
    router = store.group("router")
    await router.ensure()
    everywhere = list(store.partitions)
    while entries := await router.read("c", 300, everywhere):
        await router.ack(entries)
    await store.trim(retention_s=3600)
    assert await stream_length(store, "router") < 300
    assert await log_length(store) == 300  # the log keeps its retention


async def test_a_trim_keeps_up_with_a_busy_stream(store: EventStore) -> None:
    # More than one approximate XTRIM evicts by default (10,000 entries).
    for _ in range(24):
        await store.append([order(new_id()) for _ in range(500)])
    group = store.group("g")
    await group.ensure()
    while entries := await group.read("c", 5000, list(store.partitions)):
        await group.ack(entries)
    await store.trim(retention_s=0)
    assert await log_length(store) < 500


async def test_trim_copes_with_entries_acknowledged_while_it_looks(
    store: EventStore, monkeypatch: Any
) -> None:
    await store.append([order(new_id()) for _ in range(10)])
    group = store.group("g")
    await group.ensure()
    await group.read("c", 10, list(store.partitions))  # pending, as XINFO GROUPS will say

    async def all_acknowledged_since(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"pending": 0, "min": None, "max": None, "consumers": []}

    calls = store._each_call

    async def acknowledged_since(command: str, args: Sequence[Any]) -> list[Any]:
        if command == "xpending":
            return [await all_acknowledged_since() for _ in args]
        return await calls(command, args)

    monkeypatch.setattr(store, "_each_call", acknowledged_since)
    assert await store.trim(retention_s=0) is not None


async def test_trimming_goes_on_after_a_failure(store: EventStore) -> None:
    from services.persister.service import trim_periodically

    stop = asyncio.Event()
    calls = 0

    async def flaky(retention_s: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise AttributeError("a bug")
        if calls == 3:
            stop.set()

    store.trim = flaky  # type: ignore[method-assign,assignment]
    await asyncio.wait_for(trim_periodically(store, 0, stop, every_s=0.01), 5)
    assert calls == 3


async def test_a_handler_that_hangs_lets_go_and_the_entry_is_claimed(store: EventStore) -> None:
    await store.append([order(new_id())])
    attempts: list[str] = []
    hang = asyncio.Event()

    async def handle(entries: Sequence[Entry]) -> None:
        attempts.append(entries[0].event.order_id)
        if len(attempts) == 1:
            await hang.wait()  # never set: the first handling hangs

    settings = WorkerSettings(group="g", consumer="c", types=(OrderRequested,), chunk_size=1,
                              claim_idle_ms=100, handling_timeout_s=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(store, settings, handle).run(stop))
    await eventually(lambda: _pending(store, 0), 10)
    stop.set()
    await task
    assert len(attempts) == 2 and attempts[0] == attempts[1]
