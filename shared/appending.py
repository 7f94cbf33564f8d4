"""Appending: one Lua script writes an event to its partition's log, to its order's index
(a hash of ``seq -> event``) and to the queue of the service it hands the order to, so an
event is in the log if and only if it is in its order's hash. A queue entry also carries the
order's events before it (field ``h``, a JSON array), so the service that takes the order
over decides without reading the hash back. That gives two things cheaply:

* appends are idempotent: a second event with the same (order, seq) is dropped, whichever
  service instance produced it, so a redelivered cause can never fork an order's story;
* a subscriber can read an order's whole history with one HGETALL, consistent with the
  stream position it starts tailing from.

The hash also keeps the order's lifecycle state (under ``st``), and the script refuses an
event that the state does not allow (``shared.lifecycle``): once a terminal event is in,
nothing more is appended to that order, so an order reaches exactly one terminal state
however many services race, and no service can write a step out of turn.

The script takes nothing about an event on the caller's word but where it goes: its type
is the tag that leads its JSON, its move is its type (the JSON is decoded only for the
three types whose move depends on a field), and the state it lands on and the queue it goes
to follow from the move, by tables generated from ``shared.lifecycle``. Checking costs a
hash read and write inside the script that appends anyway, not a round trip per event.

Appends made at the same moment by concurrent tasks (the executor's orders, the gateway's
requests) share one round trip: one script call per partition, all sent at once. Each
caller still gets its own answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, get_args

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception,
    stop_after_attempt,
)

from shared import lifecycle
from shared.batching import Batcher
from shared.config import Settings
from shared.events import Event, encode
from shared.positions import StreamId
from shared.queues import QUEUES
from shared.redis_client import connect
from shared.scripts import Call, run_all, run_each
from shared.store_base import StoreBase

# An order keeps its index this long at most, in case it never finishes or PostgreSQL never
# gets it; once the persister has recorded its end, ``finished_order_ttl_s``.
OPEN_ORDER_TTL_S = 7 * 24 * 3600

# How long an append waits for replicas at most (then it returns, as WAIT does).
_WAIT_TIMEOUT_MS = 1000

# Events per script call: one call blocks Redis while it runs, so a burst is cut in pieces.
_APPEND_CHUNK = 500

# Arguments per event after the first (the index TTL): seq, order id, JSON.
_ARGS_PER_EVENT = 3

# A queue entry carries the order's earlier events up to this many; an order with a longer
# story (retries upon retries) is read from its hash instead.
STORY_MAX = 64

# Two Lua functions, the script's reading of an event. type_of: the type tag, which leads
# the JSON (msgspec writes the tag first). move_of: what the event does in its order's
# lifecycle, as ``Event.move`` says in Python. The JSON is decoded only where the type alone
# does not say: a waiting order (``OrderRequested.move``), a sniper fired with its route
# (``Triggered.move``), a failed attempt (``lifecycle.attempt_move``). A field the JSON
# lacks reads as its default, as decoding the event would read it; JSON that does not
# decode has no move, so it is refused.
MOVE_OF = """
local attempt = __ATTEMPT__

local function move_of(kind, data)
  if kind == 'OrderRequested' then
    local ok, event = pcall(cjson.decode, data)
    if not ok then return nil end
    local order_type = event['orderType']
    if order_type == nil or order_type == 'market' then return kind end
    return 'OrderRequested:waiting'
  elseif kind == 'Triggered' then
    local ok, event = pcall(cjson.decode, data)
    if not ok then return nil end
    if event['fill'] == nil then return kind end
    return 'Triggered:routed'
  elseif kind == 'AttemptFailed' then
    local ok, event = pcall(cjson.decode, data)
    if not ok then return nil end
    return attempt[tostring(event['kind'] or 'transient') .. '|' .. tostring(event['retryable'])]
  end
  return kind
end

local function type_of(data)
  return string.match(data, '^{"type":"(%w+)"')
