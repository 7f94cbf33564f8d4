"""What every part of the event store stands on: its settings, its connections, where each
of its keys lives, and one command per key sent in one round trip.

The event store (``shared.stream.EventStore``) is this base with three parts on top, one
concern each: appending (``shared.appending``), reading and tailing the log
(``shared.reading``), and its consumer groups with their upkeep (``shared.groups``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.exceptions import ResponseError

from shared.config import Settings
from shared.partitions import Layout
from shared.redis_client import connect, is_cluster


class StoreBase:
    """Commands and blocking reads use separate connections, so a read blocked for
    ``block_ms`` never trips the command socket's timeout."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.layout = Layout(settings.namespace, settings.partitions)
        self.cluster = is_cluster(settings.redis_url)
        self.redis = connect(settings.redis_url, cluster=self.cluster)
        self.blocking = connect(settings.redis_url, cluster=self.cluster,
                                read_timeout_s=self.longest_block_ms / 1000 + 10)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.blocking.aclose()

    @property
    def partitions(self) -> range:
        return self.layout.partitions

    @property
    def read_sets(self) -> list[list[int]]:
        """Partitions one blocking read may cover: all of them on a single Redis; one on a
        cluster, where a command's keys must share a slot."""
        if self.cluster:
            return [[p] for p in self.partitions]
        return [list(self.partitions)]

    @property
    def longest_block_ms(self) -> int:
        """How long one blocking read waits. On a cluster each partition has its own read;
        they wait longer, so that an idle process still makes about one read per
        ``block_ms`` (at most 30 s, so a moved slot is noticed)."""
        return min(30_000, self.settings.block_ms * len(self.read_sets))

    def partition_of(self, order_id: str) -> int:
        return self.layout.of(order_id)

    def order_key(self, order_id: str) -> str:
        return self.layout.order(order_id)

    def log_key(self, partition: int) -> str:
        return self.layout.log(partition)

    def queue_key(self, group: str, partition: int) -> str:
        return self.layout.queue(group, partition)

    def dead_letters(self, partition: int) -> str:
        return self.layout.dead(partition)

    async def _each(self, keys: Sequence[str], command: str) -> list[Any]:
        return await self._each_call(command, [{"name": k} for k in keys])

    async def _each_call(self, command: str, calls: Sequence[Mapping[str, Any]]) -> list[Any]:
        """One command per call, in one pipeline (on a cluster, one per node); a call that
        fails answers its exception."""
        if not calls:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for kwargs in calls:
                getattr(pipe, command)(**kwargs)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception) and not isinstance(reply, ResponseError):
                raise reply
        return replies


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
