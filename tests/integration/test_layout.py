"""What a process finds in Redis at start: the recorded partition count, which it takes or
checks; and appends that wait for replicas, which on a cluster go to their slot's primary."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from redis.exceptions import ConnectionError, ResponseError

from shared.config import Settings
from shared.partitions import Layout, PartitionMismatch
from shared.stream import (
    NEW_ON_A_CLUSTER,
    NEW_ON_A_SINGLE_REDIS,
    EventStore,
    PartitionsUnknown,
    RedisTooOld,
    partitions_of,
)
from tests.conftest import cleanup
from tests.helpers import order


async def test_another_partition_count_is_refused_naming_both(settings: Settings) -> None:
    store = EventStore(settings)
    count = store.layout.count
    try:
        await store.check_partitions()
        other = msgspec.structs.replace(settings, partitions=count * 2)
        with pytest.raises(PartitionMismatch) as refused:
            EventStore(other)
        assert f"in {count} partitions" in str(refused.value)
        assert f"set OEE_PARTITIONS={count} (or leave it unset" in str(refused.value)
        assert f"oee repartition {count * 2}" in str(refused.value)
    finally:
        await cleanup(store.redis, settings.namespace)
        await store.close()


async def test_unset_a_new_namespace_records_one_partition_on_a_single_redis(
    settings: Settings,
) -> None:
    """Partitions spread a cluster's shards; on a single Redis each one more only costs."""
    assert settings.partitions == 0  # OEE_PARTITIONS unset
    store = EventStore(settings)
    try:
        expected = NEW_ON_A_CLUSTER if store.cluster else NEW_ON_A_SINGLE_REDIS
        assert store.layout.count == store.settings.partitions == expected
        assert int(await store.redis.get(store.layout.count_key)) == expected
        # A process started later with the count set to it agrees; another is refused.
        await EventStore(msgspec.structs.replace(settings, partitions=expected)).close()
        with pytest.raises(PartitionMismatch):
            EventStore(msgspec.structs.replace(settings, partitions=expected + 1))
    finally:
        await cleanup(store.redis, settings.namespace)
        await store.close()


async def test_unset_a_process_takes_the_count_recorded_before_it(settings: Settings) -> None:
    recorded = EventStore(msgspec.structs.replace(settings, partitions=3))
    try:
        assert partitions_of(settings) == 3
        taken = EventStore(settings)
        assert taken.layout.count == taken.settings.partitions == 3
        # Both find an order in the same partition, so either reads what the other wrote.
        requested = order(str(uuid.uuid4()))
        await recorded.append([requested])
        assert await taken.history(requested.order_id) == [requested]
        await taken.close()
    finally:
        await cleanup(recorded.redis, settings.namespace)
        await recorded.close()


def test_unset_with_redis_away_the_count_is_unknown_and_said_so(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Away:
        def set(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("Connection refused")

        def close(self) -> None:
            pass

    monkeypatch.setattr("shared.stream.connect_sync", lambda *_: Away())
    with pytest.raises(PartitionsUnknown, match="holds the partition count, does not answer"):
        EventStore(settings)
    # Set, it needs no answer at construction (the check at start waits for Redis).
    assert partitions_of(msgspec.structs.replace(settings, partitions=2)) == 2


def test_a_layout_has_at_least_one_partition() -> None:
    with pytest.raises(ValueError, match="at least one partition"):
        Layout("oee", 0)


class RedisBefore7:
    """A server before Redis 7.0 as redis-py sees it: SET with both NX and GET is a syntax
    error to it (no such server here to run against)."""

    def set(self, *args: Any, **kwargs: Any) -> Any:
        raise ResponseError("syntax error")

    def close(self) -> None:
        pass


async def test_a_redis_before_7_is_refused_by_name_at_start(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.stream.connect_sync", lambda *_: RedisBefore7())
    with pytest.raises(RedisTooOld, match=r"Redis 7\.0 or newer"):
        EventStore(settings)

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise ResponseError("ERR syntax error")

    class Away(RedisBefore7):
        def set(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("Connection refused")

    # Away at construction, with the count set: the check at start, which every service
    # awaits, refuses it.
    monkeypatch.setattr("shared.stream.connect_sync", lambda *_: Away())
    store = EventStore(msgspec.structs.replace(settings, partitions=4))
    try:
        monkeypatch.setattr(store.redis, "set", refused)
        with pytest.raises(RedisTooOld, match=r"Redis 7\.0 or newer"):
            await store.check_partitions()
    finally:
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


async def test_an_append_waiting_for_replicas_on_a_cluster_is_sent_again_or_without_waiting(
    settings: Settings,
) -> None:
    store = EventStore(msgspec.structs.replace(settings, redis_wait_replicas=1))
    if not store.cluster:
        await store.close()
        pytest.skip("a single Redis sends the appends and their WAIT in one pipeline")
    send = store._append_on_primary
    tries: list[str] = []

    def failing(*errors: Exception) -> Callable[[list[str], list[Any]], Awaitable[Any]]:
        async def call(keys: list[str], args: list[Any]) -> Any:
            tries.append(keys[0])
            if len(tries) <= len(errors):
                raise errors[len(tries) - 1]
            return await send(keys, args)
        return call

    try:
        # A lost connection and a moved slot: sent again, to the primary.
        store._append_on_primary = failing(  # type: ignore[method-assign]
            ConnectionError("lost"), ResponseError("MOVED 1 127.0.0.1:1"))
        [stream_id] = await store.append([order(str(uuid.uuid4()))])
        assert stream_id is not None and len(tries) == 3

        # A refusal of the call's own is not sent again.
        tries.clear()
        store._append_on_primary = failing(ResponseError("ERR refused"))  # type: ignore[method-assign]
        with pytest.raises(ResponseError, match="refused"):
            await store.append([order(str(uuid.uuid4()))])
        assert len(tries) == 1

        # Five tries, then it is appended without waiting for replicas.
        tries.clear()
        store._append_on_primary = failing(  # type: ignore[method-assign]
            *[ConnectionError("lost")] * 5)
        requested = order(str(uuid.uuid4()))
        [stream_id] = await store.append([requested])
        assert stream_id is not None and len(tries) == 5
        assert await store.history(requested.order_id) == [requested]
    finally:
        await cleanup(store.redis, settings.namespace)
        await store.close()
