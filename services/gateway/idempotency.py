"""Idempotency keys (the IETF draft "The Idempotency-Key HTTP Header Field"), kept in Redis
so that every gateway, and a gateway after a restart, gives a retried request the first
request's answer instead of a second order.

A key is scoped to its account and remembers the fingerprint of the order it came with.
The first request claims it (one atomic command); while that request is in flight a retry
gets 409, and once it is answered the answer is stored for ``ttl_s`` and replayed. If the
first request fails before anything was appended, its claim is released, so the retry
runs afresh. A gateway killed mid-request leaves a claim that lapses after
``IN_FLIGHT_TTL_S``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec
import redis.asyncio as aioredis

from shared.events import OrderRequested

# Longer than any request takes (an append waits at most a few seconds for Redis).
IN_FLIGHT_TTL_S = 30
# A key is 1 to 255 printable ASCII characters.
_VALID_KEY = re.compile(r"[\x20-\x7e]{1,255}")
# A key as the Idempotency-Key header carries it: HTTP drops the spaces around a field's
# value, so a key sent there neither starts nor ends with one.
HEADER_KEY_TEXT = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"

_CLAIM = """
local stored = redis.call('HMGET', KEYS[1], 'fingerprint', 'status', 'body')
if stored[1] then
  return stored
end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return false
"""


class Answer(msgspec.Struct, frozen=True):
    status: int
    body: bytes


class Claimed(msgspec.Struct, frozen=True):
    """The key is new: this request is the first."""


class InFlight(msgspec.Struct, frozen=True):
    """The first request with this key has not been answered yet."""


class Mismatch(msgspec.Struct, frozen=True):
    """The key was used before with a different order."""


class Replay(msgspec.Struct, frozen=True):
    answer: Answer


Outcome = Claimed | InFlight | Mismatch | Replay


def is_valid_key(key: str) -> bool:
    return _VALID_KEY.fullmatch(key) is not None


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()


def order_fingerprint(order: OrderRequested) -> str:
    """What makes two submits the same order. The deadline is left out: a retry's
    ttlSeconds counts from the first request, so its expiresAt differs."""
    prices = (None if p is msgspec.UNSET else p for p in (order.limit_price, order.max_price))
    return fingerprint(order.token_in, order.token_out, order.amount_in, order.slippage,
                       order.order_type, *prices)


class IdempotencyKeys:
    def __init__(self, redis: aioredis.Redis, namespace: str, ttl_s: int) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl_s = ttl_s
        self._claim = redis.register_script(_CLAIM)

    def _key(self, account: str, key: str) -> str:
        # Hashed: a client's key may hold any printable character, and its length is its own.
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.namespace}:idem:{account}:{digest}"

    async def claim(self, account: str, key: str, order_fingerprint: str) -> Outcome:
        stored: Any = await self._claim(keys=[self._key(account, key)],
                                        args=[order_fingerprint, IN_FLIGHT_TTL_S])
        if not stored:
            return Claimed()
        seen, status, body = stored
        if seen.decode() != order_fingerprint:
            return Mismatch()
        if status is None:
            return InFlight()
        return Replay(Answer(int(status), body))

    async def answer(self, account: str, key: str, answer: Answer) -> None:
        name = self._key(account, key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(name, mapping={"status": answer.status, "body": answer.body})
            pipe.expire(name, self.ttl_s)
            await pipe.execute()

    async def release(self, account: str, key: str) -> None:
        await self.redis.delete(self._key(account, key))
