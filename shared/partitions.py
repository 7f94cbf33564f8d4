"""The key layout: every per-order key lives in one of ``OEE_PARTITIONS`` partitions, chosen
by a hash of the order id, as Kafka splits a topic.

All the keys of one partition share a hash tag, so on a Redis Cluster they sit in one hash
slot, and a script may touch any of them at once: the log, the order's index, the work
queues, the dead letters and the simulated chain's ledger. On a single Redis the tags are
just part of the names.
"""

from __future__ import annotations

import functools
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

T = TypeVar("T")


class PartitionMismatch(RuntimeError):
    """Redis holds data written with another partition count."""


@functools.cache
def _tags(count: int) -> tuple[str, ...]:
    """One hash tag per partition, each hashing into its own 1/count-th of the slots: a
    cluster created with evenly split slot ranges then holds the partitions evenly."""
    tags = []
    for partition in range(count):
        low = partition * REDIS_CLUSTER_HASH_SLOTS // count
        high = (partition + 1) * REDIS_CLUSTER_HASH_SLOTS // count
        suffix = 0
        while not low <= key_slot(f"p{partition}.{suffix}".encode()) < high:
            suffix += 1
        tags.append(f"p{partition}.{suffix}")
    return tuple(tags)


class Layout:
    """Where each key of a namespace lives, for a partition count."""

    def __init__(self, namespace: str, count: int) -> None:
        if count < 1:
            raise ValueError(f"a layout has at least one partition, not {count}")
        self.namespace = namespace
        self.count = count
        self.partitions = range(count)
        self._tags = _tags(count)

    def of(self, order_id: str) -> int:
        """The partition of an order: every key of the order lives there."""
        if self.count == 1:
            return 0
        return zlib.crc32(order_id.encode()) % self.count

    def key(self, partition: int, name: str) -> str:
        return f"{self.namespace}:{{{self._tags[partition]}}}:{name}"

    def log(self, partition: int) -> str:
        return self.key(partition, "events")

    def logs(self) -> list[str]:
        return [self.log(p) for p in self.partitions]

    def order(self, order_id: str) -> str:
        return self.key(self.of(order_id), f"order:{order_id}")

    def queue(self, group: str, partition: int) -> str:
        return self.key(partition, f"queue:{group}")

    def dead(self, partition: int) -> str:
        return self.key(partition, "dead")

    def ledger(self, order_id: str, signature: str) -> str:
        """The simulated chain's record of one landed transaction of the order."""
        return self.key(self.of(order_id), f"chain:tx:{signature}")

    @property
    def count_key(self) -> str:
        """Where the partition count is recorded, at first start."""
        return f"{self.namespace}:partitions"

    def split(self, items: Sequence[T], order_id: Callable[[T], str]
              ) -> dict[int, list[int]]:
        """Indexes of ``items`` per partition, in their order."""
        parts: dict[int, list[int]] = defaultdict(list)
        for index, item in enumerate(items):
            parts[self.of(order_id(item))].append(index)
        return parts


def mismatch_message(recorded: int, wanted: int, namespace: str) -> str:
    return (f"Redis holds namespace {namespace!r} in {recorded} partitions, but "
            f"OEE_PARTITIONS is {wanted}: set OEE_PARTITIONS={recorded} (or leave it unset "
            f"to take the recorded count), or run "
            f"`oee repartition {wanted}` first (it waits until no order is in flight)")


def spread(values: Iterable[int], count: int) -> list[int]:
    """``values`` summed into ``count`` buckets round robin (for per-partition figures)."""
    buckets = [0] * count
    for index, value in enumerate(values):
        buckets[index % count] += value
    return buckets
