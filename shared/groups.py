"""Consumer groups and their upkeep: what a worker reads, claims, keeps and acknowledges;
how far behind each group is; the dead letters, entries no consumer could finish; and
trimming the log and the queues behind the slowest group."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.decisions import Refused, give_up
from shared.events import AnyEvent, Event, encode
from shared.order import fold
from shared.positions import ORIGIN, Positions, StreamId
from shared.queues import QUEUED_GROUPS, QUEUES
from shared.reading import Entry, parse_entries, streams_read
from shared.redis_client import pipelined, read_blocking
from shared.store_base import StoreBase, as_text


class _WholeStore(Protocol):
    """What dead-lettering needs of the whole store: it ends the entry's order."""

    redis: aioredis.Redis

    def partition_of(self, order_id: str) -> int: ...
    def dead_letters(self, partition: int) -> str: ...
    async def history(self, order_id: str) -> list[AnyEvent]: ...
    async def append(self, events: Sequence[Event]) -> list[StreamId | None]: ...


class GroupUpkeep(StoreBase):
    def group_streams(self, name: str) -> list[str]:
        """Per partition, the stream the group ``name`` reads: its own queue for the
        services that have one, the log for every other group."""
        if name in QUEUED_GROUPS:
            return [self.queue_key(name, p) for p in self.partitions]
        return [self.log_key(p) for p in self.partitions]

    def group(self, name: str) -> ConsumerGroup:
        return ConsumerGroup(self, name)

    async def backlog(self) -> dict[str, int]:
        """Per consumer group, summed over partitions: entries delivered and not yet
        acknowledged, plus entries not yet read."""
        streams = [s for name in ("persister", *QUEUES) for s in self.group_streams(name)]
        streams = list(dict.fromkeys([*self.layout.logs(), *streams]))
        counts: dict[str, int] = {}
        for groups in await self._each(streams, "xinfo_groups"):
            if isinstance(groups, Exception):  # no such stream yet
                continue
            for group in groups:
                name = as_text(group["name"])
                counts[name] = counts.get(name, 0) + int(group["pending"]) + int(
                    group.get("lag") or 0)
        return counts

    async def dead_letter(self: _WholeStore, group: ConsumerGroup, entry: Entry,
                          reason: str) -> None:
        """Park an entry no consumer could finish, with the reason, and end its order
        ``failed`` with that reason; then the entry is acknowledged."""
        event = entry.event
        await self.redis.xadd(self.dead_letters(self.partition_of(event.order_id)), {
            "group": group.name, "id": str(entry.id), "order": event.order_id,
            "type": event.type, "reason": reason, "data": encode(event),
        })
        state = fold(event.order_id, await self.history(event.order_id))
        decided = give_up(state, reason)
        if not isinstance(decided, Refused):
            await self.append(decided)
        await group.ack([entry])

    async def dead_letter_entries(self) -> AsyncIterator[dict[bytes, bytes]]:
        """Every dead letter, partition by partition."""
        for partition in self.partitions:
            start = "-"
            while True:
                page: Any = await self.redis.xrange(self.dead_letters(partition), start, "+",
                                                    count=1000)
                for _, fields in page:
                    yield fields
                if len(page) < 1000:
                    break
                start = "(" + as_text(page[-1][0])

    async def trim(self, retention_s: float) -> StreamId | None:
        """Trim each partition's log of entries older than ``retention_s`` that every
        consumer group is done with: never past a group's oldest pending entry, nor past
        what it has not read yet. (PostgreSQL keeps the whole log.) Queues are trimmed right
        behind their groups. Three round trips for every stream of every partition.
        Returns the oldest id a log was trimmed up to, if any."""
        logs = self.layout.logs()
        queues = [self.queue_key(q, p) for q in QUEUES for p in self.partitions]
        streams = [*logs, *queues]
        infos = await self._each(streams, "xinfo_groups")
        bounds: dict[str, list[StreamId]] = {}
        pending: list[tuple[str, Any]] = []
        now_ms = int(time.time() * 1000)
        for stream, groups in zip(streams, infos, strict=True):
            if isinstance(groups, Exception) or not groups:
                continue
            retention = retention_s if stream in logs else 0
            bounds[stream] = [StreamId(now_ms - int(retention * 1000), 0)]
            for group in groups:
                bounds[stream].append(StreamId.parse(group["last-delivered-id"]))
                if group["pending"]:
                    pending.append((stream, group["name"]))
        summaries = await self._each_call(
            "xpending", [{"name": s, "groupname": g} for s, g in pending])
        for (stream, _), summary in zip(pending, summaries, strict=True):
            # Acknowledged in between, maybe: then nothing pending holds trimming back.
            if not isinstance(summary, Exception) and summary["min"] is not None:
                bounds[stream].append(StreamId.parse(summary["min"]))
        trims = {s: min(b) for s, b in bounds.items() if min(b) > ORIGIN}
        # No LIMIT: by default an approximate trim evicts at most 10,000 entries per call,
        # less than a busy stream gains between two trims.
        await self._each_call("xtrim", [{"name": s, "minid": str(b), "approximate": True,
                                         "limit": 0} for s, b in trims.items()])
        trimmed = [b for s, b in trims.items() if s in logs]
        return min(trimmed) if trimmed else None


