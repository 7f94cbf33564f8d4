"""The event store: a log of every event split into partitions (one Redis Stream each), a
per-order index, and a work queue per acting service and partition.

An order lives in one partition (``shared.partitions``), so its events keep their order in
one stream, and every key one append touches shares a hash slot. Beside the log, a hash per
order maps ``seq -> event``; one Lua script writes both, so an event is in the log if and
only if it is in its order's hash. That gives two things cheaply:

* appends are idempotent: a second event with the same (order, seq) is dropped, whichever
  service instance produced it, so a redelivered cause can never fork an order's story;
* a subscriber can read an order's whole history with one HGETALL, consistent with the
  stream position it starts tailing from.

The hash also keeps the order's lifecycle state, and the script refuses an event that the
state does not allow (``shared.lifecycle``): once a terminal event is in, nothing more is
appended to that order, so an order reaches exactly one terminal state however many
services race, and no service can write a step out of turn.

The same script puts an event that the router or the executor acts on in that service's
queue of the partition (``shared.queues``), so each reads only its own work.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException, RedisError, ResponseError

from shared import lifecycle
from shared.batching import Batcher
from shared.config import Settings
from shared.events import AnyEvent, Event, Failed, decode, encode
from shared.partitions import (
    Layout,
    OldLayout,
    PartitionMismatch,
    mismatch_message,
    old_layout_message,
)
from shared.positions import ORIGIN, Positions, StreamId
from shared.queues import QUEUED_GROUPS, queue_of
from shared.redis_client import connect, connect_sync, is_cluster, pipelined
from shared.scripts import run_all, run_each

__all__ = ["OPEN_ORDER_TTL_S", "ConsumerGroup", "Entry", "EventStore", "Positions", "StreamId",
           "parse_entries"]

# An order keeps its index this long at most, in case it never finishes or PostgreSQL never
# gets it; once the persister has recorded its end, ``finished_order_ttl_s``.
OPEN_ORDER_TTL_S = 7 * 24 * 3600

# The lifecycle's allowed (state, move) pairs, as a Lua set; the order's state is kept in its
# hash under 'st'. Checking here costs a hash read and write inside the script that appends
# anyway, not a round trip per event. A hash with events but no 'st' was written before the
# machine: only its end ('end') is checked, and it gets a state from its next event on.
_ALLOWED = ", ".join(f"['{pair}'] = true" for pair in lifecycle.lua_allowed())

# KEYS: the partition's log, then its queues in QUEUES order, then each event's order hash.
# ARGV: the index TTL, then per event: seq, move, target state, type, order id, JSON, and
# the number of its queue in KEYS ('0': none). An event refused because the same one is in
# already (a repeated call whose first reply was lost) answers '0-0': it is in.
_APPEND = """
local allowed = {__ALLOWED__}
local ids = {}
local first = 2 + __QUEUES__
for i = first, #KEYS do
  local a = (i - first) * 7 + 2
  local seq, move, target, kind, order, data, queue =
    ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], ARGV[a+4], ARGV[a+5], tonumber(ARGV[a+6])
  local found = redis.call('HMGET', KEYS[i], 'st', 'end', '1')
  local ok
  if found[1] then ok = allowed[found[1] .. '|' .. move]
  elseif found[2] then ok = false
  elseif found[3] then ok = true
  else ok = allowed['|' .. move] end
  if ok and redis.call('HSETNX', KEYS[i], seq, data) == 1 then
    ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'o', order, 's', seq, 't', kind, 'd', data)
    if queue > 0 then
      redis.call('XADD', KEYS[1 + queue], '*', 'o', order, 's', seq, 't', kind, 'd', data)
    end
    redis.call('HSET', KEYS[i], 'st', target)
    if seq == '1' then
      redis.call('EXPIRE', KEYS[i], ARGV[1])
    end
  elseif redis.call('HGET', KEYS[i], seq) == data then
    ids[#ids + 1] = '0-0'
  else
    ids[#ids + 1] = false
  end
end
return ids
"""

# The queues every partition has, in the order the append script's KEYS list them.
QUEUES = tuple(sorted(QUEUED_GROUPS))

# How long an append waits for replicas at most (then it returns, as WAIT does).
_WAIT_TIMEOUT_MS = 1000

# Events per script call: one call blocks Redis while it runs, so a burst is cut in pieces.
_APPEND_CHUNK = 500

# Checked once per process for each (Redis, namespace, count).
_CHECKED: set[tuple[str, str, int]] = set()


class Entry(msgspec.Struct, frozen=True):
    """An event as read from the log, with where it sits there."""

    id: StreamId
    event: AnyEvent
    partition: int = 0

    @property
    def ref(self) -> tuple[int, StreamId]:
        return (self.partition, self.id)


def parse_entries(raw: Sequence[tuple[bytes, dict[bytes, bytes]]],
                  partition: int = 0) -> list[Entry]:
    return [Entry(StreamId.parse(entry_id), decode(fields[b"d"]), partition)
            for entry_id, fields in raw]


class EventStore:
    """Appends and reads events. Commands and blocking reads use separate connections,
    so a read blocked for ``block_ms`` never trips the command socket's timeout.

    Appends made at the same moment by concurrent tasks (the executor's orders, the
    gateway's requests) share one round trip: one script call per partition, all sent at
    once. Each caller still gets its own answer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.layout = Layout(settings.namespace, settings.partitions)
        self.cluster = is_cluster(settings.redis_url)
        self.redis = connect(settings.redis_url, cluster=self.cluster)
        self.blocking = connect(settings.redis_url, cluster=self.cluster,
                                read_timeout_s=self.longest_block_ms / 1000 + 10)
        self._append = self.redis.register_script(
            _APPEND.replace("__ALLOWED__", _ALLOWED).replace("__QUEUES__", str(len(QUEUES))))
        self._appends = Batcher(self._append_all)
        self._histories = Batcher(self._read_histories)
        self._node_clients: dict[str, aioredis.Redis] = {}
        self._check_partitions_now()

    async def close(self) -> None:
        await self.redis.aclose()
        await self.blocking.aclose()
        for client in self._node_clients.values():
            await client.aclose()

    # --- layout -----------------------------------------------------------------------

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

    def group_streams(self, name: str) -> list[str]:
        """Per partition, the stream the group ``name`` reads: its own queue for the
        services that have one, the log for every other group."""
        if name in QUEUED_GROUPS:
            return [self.queue_key(name, p) for p in self.partitions]
        return [self.log_key(p) for p in self.partitions]

    def group(self, name: str) -> ConsumerGroup:
        return ConsumerGroup(self, name)

    def _check_partitions_now(self) -> None:
        """Record the partition count at first start; refuse another one. Redis away: the
        check waits for ``check_partitions``, which every service awaits at start."""
        if self._checked:
            return
        client = connect_sync(self.settings.redis_url, self.cluster)
        try:
            self._refuse_old_layout(int(client.xlen(self.layout.old_log)))
            self._compare(client.set(self.layout.count_key, self.layout.count, nx=True,
                                     get=True))
        except RedisError:
            return
        finally:
            client.close()

    async def check_partitions(self) -> None:
        """As at construction; raises ``PartitionMismatch`` for another count, and
        ``OldLayout`` while the stream from before partitions holds anything."""
        if not self._checked:
            self._refuse_old_layout(int(await self.redis.xlen(self.layout.old_log)))
            self._compare(await self.redis.set(self.layout.count_key, self.layout.count,
                                               nx=True, get=True))

    def _refuse_old_layout(self, entries: int) -> None:
        # Before the count is recorded: a refused start leaves Redis as it found it.
        if entries:
            raise OldLayout(old_layout_message(self.settings.namespace, entries))

    @property
    def _checked(self) -> bool:
        return (self.settings.redis_url, self.settings.namespace, self.layout.count) in _CHECKED

    def _compare(self, recorded: Any) -> None:
        if recorded is not None and int(recorded) != self.layout.count:
            raise PartitionMismatch(mismatch_message(int(recorded), self.layout.count,
                                                     self.settings.namespace))
        _CHECKED.add((self.settings.redis_url, self.settings.namespace, self.layout.count))

    # --- appending --------------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> list[StreamId | None]:
        """Append in order; returns each event's stream id, or None where the store dropped
        the event: it had one with that (order, seq) already, or the order's lifecycle does
        not allow it now (an order that ended allows nothing). An event found in already,
        identical (a retried call), answers ``ORIGIN``: it is in, its id unknown."""
        return await self._appends(events)

    async def _append_all(self, events: list[Event]) -> list[StreamId | None]:
        ids: list[StreamId | None] = [None] * len(events)
        calls: list[tuple[list[int], list[str], list[Any]]] = []
        for partition, indexes in self.layout.split(events, _order_id).items():
            for start in range(0, len(indexes), _APPEND_CHUNK):
                chunk = indexes[start : start + _APPEND_CHUNK]
                calls.append((chunk, *self._append_call(partition, [events[i] for i in chunk])))
        replies = await self._send(calls)
        for (chunk, _, _), reply in zip(calls, replies, strict=True):
            for index, raw in zip(chunk, reply, strict=True):
                ids[index] = StreamId.parse(raw) if raw else None
        return ids

    async def _send(self, calls: Sequence[tuple[list[int], list[str], list[Any]]]
                    ) -> list[Any]:
        """The script calls of one batch, in one round trip: a pipeline on a single Redis;
        on a cluster each call goes to its slot's node, concurrently."""
        wait = self.settings.redis_wait_replicas
        pairs = [(keys, args) for _, keys, args in calls]
        if not wait:
            return await run_each(self.redis, self._append, pairs)
        if self.cluster:
            return list(await asyncio.gather(*(self._call(k, a) for k, a in pairs)))
        # On the connection that wrote: WAIT counts that connection's writes.
        replies = await run_all(self.redis, self._append, pairs,
                                ("WAIT", wait, _WAIT_TIMEOUT_MS))
        return replies[: len(calls)]

    def _append_call(self, partition: int, events: Sequence[Event]) -> tuple[list[str], list[Any]]:
        keys = [self.log_key(partition), *(self.queue_key(q, partition) for q in QUEUES)]
        args: list[Any] = [OPEN_ORDER_TTL_S]
        for event in events:
            queue = queue_of(event)
            keys.append(self.order_key(event.order_id))
            move = event.move
            args += [event.seq, move, lifecycle.target(move), event.type, event.order_id,
                     encode(event), QUEUES.index(queue) + 1 if queue else 0]
        return keys, args

    async def _call(self, keys: list[str], args: list[Any]) -> Any:
        """One append script call on a cluster, with ``redis_wait_replicas``: the call and a
        ``WAIT`` go down one connection to the slot's primary (WAIT counts the writes of its
        own connection), so the call returns once that many replicas have the events; a
        moved slot or a failover sends it again, after the client has learnt the map."""
        wait = self.settings.redis_wait_replicas
        cluster: Any = self.redis
        for attempt in range(5):
            try:
                # The slot map is learnt on a first command: an append may come first.
                await cluster.initialize()
                node: Any = cluster.get_node_from_key(keys[0])
                client = self._node_clients.get(node.name)
                if client is None:
                    client = connect(f"redis://{node.host}:{node.port}/0", cluster=False)
                    self._node_clients[node.name] = client
                async with client.pipeline(transaction=False) as pipe:
                    await self._append(keys=keys, args=args, client=pipe)
                    pipe.execute_command("WAIT", wait, _WAIT_TIMEOUT_MS)
                    reply, _ = await pipe.execute()
                return reply
            except (RedisError, RedisClusterException) as error:
                # RedisClusterException (a slot no primary serves, mid-failover) is not a
                # RedisError.
                if isinstance(error, ResponseError) and not str(error).startswith(
                        ("MOVED", "ASK", "CLUSTERDOWN", "READONLY")):
                    raise
                if not isinstance(error, ResponseError):  # a redirect is followed at once
                    await asyncio.sleep(0.05 * 2**attempt)
                # The cluster client follows the redirect and learns the new map.
                with contextlib.suppress(RedisError, RedisClusterException):
                    await self.redis.exists(keys[0])
        return await self._append(keys=keys, args=args)

    # --- reading orders ---------------------------------------------------------------

    async def history(self, order_id: str) -> list[AnyEvent]:
        """Every event of one order still indexed in Redis, oldest first. Reads made at the
        same moment share one pipeline."""
        [history] = await self._histories([order_id])
        return history

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

    # --- reading the log --------------------------------------------------------------

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
        streams: dict[Any, Any] = {self.log_key(p): str(after[p]) for p in partitions}
        reply: Any = await self.blocking.xread(streams, count=count, block=block)
        index = {self.log_key(p): p for p in partitions}
        return [(index[_text(key)], StreamId.parse(i), f[b"o"].decode(), f[b"d"])
                for key, raw in reply or [] for i, f in raw]

    # --- groups -----------------------------------------------------------------------

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
                name = _text(group["name"])
                counts[name] = counts.get(name, 0) + int(group["pending"]) + int(
                    group.get("lag") or 0)
        return counts

    async def dead_letter(self, group: ConsumerGroup, entry: Entry, reason: str) -> None:
        """Park an entry no consumer could finish, with the reason, and end its order
        ``failed`` with that reason; then the entry is acknowledged."""
        event = entry.event
        await self.redis.xadd(self.dead_letters(self.partition_of(event.order_id)), {
            "group": group.name, "id": str(entry.id), "order": event.order_id,
            "type": event.type, "reason": reason, "data": encode(event),
        })
        history = await self.history(event.order_id)
        if not any(e.is_terminal for e in history):
            last = max((e.seq for e in history), default=event.seq)
            await self.append([Failed(order_id=event.order_id, seq=last + 1,
                                      reason="dead_lettered", error=reason, attempts=0)])
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
                start = "(" + _text(page[-1][0])

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

    # --- helpers ----------------------------------------------------------------------

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


def _order_id(event: Event) -> str:
    return event.order_id


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_NOT_EVENTS = frozenset({b"st", b"end"})


def _history(raw: Mapping[Any, bytes | str] | list[Any]) -> list[AnyEvent]:
    if isinstance(raw, list):  # a hash as RESP2 gives it: field, value, field, value...
        raw = dict(zip(raw[::2], raw[1::2], strict=True))
    events = (decode(data) for key, data in raw.items() if key not in _NOT_EVENTS)
    return sorted(events, key=lambda e: e.seq)


class ConsumerGroup:
    """One consumer group, on its stream in every partition: what a worker reads, claims
    and acknowledges. Entries are named by (partition, id)."""

    def __init__(self, store: EventStore, name: str) -> None:
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
                   ) -> list[Entry]:
        """New entries of these partitions for this consumer (up to ``count`` in all,
        spread over them), or with ``pending`` its own unacknowledged entries after those
        ids (redeliveries)."""
        per = max(1, math.ceil(count / len(partitions)))
        if self.store.cluster and len(partitions) > 1:
            # One command per partition: a command's keys must share a slot.
            parts = await asyncio.gather(*(
                self.read(consumer, per, [p], pending=pending, block_ms=block_ms)
                for p in partitions))
            return [entry for part in parts for entry in part]
        streams: dict[Any, Any]
        if pending is None:
            streams = {self.streams[p]: ">" for p in partitions}
            block: int | None = self.store.settings.block_ms if block_ms is None else block_ms
        else:
            streams = {self.streams[p]: str(pending[p]) for p in partitions}
            block = None
        reply: Any = await self.store.blocking.xreadgroup(
            self.name, consumer, streams, count=per, block=block)
        index = {s: p for p, s in enumerate(self.streams)}
        entries = []
        for key, raw in reply or []:
            entries += parse_entries([r for r in raw if r[1]], index[_text(key)])
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
        await pipelined(self.redis, [
            ("XACK", self.streams[partition], self.name, *(str(i) for i in ids))
            for partition, ids in _by_partition([e.ref for e in entries]).items()])


def _by_partition(refs: Sequence[tuple[int, StreamId]]) -> dict[int, list[StreamId]]:
    parts: dict[int, list[StreamId]] = {}
    for partition, stream_id in refs:
        parts.setdefault(partition, []).append(stream_id)
    return parts
