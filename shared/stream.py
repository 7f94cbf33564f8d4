"""The event store: a log of every event split into partitions (one Redis Stream each), a
per-order index, and a work queue per acting service and partition.

An order lives in one partition (``shared.partitions``), so its events keep their order in
one stream, and every key one append touches shares a hash slot. ``EventStore`` is the one
object services use; it is made of three parts, one concern each:

* appending (``shared.appending``): the script that writes an event to the log, its order's
  index and its reader's queue, refusing what the order's lifecycle does not allow;
* reading (``shared.reading``): histories, and the log read or tailed after a position;
* consumer groups and their upkeep (``shared.groups``): reading, claiming and
  acknowledging; backlog, dead letters, trimming.

Here: the partition count, recorded in Redis at a namespace's first start, which each
process takes (``OEE_PARTITIONS`` unset) or checks against its own at start.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.exceptions import RedisError, ResponseError

from shared.appending import OPEN_ORDER_TTL_S, Appending
from shared.config import Settings
from shared.groups import ConsumerGroup, GroupUpkeep
from shared.partitions import Layout, PartitionMismatch, mismatch_message
from shared.positions import Positions, StreamId
from shared.queues import QUEUES
from shared.reading import Entry, Reading, parse_entries
from shared.redis_client import connect_sync, is_cluster

__all__ = ["OPEN_ORDER_TTL_S", "QUEUES", "ConsumerGroup", "Entry", "EventStore", "Positions",
           "StreamId", "parse_entries", "partitions_of", "recorded_partitions"]

# Checked once per process for each (Redis, namespace, count).
_CHECKED: set[tuple[str, str, int]] = set()
# What a namespace that has no count recorded yet takes when OEE_PARTITIONS is unset: on a
# single Redis every partition more costs a script call per batch and a stream per read
# (docs/performance.md, the partitions rows); on a cluster they spread the shards.
NEW_ON_A_SINGLE_REDIS = 1
NEW_ON_A_CLUSTER = 4


class PartitionsUnknown(RuntimeError):
    """Redis, which holds the partition count, does not answer."""


class RedisTooOld(RuntimeError):
    """The server at REDIS_URL is older than Redis 7.0, which the engine needs."""


def _refuse_an_old_redis(error: ResponseError) -> None:
    # SET with both NX and GET, which the engine uses here and for the simulated chain's
    # landings, came with Redis 7.0; an older server calls it a syntax error.
    if "syntax error" in str(error).lower():
        raise RedisTooOld("the engine needs Redis 7.0 or newer (or Valkey): the server at "
                          f"REDIS_URL refused SET with NX and GET ({error})") from error


def partitions_of(settings: Settings) -> int:
    """``settings.partitions``, or where it is 0 (unset) the count Redis holds for the
    namespace (``recorded_partitions``)."""
    return settings.partitions or recorded_partitions(settings)


def recorded_partitions(settings: Settings) -> int:
    """The count Redis holds for the namespace. Where none is recorded yet, this process's is
    recorded (``SET NX``), so every process started after agrees: ``OEE_PARTITIONS``, or
    unset ``NEW_ON_A_SINGLE_REDIS`` or ``NEW_ON_A_CLUSTER``. Raises ``PartitionMismatch``
    where ``OEE_PARTITIONS`` is set to another count, ``PartitionsUnknown`` while Redis does
    not answer, ``RedisTooOld`` before 7.0."""
    cluster = is_cluster(settings.redis_url)
    wanted = settings.partitions or (NEW_ON_A_CLUSTER if cluster else NEW_ON_A_SINGLE_REDIS)
    client = connect_sync(settings.redis_url, cluster)
    try:
        recorded = client.set(Layout(settings.namespace, wanted).count_key, wanted, nx=True,
                              get=True)
    except ResponseError as error:
        _refuse_an_old_redis(error)
        raise
    except RedisError as error:
        raise PartitionsUnknown(
            f"Redis, which holds the partition count, does not answer: {error}") from error
    finally:
        client.close()
    count = wanted if recorded is None else int(recorded)
    if settings.partitions and count != settings.partitions:
        raise PartitionMismatch(mismatch_message(count, settings.partitions,
                                                 settings.namespace))
    _CHECKED.add((settings.redis_url, settings.namespace, count))
    return count


class EventStore(Appending, Reading, GroupUpkeep):
    """Appends and reads events, and keeps the consumer groups that act on them. Its
    ``settings`` carry the partition count it uses (``partitions_of``)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.partitions:
            settings = msgspec.structs.replace(settings, partitions=partitions_of(settings))
        super().__init__(settings)
        self._check_partitions_now()

    def _check_partitions_now(self) -> None:
        """Record the partition count at first start; refuse another one. Redis away: the
        check waits for ``check_partitions``, which every service awaits at start."""
        if self._checked:
            return
        client = connect_sync(self.settings.redis_url, self.cluster)
        try:
            self._compare(client.set(self.layout.count_key, self.layout.count, nx=True,
                                     get=True))
        except ResponseError as error:
            _refuse_an_old_redis(error)
            return
        except RedisError:
            return
        finally:
            client.close()

    async def check_partitions(self) -> None:
        """As at construction; raises ``PartitionMismatch`` for another count, and
        ``RedisTooOld`` for a server before Redis 7.0."""
        if not self._checked:
            try:
                recorded = await self.redis.set(self.layout.count_key, self.layout.count,
                                                nx=True, get=True)
            except ResponseError as error:
                _refuse_an_old_redis(error)
                raise
            self._compare(recorded)

    @property
    def _checked(self) -> bool:
        return (self.settings.redis_url, self.settings.namespace, self.layout.count) in _CHECKED

    def _compare(self, recorded: Any) -> None:
        if recorded is not None and int(recorded) != self.layout.count:
            raise PartitionMismatch(mismatch_message(int(recorded), self.layout.count,
                                                     self.settings.namespace))
        _CHECKED.add((self.settings.redis_url, self.settings.namespace, self.layout.count))