end
"""

# append(KEYS, ARGV), a Lua function, so that another script can append as this one does
# (the gateway's admission). KEYS: the partition's log, then its queues in QUEUES order,
# then each event's order hash. ARGV: the index TTL, then per event its seq, its order id
# and its JSON. Answers each event's stream id; false where it was refused; '0-0' where the
# same event is in already (a repeated call whose first reply was lost): it is in.
APPEND_FUNCTION = MOVE_OF + """
-- The fields one read takes of an order's hash: its state and whatever it holds at seq,
-- then, for an event that hands the order over, its events before seq, which the queue
-- entry carries so that the service it hands the order to need not read the hash back.
local function fields_of(seq, handing_over)
  local fields = {'st', seq}
  local n = tonumber(seq)
  if handing_over and n and n >= 2 and n <= __STORY_MAX__ then
    for before = 1, n - 1 do fields[before + 2] = before end
  end
  return fields
end

-- The events before seq as one JSON array, from that read; nil for a first event, or
-- where the hash lacks one of them (the queue entry goes without, and its reader reads
-- the hash).
local function story_of(held)
  if #held < 3 then return nil end
  for n = 3, #held do
    if not held[n] then return nil end
  end
  return '[' .. table.concat(held, ',', 3) .. ']'
end

local allowed = __ALLOWED__
local target = __TARGET__
local queue = __QUEUE__

