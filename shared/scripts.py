"""Many calls of one Lua script in one round trip.

redis-py asks Redis ``SCRIPT EXISTS`` before every pipeline that holds a script: a second
round trip per batch, and much of a busy gateway's time. Here the script is sent by its
hash alone, and loaded again only in the rare case that Redis answers it does not know it
(after a restart or ``SCRIPT FLUSH``); a refused batch ran nothing, so it is sent again.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from shared.redis_client import pipelined

Call = tuple[Sequence[Any], Sequence[Any]]  # keys, args

# Script calls one batch has in flight at once on a cluster.
CLUSTER_CALLS_AT_ONCE = 32
# The scripts each cluster client has loaded on every primary. A primary that restarts
# empty answers NOSCRIPT once, and redis-py loads the script again for that call.
_LOADED: weakref.WeakKeyDictionary[RedisCluster, set[str]] = weakref.WeakKeyDictionary()


async def run_all(redis: aioredis.Redis, script: AsyncScript, calls: Sequence[Call],
                  *after: Sequence[Any]) -> list[Any]:
    """Each call's reply, in order; ``after``: commands sent in the same pipeline after the
    calls (their replies follow)."""
    commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]
    for attempt in range(2):
        try:
            # Commands after the calls (a WAIT) count their own connection's writes.
            return await pipelined(redis, [*commands, *after], own_connection=bool(after))
        except NoScriptError:
            if attempt:
                raise
            await redis.script_load(script.script)
    raise AssertionError("unreachable")


async def run_each(redis: aioredis.Redis, script: AsyncScript,
                   calls: Sequence[Call]) -> list[Any]:
    """Each call's reply, in order: one round trip on a single Redis; on a cluster, each
    call goes to its own slot's node, concurrently."""
    if isinstance(redis, RedisCluster):
        if len(calls) == 1:
            [(keys, args)] = calls
            return [await script(keys=keys, args=args)]
        # A cluster pipeline takes no scripts. The script is loaded on every primary
        # first: calls that meet NOSCRIPT at once each load it, and a burst of them made
        # redis-py's cluster client close connections that other calls were using. And a
        # few calls at a time, so that a burst does not open a connection for each.
        if script.sha not in _LOADED.setdefault(redis, set()):
            await redis.script_load(script.script)
            _LOADED[redis].add(script.sha)
        room = asyncio.Semaphore(CLUSTER_CALLS_AT_ONCE)

        async def call(keys: Sequence[Any], args: Sequence[Any]) -> Any:
            async with room:
                return await script(keys=keys, args=args)

        return list(await asyncio.gather(*(call(keys, args) for keys, args in calls)))
    return await run_all(redis, script, calls)
