"""Which orders the trigger services watch: a sorted set in Redis, the orders' ids scored by
when they were added.

Memory is where a trigger process watches; this is how it finds what to watch after a
start (every id, each checked against its events) and what another instance opened since
(the ids added lately). An id is added before the order's ``OrderOpened`` is appended and
removed after its end is, so the set is never missing an open order: at worst it holds one
that ended, which the next load drops.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis


class Registry:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self.redis = redis
        self.key = f"{namespace}:trigger:watching"

    async def add(self, order_ids: Sequence[str]) -> None:
        if order_ids:
            score = time.time() * 1000
            await self.redis.zadd(self.key, {order_id: score for order_id in order_ids})

    async def remove(self, order_ids: Sequence[str]) -> None:
        if order_ids:
            await self.redis.zrem(self.key, *order_ids)

    async def since(self, ms: float) -> list[str]:
        """Ids added at or after ``ms`` (epoch milliseconds); all of them from 0."""
        raw: Any = await self.redis.zrangebyscore(self.key, ms, "+inf")
        return [member.decode() for member in raw]

    async def count(self) -> int:
        return int(await self.redis.zcard(self.key))
