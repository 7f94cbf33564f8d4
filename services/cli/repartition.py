"""``oee repartition N``: move a namespace to another partition count.

The partition count is recorded in Redis at first start; a service started without
``OEE_PARTITIONS`` takes it, and one started with another count refuses to run: an order's
keys would be looked for in the wrong partition. Repartitioning is done drained: with the
services stopped, no order in flight and every consumer group done with its streams (so
PostgreSQL has every event), the old partitions' streams hold nothing anyone needs. Their
dead letters are moved to the new partition of their order, the old streams are deleted,
and the new count is recorded. What is left of the old layout (finished orders' indexes and
the chain's landings) expires by itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from shared.config import Settings, load
from shared.lifecycle import TERMINAL
from shared.partitions import Layout
from shared.redis_client import connect
from shared.stream import QUEUES, EventStore


class NotDrained(Exception):
    """Something is still in flight."""


async def repartition(settings: Settings, count: int) -> str:
    """Returns what was done; raises ``NotDrained`` (nothing changed) while work is left."""
    probe = connect(settings.redis_url)
    try:
        recorded_raw: Any = await probe.get(Layout(settings.namespace, 1).count_key)
    finally:
        await probe.aclose()
    # Nothing recorded: the store records what it would have taken (OEE_PARTITIONS or the
    # count for a new namespace); nothing was written in any layout yet.
    old = EventStore(settings if recorded_raw is None
                     else msgspec.structs.replace(settings, partitions=int(recorded_raw)))
    recorded = old.layout.count
    try:
        if recorded == count:
            await old.redis.set(old.layout.count_key, count)
            return f"namespace {settings.namespace!r} already has {count} partitions"
        await _check_drained(old)
        new = Layout(settings.namespace, count)
        moved = 0
        async for fields in old.dead_letter_entries():
            order = fields.get(b"order", b"").decode()
            await old.redis.xadd(new.dead(new.of(order)), fields)  # type: ignore[arg-type]
            moved += 1
        streams = [*old.layout.logs(), *(old.queue_key(q, p) for q in QUEUES
                                          for p in old.partitions),
                   *(old.dead_letters(p) for p in old.partitions)]
        for stream in streams:
            await old.redis.delete(stream)
        await old.redis.set(old.layout.count_key, count)
    finally:
        await old.close()
    return (f"namespace {settings.namespace!r}: {recorded} -> {count} partitions; "
            f"{moved} dead letter(s) moved; start the services with OEE_PARTITIONS={count} "
            f"or without it")


async def _check_drained(store: EventStore) -> None:
    backlog = {g: n for g, n in (await store.backlog()).items() if n}
    if backlog:
        raise NotDrained(f"consumer groups still have work: {backlog}")
    open_orders = 0
    async for key in store.redis.scan_iter(match=f"{store.settings.namespace}:*:order:*",
                                           count=1000):
        state: Any = await store.redis.hget(key, "st")
        if state is not None and state.decode() not in TERMINAL:
            open_orders += 1
    if open_orders:
        raise NotDrained(f"{open_orders} order(s) in flight; let them finish first")


def main(count: int) -> int:
    settings = load()
    try:
        print(asyncio.run(repartition(settings, count)))
    except NotDrained as busy:
        print(f"oee repartition: refused, nothing changed: {busy}")
        return 1
    return 0
