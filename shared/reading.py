"""Reading the event store: an order's history from its index, and the log itself, read
after a position without waiting or tailed as it grows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import msgspec

from shared.batching import Batcher
from shared.config import Settings
from shared.events import AnyEvent, decode, decode_all
from shared.positions import ORIGIN, Positions, StreamId
from shared.redis_client import pipelined, read_blocking
from shared.store_base import StoreBase, as_text


class Entry(msgspec.Struct, frozen=True):
    """An event as read from the log or a queue, with where it sits there. ``history``:
    the order's events up to this one, where a queue entry carries them (None: read them
    from the store)."""

    id: StreamId
    event: AnyEvent
    partition: int = 0
    history: list[AnyEvent] | None = None

    @property
    def ref(self) -> tuple[int, StreamId]:
        return (self.partition, self.id)


def parse_entries(raw: Sequence[tuple[bytes, dict[bytes, bytes]]],
                  partition: int = 0) -> list[Entry]:
    return [_entry(entry_id, fields, partition) for entry_id, fields in raw]


def _entry(entry_id: bytes, fields: dict[bytes, bytes], partition: int) -> Entry:
    event = decode(fields[b"d"])
    before = fields.get(b"h")
    history = None if before is None else [*decode_all(before), event]
    return Entry(StreamId.parse(entry_id), event, partition, history)


StreamEntries = list[tuple[bytes, dict[bytes, bytes] | None]]


def streams_read(reply: Any) -> list[tuple[str, StreamEntries]]:
    """An ``XREAD`` or ``XREADGROUP`` reply as (stream, [(id, fields)]) pairs, whichever
    shape it came in: as RESP3 gives it (a map of streams, each entry's fields a flat
    list), or as redis-py's cluster client makes it (pairs, each entry's fields a dict).
    An entry deleted since it was delivered has no fields (None)."""
    if reply is None:
        return []
    if isinstance(reply, dict):
        return [(as_text(key), [(entry_id, None if fields is None else _pairs(fields))
                                for entry_id, fields in raw])
                for key, raw in reply.items()]
    return [(as_text(key), raw) for key, raw in reply]


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    """Field, value, field, value... as a dict: a hash as RESP2 gives it, or a stream
    entry's fields."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


# The fields of an order's hash that are not events: its lifecycle state.
_NOT_EVENTS = frozenset({b"st"})


def _history(raw: Mapping[Any, bytes | str] | list[Any]) -> list[AnyEvent]:
    if isinstance(raw, list):
        raw = _pairs(raw)
    events = (decode(data) for key, data in raw.items() if key not in _NOT_EVENTS)
    return sorted(events, key=lambda e: e.seq)


class Reading(StoreBase):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._histories = Batcher(self._read_histories)

    # --- orders -----------------------------------------------------------------------

    async def history(self, order_id: str) -> list[AnyEvent]:
        """Every event of one order still indexed in Redis, oldest first. Reads made at the
        same moment share one pipeline."""
        [history] = await self._histories([order_id])
        return history

    async def history_of(self, entry: Entry) -> list[AnyEvent]:
        """The order's history as its queue entry carries it (as of that entry), or as the
        store holds it now."""
        if entry.history is not None:
            return entry.history
        if entry.event.seq == 1:
            return [entry.event]
        return await self.history(entry.event.order_id)

    async def histories(self, order_ids: Sequence[str]) -> list[list[AnyEvent]]:
        """``history`` of many orders in one round trip."""
        return await self._histories(order_ids)

    async def _read_histories(self, order_ids: list[str]) -> list[list[AnyEvent]]:
        replies = await pipelined(self.redis, [("HGETALL", self.order_key(order_id))
                                               for order_id in order_ids])
        return [_history(raw) for raw in replies]

    async def recorded(self, order_ids: Sequence[str]) -> None:
        """These finished orders are in PostgreSQL: their index may expire now, and a late
        subscriber then reads the history from there, complete."""
        ttl = self.settings.finished_order_ttl_s
        await pipelined(self.redis, [("EXPIRE", self.order_key(order_id), ttl)
                                     for order_id in order_ids])

    # --- the log ----------------------------------------------------------------------

    async def heads(self) -> Positions:
        """The newest entry of each partition's log (``ORIGIN`` where it has none): where
        a reader that wants only what comes next starts."""
        replies = await self._each(self.layout.logs(), "xinfo_stream")
        return Positions.of(ORIGIN if isinstance(r, Exception) else
                            StreamId.parse(r["last-generated-id"]) for r in replies)

    async def last_id(self) -> StreamId:
        """The newest entry of the whole log (``ORIGIN`` when it is empty)."""
        return max((await self.heads()).ids, default=ORIGIN)

    async def read_partition(self, partition: int, after: StreamId, count: int) -> list[Entry]:
        """Up to ``count`` entries of one partition's log after ``after``, without waiting."""
        raw: Any = await self.redis.xrange(self.log_key(partition), min=f"({after}",
                                           count=count)
        return parse_entries(raw, partition)

    async def entries_after(self, after: Positions, count: int,
                            until: Positions | None = None) -> list[Entry]:
        """Up to ``count`` entries of each partition after ``after`` (and not after
        ``until``), without waiting; per partition in log order."""
        args = [{"name": self.log_key(p), "min": f"({after[p]}",
                 "max": "+" if until is None else str(until[p]), "count": count}
                for p in self.partitions]
        replies = await self._each_call("xrange", args)
        return [entry for p, raw in enumerate(replies) for entry in parse_entries(raw, p)]

    async def everything_after(self, after: Positions | None = None,
                               until: Positions | None = None, page: int = 5000,
                               ) -> AsyncIterator[Entry]:
        """Every entry the log holds after ``after`` (from its start when None), up to
        ``until``, across partitions: per partition in log order, partitions interleaved
        page by page."""
        position = after or Positions.origin(self.layout.count)
        while True:
            entries = await self.entries_after(position, page, until)
            if not entries:
                return
            for entry in entries:
                position = position.advanced(entry.partition, entry.id)
                yield entry

    async def tail(self, after: Positions, count: int) -> list[Entry]:
        """Entries after ``after`` in any partition, for every reader alike (no group),
        waiting up to ``block_ms`` for some."""
        raw = await self.tail_raw(after, count, list(self.partitions))
        return [Entry(i, decode(data), p) for p, i, _, data in raw]

    async def tail_raw(self, after: Positions | Sequence[StreamId], count: int,
                       partitions: Sequence[int],
                       block_ms: int | None = None) -> list[tuple[int, StreamId, str, bytes]]:
        """As ``tail`` for some partitions, undecoded: (partition, id, order id, event
        JSON), for readers that decode only what they need. On a cluster each partition is
        read by a command of its own."""
        block = self.settings.block_ms if block_ms is None else block_ms
        if self.cluster and len(partitions) > 1:
            parts = await asyncio.gather(*(self.tail_raw(after, count, [p], block)
                                           for p in partitions))
            return [entry for part in parts for entry in part]
        keys = [self.log_key(p) for p in partitions]
        reply = await read_blocking(self.blocking, (
            "XREAD", "COUNT", count, "BLOCK", block, "STREAMS", *keys,
            *(str(after[p]) for p in partitions)))
        index = dict(zip(keys, partitions, strict=True))
        return [(index[key], StreamId.parse(i), f[b"o"].decode(), f[b"d"])
                for key, raw in streams_read(reply) for i, f in raw if f]
