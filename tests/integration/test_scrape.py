"""What the gateway's scrape reads from Redis for the alert rules: how far PostgreSQL is behind
the log (the persister group's oldest unacknowledged entry) and the dead letters held, on
every partition of a real Redis, single and cluster."""

from __future__ import annotations

import msgspec
import pytest

from services.gateway.metrics import PERSISTER, postgres_behind_s, read
from shared.config import Settings
from shared.positions import ORIGIN, StreamId
from shared.stream import EventStore
from tests.helpers import eventually
from tests.unit import builders


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Four partitions on a single Redis too (where a new namespace takes one): what is read
    over every partition is read over more than one."""
    return msgspec.structs.replace(settings, partitions=4)


async def append_orders(store: EventStore, count: int, name: str = "scraped") -> list[StreamId]:
    """``count`` new orders, spread over the partitions by their ids, each appended in a
    later millisecond than the one before; their stream ids."""
    ids: list[StreamId] = []
    for i in range(count):
        if ids:
            await eventually(lambda: later_than(store, ids[-1]), 5, every_s=0.001)
        [appended] = await store.append([builders.requested(f"{name}-{i}")])
        assert appended is not None and appended > ORIGIN
        ids.append(appended)
    return ids


async def later_than(store: EventStore, stream_id: StreamId) -> bool | None:
    seconds, micros = await store.redis.time()
    return True if seconds * 1000 + micros // 1000 > stream_id.ms else None


async def test_postgres_is_as_far_behind_as_the_oldest_entry_the_persister_has_not_acked(
        store: EventStore) -> None:
    assert await postgres_behind_s(store, 10**10) == 0.0  # an empty log: nothing to record
    appended = await append_orders(store, 8)
    assert len({store.partition_of(f"scraped-{i}") for i in range(8)}) > 1
    oldest_s = min(appended).ms / 1000
    # No persister yet: all of the log is unrecorded.
    assert await postgres_behind_s(store, oldest_s + 30) == pytest.approx(30.0)

    group = store.group(PERSISTER)
    await group.ensure()
    assert await postgres_behind_s(store, oldest_s + 30) == 30.0  # unread
    entries = await group.read("persister-1", 100, list(store.partitions), block_ms=1)
    assert len(entries) == 8
    assert await postgres_behind_s(store, oldest_s + 30) == 30.0  # read, not yet recorded

    # Recorded up to the newest but one: that one is the oldest left.
    entries.sort(key=lambda e: e.id)
    await group.ack(entries[:-1])
    assert await postgres_behind_s(store, oldest_s + 30) == pytest.approx(
        30.0 - (entries[-1].id.ms / 1000 - oldest_s))
    await group.ack(entries[-1:])
    assert await postgres_behind_s(store, oldest_s + 30) == 0.0

    # A new entry nobody has read yet, with every pending entry acknowledged.
    [later] = await append_orders(store, 1, "later")
    assert await postgres_behind_s(store, later.ms / 1000 + 5) == pytest.approx(5.0)
    # A clock a little behind Redis's: not behind at all, rather than less than nothing.
    assert await postgres_behind_s(store, later.ms / 1000 - 1) == 0.0


async def test_the_dead_letters_held_are_counted_over_every_partition(
        store: EventStore) -> None:
    assert (await read(store, 0)).dead_letters == 0
    await append_orders(store, 8)
    group = store.group(PERSISTER)
    await group.ensure()
    entries = await group.read("persister-1", 100, list(store.partitions), block_ms=1)
    parked = entries[:5]
    assert len({e.partition for e in parked}) > 1
    for entry in parked:
        await store.dead_letter(group, entry, "poison")
    readings = await read(store, 0)
    assert readings.dead_letters == 5
    # Three read and not recorded, and the five orders' Failed, appended as each was parked.
    assert readings.backlog[PERSISTER] == 8
