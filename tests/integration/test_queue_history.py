"""A queue entry carries its order's events before it, so the service it hands the order to
decides without reading the order's hash back; an entry whose order moved on since is
decided again on what the store holds."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.executor import service as executor
from services.executor.chain import SimulatedChain
from shared.config import Settings
from shared.events import Built, Failed, Routed
from shared.stream import Entry, EventStore
from tests.helpers import order, route_now


async def _entries(store: EventStore, group: str, order_id: str) -> list[Entry]:
    """What a consumer of ``group`` reads of the order's partition now."""
    consumers = store.group(group)
    await consumers.ensure()
    return await consumers.read("reader", 100, [store.partition_of(order_id)], block_ms=100)


def _built(order_id: str, seq: int) -> Built:
    return Built(order_id=order_id, seq=seq, dex="raydium", instructions=[], wraps_sol=True,
                 unwraps_sol=False)


async def test_a_queue_entry_carries_the_orders_events_before_it(
        store: EventStore, settings: Settings) -> None:
    requested = order(str(uuid.uuid4()))
    await store.append([requested])
    [first] = await _entries(store, "router", requested.order_id)
    # The first event has nothing before it: the entry carries nothing, and is its history.
    assert first.history is None
    assert await store.history_of(first) == [requested]

    routed = route_now(requested, settings)
    await store.append([routed])
    [entry] = await _entries(store, "executor", requested.order_id)
    assert entry.event == routed
    assert entry.history == [requested, routed] == await store.history(requested.order_id)
    assert await store.history_of(entry) == entry.history


async def _hash_reads(store: EventStore) -> int:
    """The HMGETs Redis has run, the append script's own counted."""
    stats = await store.redis.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


async def test_an_event_that_hands_its_order_over_reads_the_hash_once(
        store: EventStore, settings: Settings) -> None:
    """The story a queue entry carries comes with the read that checks the order's state:
    one HMGET an event, whether it goes to a queue or not."""
    if store.cluster:
        pytest.skip("commandstats are per node on a cluster")
    requested = order(str(uuid.uuid4()))
    await store.append([requested])
    before = await _hash_reads(store)
    await store.append([route_now(requested, settings)])
    assert await _hash_reads(store) - before == 1
    [entry] = await _entries(store, "executor", requested.order_id)
    assert entry.history == await store.history(requested.order_id)


async def test_the_executor_begins_on_the_history_its_entry_carries(
        store: EventStore, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    requested = order(str(uuid.uuid4()))
    await store.append([requested, route_now(requested, settings)])
    [entry] = await _entries(store, "executor", requested.order_id)

    async def no_reads(order_id: str) -> list[Any]:
        raise AssertionError("the order's hash was read back")

    monkeypatch.setattr(store, "history", no_reads)
    begun = await executor.begin(store, SimulatedChain(store.redis, settings), settings, entry)
    assert begun is not None
    execution, taken_over = begun
    assert not taken_over
    assert isinstance(execution.state.built, Built)
    monkeypatch.undo()
    assert [e.type for e in await store.history(requested.order_id)] == [
        "OrderRequested", "Routed", "Built"]


async def test_an_entry_whose_order_moved_on_is_decided_on_the_store(
        store: EventStore, settings: Settings) -> None:
    """A redelivered route after another executor built the order: the entry's history lacks
    that build, so the store refuses a second one, and the executor takes over from the
    store's history instead of writing anything of its own."""
    requested = order(str(uuid.uuid4()))
    routed = route_now(requested, settings)
    await store.append([requested, routed])
    [entry] = await _entries(store, "executor", requested.order_id)
    assert entry.history is not None and len(entry.history) == 2
    theirs = _built(requested.order_id, seq=3)
    await store.append([theirs])

    begun = await executor.begin(store, SimulatedChain(store.redis, settings), settings, entry)
    assert begun is not None
    execution, taken_over = begun
    assert taken_over
    assert execution.state.built == theirs
    history = await store.history(requested.order_id)
    assert [e.type for e in history] == ["OrderRequested", "Routed", "Built"]
    assert history[-1] == theirs


async def test_an_entry_of_an_order_that_ended_is_left_alone(
        store: EventStore, settings: Settings) -> None:
    requested = order(str(uuid.uuid4()))
    routed = route_now(requested, settings)
    await store.append([requested, routed])
    [entry] = await _entries(store, "executor", requested.order_id)
    assert isinstance(entry.event, Routed)
    [ended] = await store.append([_failed(requested.order_id, seq=3)])
    assert ended is not None

    chain = SimulatedChain(store.redis, settings)
    assert await executor.begin(store, chain, settings, entry) is None
    assert [e.type for e in await store.history(requested.order_id)] == [
        "OrderRequested", "Routed", "Failed"]
    assert await chain.executions([requested.order_id]) == {requested.order_id: 0}



def _failed(order_id: str, seq: int) -> Failed:
    return Failed(order_id=order_id, seq=seq, error="ended elsewhere", reason="dead_lettered",
                  attempts=0)