class ConsumerGroup:
    """One consumer group, on its stream in every partition: what a worker reads, claims
    and acknowledges. Entries are named by (partition, id)."""

    def __init__(self, store: GroupUpkeep, name: str) -> None:
        self.store, self.name = store, name
        self.streams = store.group_streams(name)
        self.redis = store.redis

    async def ensure(self) -> None:
        # From the start of each stream: a group created after orders were accepted still
        # handles them, and idempotent appends make any re-handling harmless.
        replies = await self.store._each_call(
            "xgroup_create", [{"name": s, "groupname": self.name, "id": "0", "mkstream": True}
                              for s in self.streams])
        for reply in replies:
            if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
                raise reply

    async def read(self, consumer: str, count: int, partitions: Sequence[int], *,
                   pending: Positions | None = None, block_ms: int | None = None,
                   acks: Sequence[Entry] = ()) -> list[Entry]:
        """New entries of these partitions for this consumer (up to ``count`` in all,
        spread over them), or with ``pending`` its own unacknowledged entries after those
        ids (redeliveries). ``acks``: entries of any partition to acknowledge first, in
        the same round trip on a single Redis."""
        per = max(1, math.ceil(count / len(partitions)))
        if self.store.cluster and len(partitions) > 1:
            # One command per partition: a command's keys must share a slot.
            await self.ack(acks)
            parts = await asyncio.gather(*(
                self.read(consumer, per, [p], pending=pending, block_ms=block_ms)
                for p in partitions))
            return [entry for part in parts for entry in part]
        command: list[Any] = ["XREADGROUP", "GROUP", self.name, consumer, "COUNT", per]
        if pending is None:
            after = [">"] * len(partitions)
            command += ["BLOCK",
                        self.store.settings.block_ms if block_ms is None else block_ms]
        else:
            after = [str(pending[p]) for p in partitions]
        command += ["STREAMS", *(self.streams[p] for p in partitions), *after]
        reply = await read_blocking(self.store.blocking, command, first=self._acks(acks))
        index = {s: p for p, s in enumerate(self.streams)}
        entries = []
        for key, raw in streams_read(reply):
            entries += parse_entries([(i, f) for i, f in raw if f], index[key])
        return entries

    async def claim_idle(self, consumer: str, min_idle_ms: int, count: int,
                         partition: int) -> list[Entry]:
        """Take over entries that another consumer left unacknowledged for too long."""
        reply: Any = await self.redis.xautoclaim(
            self.streams[partition], self.name, consumer, min_idle_time=min_idle_ms,
            start_id="0-0", count=count,
        )
        return parse_entries([r for r in reply[1] if r[1]], partition)

    async def touch(self, consumer: str, refs: Sequence[tuple[int, StreamId]]) -> None:
        """Reset the idle time of entries this consumer is still working on, so no other
        consumer takes them over while it is alive."""
        calls = []
        for partition, ids in _by_partition(refs).items():
            for start in range(0, len(ids), 500):
                chunk = [str(i) for i in ids[start : start + 500]]
                calls.append({"name": self.streams[partition], "groupname": self.name,
                              "consumername": consumer, "min_idle_time": 0,
                              "message_ids": chunk, "justid": True})
        for reply in await self.store._each_call("xclaim", calls):
            if isinstance(reply, Exception):
                raise reply

    async def deliveries(self, entries: Sequence[Entry]) -> dict[tuple[int, StreamId], int]:
        """How often each pending entry has been delivered."""
        counts: dict[tuple[int, StreamId], int] = {}
        for partition, ids in _by_partition([e.ref for e in entries]).items():
            rows: Any = await self.redis.xpending_range(
                self.streams[partition], self.name, min=str(min(ids)), max=str(max(ids)),
                count=len(ids) * 4 + 100,
            )
            wanted = set(ids)
            for row in rows:
                stream_id = StreamId.parse(row["message_id"])
                if stream_id in wanted:
                    counts[(partition, stream_id)] = int(row["times_delivered"])
        return counts

    async def ack(self, entries: Sequence[Entry]) -> None:
        """One XACK per partition, all in one round trip."""
        await pipelined(self.redis, self._acks(entries))

    def _acks(self, entries: Sequence[Entry]) -> list[tuple[Any, ...]]:
        return [("XACK", self.streams[partition], self.name, *(str(i) for i in ids))
                for partition, ids in _by_partition([e.ref for e in entries]).items()]


def _by_partition(refs: Sequence[tuple[int, StreamId]]) -> dict[int, list[StreamId]]:
    parts: dict[int, list[StreamId]] = {}
    for partition, stream_id in refs:
        parts.setdefault(partition, []).append(stream_id)
    return parts
