"""What a process finds in Redis at start: the recorded partition count, and no events left
in the layout from before partitions (which nothing reads any more)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import msgspec
import pytest

from shared.config import Settings
from shared.partitions import OldLayout, PartitionMismatch
from shared.stream import EventStore
from tests.conftest import cleanup
from tests.helpers import order


async def test_a_redis_with_the_old_single_stream_is_refused_until_drained(
    settings: Settings,
) -> None:
    probe = EventStore(msgspec.structs.replace(settings, namespace=settings.namespace + "-probe"))
    old_log = f"{settings.namespace}:events"
    try:
        await probe.redis.xadd(old_log, {"order_id": "o-1", "event": "{}"})
        await probe.redis.hset(f"{settings.namespace}:order:o-1", "1", "{}")
        with pytest.raises(OldLayout) as refused:
            EventStore(settings)
        message = str(refused.value)
        assert f"{old_log} has 1 entries" in message and "previous version" in message
        # Refused before anything was written: the count is not recorded.
        assert await probe.redis.get(f"{settings.namespace}:partitions") is None

        # A drained stream (emptied, or deleted) no longer stands in the way.
        await probe.redis.xtrim(old_log, maxlen=0)
        store = EventStore(settings)
        await store.check_partitions()
        assert await probe.redis.get(f"{settings.namespace}:partitions") == b"%d" % (
            settings.partitions)
        await store.close()
    finally:
        await cleanup(probe.redis, settings.namespace)
        await cleanup(probe.redis, probe.settings.namespace)
        await probe.close()


async def test_a_service_started_on_the_old_layout_stops_saying_how_to_drain_it(
    settings: Settings,
) -> None:
    probe = EventStore(msgspec.structs.replace(settings, namespace=settings.namespace + "-probe"))
    try:
        await probe.redis.xadd(f"{settings.namespace}:events", {"order_id": "o-1"})
        env = {**os.environ, "REDIS_URL": settings.redis_url,
               "DATABASE_URL": settings.database_url, "OEE_NAMESPACE": settings.namespace}
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "services.cli", "router"], env=env,
            capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0
        assert "layout from before partitions" in done.stderr, done.stderr
        assert "run the previous version until" in done.stderr
    finally:
        await cleanup(probe.redis, settings.namespace)
        await cleanup(probe.redis, probe.settings.namespace)
        await probe.close()


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
