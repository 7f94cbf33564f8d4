"""The event store: one Redis Stream (the log) for every event, a per-order index, and a
work queue per acting service.

The log is the source of truth and the order in which the persister and the gateway see
facts. Beside it, a hash per order maps ``seq -> event``; one Lua script writes both, so an
event is in the log if and only if it is in its order's hash. That gives two things cheaply:

* appends are idempotent: a second event with the same (order, seq) is dropped, whichever
  service instance produced it, so a redelivered cause can never fork an order's story;
* a subscriber can read an order's whole history with one HGETALL, consistent with the
  stream position it starts tailing from.

The hash also keeps the order's lifecycle state, and the script refuses an event that the
state does not allow (``shared.lifecycle``): once a terminal event is in, nothing more is
appended to that order, so an order reaches exactly one terminal state however many
services race, and no service can write a step out of turn.

The same script puts an event that the router or the executor acts on in that service's
queue (``shared.queues``), so each reads only its own work.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared import lifecycle
from shared.batching import Batcher
from shared.config import Settings
from shared.events import AnyEvent, Event, Failed, decode, encode
from shared.queues import QUEUED_GROUPS, queue_of

# An order keeps its index this long at most, in case it never finishes or PostgreSQL never
# gets it; once the persister has recorded its end, ``finished_order_ttl_s``.
OPEN_ORDER_TTL_S = 7 * 24 * 3600

# The lifecycle's allowed (state, move) pairs, as a Lua set; the order's state is kept in its
# hash under 'st'. Checking here costs a hash read and write inside the script that appends
# anyway, not a round trip per event. A hash with events but no 'st' was written before the
# machine: only its end ('end') is checked, and it gets a state from its next event on.
_ALLOWED = ", ".join(f"['{pair}'] = true" for pair in lifecycle.lua_allowed())

_APPEND = """
local allowed = {__ALLOWED__}
local ids = {}
for i = 2, #KEYS do
  local a = (i - 2) * 7 + 2
  local seq, move, target, kind, order, data, queue =
    ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4], ARGV[a+5], ARGV[a+6]
  local found = redis.call('HMGET', KEYS[i], 'st', 'end', '1')
  local ok
  if found[1] then ok = allowed[found[1] .. '|' .. move]
  elseif found[2] then ok = false
  elseif found[3] then ok = true
  else ok = allowed['|' .. move] end
  if ok and redis.call('HSETNX', KEYS[i], seq, data) == 1 then
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'o', order, 's', seq, 't', kind, 'd', data)
    if queue ~= '' then
      redis.call('XADD', queue, '*', 'o', order, 's', seq, 't', kind, 'd', data)
    end
    redis.call('HSET', KEYS[i], 'st', target)
    if seq == '1' then
      redis.call('EXPIRE', KEYS[i], ARGV[1])
    end
  else
    ids[#ids + 1] = false
  end
end
return ids
""".replace("__ALLOWED__", _ALLOWED)

# Events per script call: one call blocks Redis while it runs, so a burst is cut in pieces.
_APPEND_CHUNK = 500


class StreamId(msgspec.Struct, frozen=True, order=True):
    """A stream entry id; compares as two integers, never as text."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, raw: bytes | str) -> StreamId:
        text = raw.decode() if isinstance(raw, bytes) else raw
        ms, _, seq = text.partition("-")
        return cls(int(ms), int(seq or 0))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


class Entry(msgspec.Struct, frozen=True):
    """An event as read from the stream, with where it sits there."""

    id: StreamId
    event: AnyEvent


def connect(url: str, *, read_timeout_s: float | None = 5.0) -> aioredis.Redis:
    """A client whose pool makes a burst of commands wait for a free connection (up to
    ``read_timeout_s``) instead of failing with "too many connections"."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=64,
        timeout=read_timeout_s,
        socket_timeout=read_timeout_s,
        socket_connect_timeout=5.0,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


def parse_entries(raw: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> list[Entry]:
    return [Entry(StreamId.parse(entry_id), decode(fields[b"d"])) for entry_id, fields in raw]


class EventStore:
    """Appends and reads events. Commands and blocking reads use separate connections,
    so a read blocked for ``block_ms`` never trips the command socket's timeout.

    Appends made at the same moment by concurrent tasks (the executor's orders, the
    gateway's requests) share one script call: each caller still gets its own answer, and
    Redis does one round trip instead of one per caller."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stream = settings.stream
        self.redis = connect(settings.redis_url)
        self.blocking = connect(settings.redis_url, read_timeout_s=settings.block_ms / 1000 + 10)
        self._append = self.redis.register_script(_APPEND)
        self._appends = Batcher(self._append_all)
        self._histories = Batcher(self._read_histories)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.blocking.aclose()

    def order_key(self, order_id: str) -> str:
        return f"{self.settings.namespace}:order:{order_id}"

    def queue_key(self, group: str) -> str:
        return f"{self.settings.namespace}:queue:{group}"

    def group(self, name: str) -> ConsumerGroup:
        """The consumer group ``name`` on the stream its work arrives on: its own queue for
        the services that have one, the log for every other group."""
        stream = self.queue_key(name) if name in QUEUED_GROUPS else self.stream
        return ConsumerGroup(self, stream, name)

    async def append(self, events: Sequence[Event]) -> list[StreamId | None]:
        """Append in order; returns each event's stream id, or None where the store dropped
        the event: it had one with that (order, seq) already, or the order's lifecycle does
        not allow it now (an order that ended allows nothing)."""
        return await self._appends(events)

    async def _append_all(self, events: list[Event]) -> list[StreamId | None]:
        ids: list[StreamId | None] = []
        for start in range(0, len(events), _APPEND_CHUNK):
            ids += await self._append_now(events[start : start + _APPEND_CHUNK])
        return ids

    async def _append_now(self, events: Sequence[Event]) -> list[StreamId | None]:
        keys: list[str] = [self.stream]
        args: list[Any] = [OPEN_ORDER_TTL_S]
        for event in events:
            queue = queue_of(event)
            keys.append(self.order_key(event.order_id))
            move = event.move
            args += [event.seq, move, lifecycle.target(move), event.type, event.order_id,
                     encode(event), self.queue_key(queue) if queue else ""]
        ids = await self._append(keys=keys, args=args)
        return [StreamId.parse(i) if i else None for i in ids]

    async def history(self, order_id: str) -> list[AnyEvent]:
        """Every event of one order still indexed in Redis, oldest first. Reads made at the
        same moment share one pipeline."""
        [history] = await self._histories([order_id])
        return history

    async def histories(self, order_ids: Sequence[str]) -> list[list[AnyEvent]]:
        """``history`` of many orders in one round trip."""
        return await self._histories(order_ids)

    async def _read_histories(self, order_ids: list[str]) -> list[list[AnyEvent]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for order_id in order_ids:
                pipe.hgetall(self.order_key(order_id))
            replies = await pipe.execute()
        return [_history(raw) for raw in replies]

    async def recorded(self, order_ids: Sequence[str]) -> None:
        """These finished orders are in PostgreSQL: their index may expire now, and a late
        subscriber then reads the history from there, complete."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for order_id in order_ids:
                pipe.expire(self.order_key(order_id), self.settings.finished_order_ttl_s)
            await pipe.execute()

    async def last_id(self) -> StreamId:
        info = await self.redis.xinfo_stream(self.stream)
        return StreamId.parse(info["last-generated-id"])

    async def backlog(self) -> dict[str, int]:
        """Per consumer group: entries delivered and not yet acknowledged, plus entries not
        yet read."""
        counts: dict[str, int] = {}
        for stream in [self.stream, *(self.queue_key(name) for name in sorted(QUEUED_GROUPS))]:
            try:
                groups: Any = await self.redis.xinfo_groups(stream)
            except ResponseError:  # no such stream yet
                continue
            for group in groups:
                name = group["name"].decode()
                counts[name] = int(group["pending"]) + int(group.get("lag") or 0)
        return counts

    @property
    def dead_letters(self) -> str:
        return f"{self.settings.namespace}:dead"

    async def dead_letter(self, group: ConsumerGroup, entry: Entry, reason: str) -> None:
        """Park an entry no consumer could finish, with the reason, and end its order
        ``failed`` with that reason; then the entry is acknowledged."""
        event = entry.event
        await self.redis.xadd(self.dead_letters, {
            "group": group.name, "id": str(entry.id), "order": event.order_id,
            "type": event.type, "reason": reason, "data": encode(event),
        })
        history = await self.history(event.order_id)
        if not any(e.is_terminal for e in history):
            last = max((e.seq for e in history), default=event.seq)
            await self.append([Failed(order_id=event.order_id, seq=last + 1,
                                      reason="dead_lettered", error=reason, attempts=0)])
        await group.ack([entry.id])

    async def trim(self, retention_s: float) -> StreamId | None:
        """Trim the log of entries older than ``retention_s`` that every consumer group is
        done with: never past a group's oldest pending entry, nor past what it has not read
        yet. (PostgreSQL keeps the whole log.) Queues are trimmed right behind their groups.
        Returns the id the log was trimmed up to, if any."""
        for name in QUEUED_GROUPS:
            await self._trim_stream(self.queue_key(name), 0)
        return await self._trim_stream(self.stream, retention_s)

    async def _trim_stream(self, stream: str, retention_s: float) -> StreamId | None:
        try:
            groups: Any = await self.redis.xinfo_groups(stream)
        except ResponseError:  # no such stream yet
            return None
        if not groups:
            return None
        bounds = [StreamId(int((time.time() - retention_s) * 1000), 0)]
        for group in groups:
            bounds.append(StreamId.parse(group["last-delivered-id"]))
            if group["pending"]:
                summary: Any = await self.redis.xpending(stream, group["name"])
                # Acknowledged in between, maybe: then nothing pending holds trimming back.
                if summary["min"] is not None:
                    bounds.append(StreamId.parse(summary["min"]))
        bound = min(bounds)
        if bound > StreamId(0, 0):
            # No LIMIT: by default an approximate trim evicts at most 10,000 entries per call,
            # less than a busy stream gains between two trims.
            await self.redis.xtrim(stream, minid=str(bound), approximate=True, limit=0)
            return bound
        return None

    async def tail(self, after: StreamId, count: int) -> list[Entry]:
        """Entries after ``after`` for every reader alike (no group), blocking a while."""
        return [Entry(i, decode(data)) for i, _, data in await self.tail_raw(after, count)]

    async def tail_raw(self, after: StreamId, count: int) -> list[tuple[StreamId, str, bytes]]:
        """As ``tail``, undecoded: (id, order id, event JSON), for readers that decode only
        what they need."""
        reply: Any = await self.blocking.xread(
            {self.stream: str(after)}, count=count, block=self.settings.block_ms
        )
        if not reply:
            return []
        return [(StreamId.parse(i), f[b"o"].decode(), f[b"d"]) for i, f in reply[0][1]]


_NOT_EVENTS = frozenset({b"st", b"end"})


def _history(raw: Mapping[Any, bytes | str]) -> list[AnyEvent]:
    events = (decode(data) for key, data in raw.items() if key not in _NOT_EVENTS)
    return sorted(events, key=lambda e: e.seq)


class ConsumerGroup:
    """One consumer group on one stream: what a worker reads, claims and acknowledges."""

    def __init__(self, store: EventStore, stream: str, name: str) -> None:
        self.store, self.stream, self.name = store, stream, name
        self.redis = store.redis
        self._acks = Batcher(self._ack_all)

    async def ensure(self) -> None:
        # From the start of the stream: a group created after orders were accepted still
        # handles them, and idempotent appends make any re-handling harmless.
        try:
            await self.redis.xgroup_create(self.stream, self.name, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read(
        self, consumer: str, count: int, *, pending: StreamId | None = None
    ) -> list[Entry]:
        """New entries for this consumer, or with ``pending`` its own unacknowledged
        entries after that id (those are redeliveries)."""
        start = ">" if pending is None else str(pending)
        block = None if pending is not None else self.store.settings.block_ms
        reply: Any = await self.store.blocking.xreadgroup(
            self.name, consumer, {self.stream: start}, count=count, block=block
        )
        if not reply:
            return []
        _, raw = reply[0]
        return parse_entries([r for r in raw if r[1]])

    async def claim_idle(self, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
        """Take over entries that another consumer left unacknowledged for too long."""
        reply: Any = await self.redis.xautoclaim(
            self.stream, self.name, consumer, min_idle_time=min_idle_ms, start_id="0-0",
            count=count,
        )
        return parse_entries([r for r in reply[1] if r[1]])

    async def touch(self, consumer: str, ids: Sequence[StreamId]) -> None:
        """Reset the idle time of entries this consumer is still working on, so no other
        consumer takes them over while it is alive."""
        for start in range(0, len(ids), 500):
            chunk: list[Any] = [str(i) for i in ids[start : start + 500]]
            await self.redis.xclaim(self.stream, self.name, consumer, 0, chunk, justid=True)

    async def deliveries(self, ids: Sequence[StreamId]) -> dict[StreamId, int]:
        """How often each pending entry has been delivered."""
        if not ids:
            return {}
        rows: Any = await self.redis.xpending_range(
            self.stream, self.name, min=str(min(ids)), max=str(max(ids)),
            count=len(ids) * 4 + 100,
        )
        wanted = set(ids)
        counts = {StreamId.parse(r["message_id"]): int(r["times_delivered"]) for r in rows}
        return {i: n for i, n in counts.items() if i in wanted}

    async def ack(self, ids: Sequence[StreamId]) -> None:
        await self._acks(ids)

    async def _ack_all(self, ids: list[StreamId]) -> list[None]:
        await self.redis.xack(self.stream, self.name, *(str(i) for i in ids))
        return [None] * len(ids)
