"""What a process finds in Redis at start: the recorded partition count; and appends that
wait for replicas, which on a cluster go to their slot's primary."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from shared.config import Settings
from shared.partitions import PartitionMismatch
from shared.stream import EventStore
from tests.conftest import cleanup
from tests.helpers import order


async def test_another_partition_count_is_refused_naming_both(settings: Settings) -> None:
    store = EventStore(settings)
    try:
        await store.check_partitions()
        other = msgspec.structs.replace(settings, partitions=settings.partitions * 2)
        with pytest.raises(PartitionMismatch) as refused:
            EventStore(other)
        assert f"in {settings.partitions} partitions" in str(refused.value)
        assert f"oee repartition {settings.partitions * 2}" in str(refused.value)
    finally:
        await cleanup(store.redis, settings.namespace)
        await store.close()


async def test_an_append_waiting_for_replicas_may_be_a_new_stores_first_command(
    settings: Settings,
) -> None:
    """On a cluster, the append goes to its slot's primary by the client's slot map, which
    a first command has to learn. Without replicas here, WAIT gives up after its timeout."""
    waiting = msgspec.structs.replace(settings, redis_wait_replicas=1)
    # The count recorded, so that the new store's first command is the append.
    await EventStore(settings).close()
    store = EventStore(waiting)
    try:
        [stream_id] = await store.append([order(str(uuid.uuid4()))])
        assert stream_id is not None
    finally:
        await cleanup(store.redis, settings.namespace)
        await store.close()