local function append(KEYS, ARGV)
  local ids = {}
  local first = 2 + __QUEUES__
  for i = first, #KEYS do
    local a = (i - first) * __ARGS_PER_EVENT__ + 2
    local seq, order, data = ARGV[a], ARGV[a + 1], ARGV[a + 2]
    local kind = type_of(data)
    local move = kind and move_of(kind, data)
    local q = move and queue[move]
    local held = redis.call('HMGET', KEYS[i], unpack(fields_of(seq, q)))
    if held[2] then
      ids[#ids + 1] = held[2] == data and '0-0'
    elseif move and allowed[(held[1] or '') .. '|' .. move] then
      ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'o', order, 's', seq, 't', kind, 'd', data)
      if q then
        local before = story_of(held)
        if before then
          redis.call('XADD', KEYS[q], '*', 'o', order, 's', seq, 't', kind, 'd', data,
                     'h', before)
        else
          redis.call('XADD', KEYS[q], '*', 'o', order, 's', seq, 't', kind, 'd', data)
        end
      end
      redis.call('HSET', KEYS[i], seq, data, 'st', target[move])
      if seq == '1' then
        redis.call('EXPIRE', KEYS[i], ARGV[1])
      end
    else
      ids[#ids + 1] = false
    end
  end
  return ids
end
"""


def _lua_table(entries: Mapping[str, str | int | bool]) -> str:
    # JSON writes these values (and the keys' strings) as Lua literals.
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in entries.items()) + "}"


def _moves() -> list[str]:
    return sorted({pair.partition("|")[2] for pair in lifecycle.lua_allowed()})


def lua_tables() -> dict[str, str]:
    """The script's tables, each generated from the lifecycle: the allowed (state, move)
    pairs (``|move`` for a new order), each move's target state, the KEYS index of the
    queue each handing-over move goes to, and each failed attempt's move by its kind and
    whether it may be retried."""
    return {
        "__ALLOWED__": _lua_table(dict.fromkeys(lifecycle.lua_allowed(), True)),
        "__TARGET__": _lua_table({move: lifecycle.target(move) for move in _moves()}),
        "__QUEUE__": _lua_table({move: 2 + QUEUES.index(service)
                                 for move, service in lifecycle.HANDS_OVER.items()}),
        "__ATTEMPT__": _lua_table({
            f"{kind}|{'true' if retryable else 'false'}": lifecycle.attempt_move(kind, retryable)
            for kind in get_args(lifecycle.FailureKind) for retryable in (True, False)}),
        "__QUEUES__": str(len(QUEUES)),
        "__ARGS_PER_EVENT__": str(_ARGS_PER_EVENT),
        "__STORY_MAX__": str(STORY_MAX),
    }


def script(text: str) -> str:
    """``text`` with the tables filled in."""
    for name, value in lua_tables().items():
        text = text.replace(name, value)
    return text


APPEND_SCRIPT = script(APPEND_FUNCTION + "return append(KEYS, ARGV)")


def _order_id(event: Event) -> str:
    return event.order_id


class Appending(StoreBase):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._append = self.redis.register_script(APPEND_SCRIPT)
        self._appends = Batcher(self._append_all)
        self._node_clients: dict[str, aioredis.Redis] = {}

    async def close(self) -> None:
        for client in self._node_clients.values():
            await client.aclose()
        await super().close()

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
        pairs = [(keys, args) for _, keys, args in calls]
        if not self.cluster:
            return await self.run_appending(self._append, pairs)
        if not self.settings.redis_wait_replicas:
            return await run_each(self.redis, self._append, pairs)
        return list(await asyncio.gather(*(self._append_waiting(k, a) for k, a in pairs)))

    async def run_appending(self, script: AsyncScript, calls: Sequence[Call]) -> list[Any]:
        """Each reply of ``calls`` of a script that appends (``APPEND_FUNCTION``), on a
        single Redis: one round trip, with ``WAIT`` in it when replicas must have the
        events before they count as written."""
        wait = self.settings.redis_wait_replicas
        if not wait:
            return await run_all(self.redis, script, calls)
        # On the connection that wrote: WAIT counts that connection's writes.
        replies = await run_all(self.redis, script, calls, ("WAIT", wait, _WAIT_TIMEOUT_MS))
        return replies[: len(calls)]

    def append_call(self, event: Event) -> tuple[list[str], list[Any]]:
        """The keys and arguments of ``append`` (the script's function) for ``event``
        alone."""
        return self._append_call(self.layout.of(event.order_id), [event])

    def _append_call(self, partition: int, events: Sequence[Event]) -> tuple[list[str], list[Any]]:
        keys = [self.log_key(partition), *(self.queue_key(q, partition) for q in QUEUES)]
        args: list[Any] = [OPEN_ORDER_TTL_S]
        for event in events:
            keys.append(self.order_key(event.order_id))
            args += (event.seq, event.order_id, encode(event))
        return keys, args

    async def _append_waiting(self, keys: list[str], args: list[Any]) -> Any:
        """One append script call on a cluster, with ``redis_wait_replicas``: the call and a
        ``WAIT`` go down one connection to the slot's primary (WAIT counts the writes of its
        own connection), so the call returns once that many replicas have the events. A
        moved slot or a failover sends it again, once the client has learnt the new map;
        after five tries it is sent without waiting for replicas, where the cluster client
        finds the slot itself. (The retrying costs the call about 20 µs of CPU, beside the
        replicas' round trip it waits for.)"""
        retrying = AsyncRetrying(stop=stop_after_attempt(5), wait=_backoff,
                                 retry=retry_if_exception(_worth_another_try))
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1:
                        await self._learn_slot_of(keys[0])
                    return await self._append_on_primary(keys, args)
        except RetryError:
            pass
        return await self._append(keys=keys, args=args)

    async def _append_on_primary(self, keys: list[str], args: list[Any]) -> Any:
        cluster: Any = self.redis
        # The slot map is learnt on a first command: an append may come first.
        await cluster.initialize()
        node: Any = cluster.get_node_from_key(keys[0])
        client = self._node_clients.get(node.name)
        if client is None:
            client = connect(f"redis://{node.host}:{node.port}/0", cluster=False)
            self._node_clients[node.name] = client
        async with client.pipeline(transaction=False) as pipe:
            await self._append(keys=keys, args=args, client=pipe)
            pipe.execute_command("WAIT", self.settings.redis_wait_replicas, _WAIT_TIMEOUT_MS)
            reply, _ = await pipe.execute()
        return reply

    async def _learn_slot_of(self, key: str) -> None:
        """The cluster client follows the redirect of a command on ``key`` and learns the
        new map from it."""
        with contextlib.suppress(RedisError, RedisClusterException):
            await self.redis.exists(key)


def _worth_another_try(error: BaseException) -> bool:
    """A redirect, a failover under way, or a lost connection; any other refusal is the
    call's own. (RedisClusterException, raised while a slot has no primary, is not a
    RedisError.)"""
    if isinstance(error, ResponseError):
        return str(error).startswith(("MOVED", "ASK", "CLUSTERDOWN", "READONLY"))
    return isinstance(error, (RedisError, RedisClusterException))


def _backoff(state: RetryCallState) -> float:
    """A redirect is followed at once; anything else waits 50 ms, doubling each time."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, ResponseError):
        return 0.0
    return 0.05 * 2.0 ** (state.attempt_number - 1)
