"""Seeded launches: with ``OEE_LAUNCH_EVERY_S`` set, a token launches at the start of every
interval ("slot" n: the seconds since the epoch divided by the interval).

The trigger service launches, since it is the one that fires the snipers waiting for a
launch. Each slot's launch is a function of the seed and the slot alone (symbol, mint,
decimals, venue, price, liquidity, quote token), so every instance plans the same one, and
the append is idempotent: a marker per slot and the launch go in together in one script,
so however many triggers run, exactly one launch per slot reaches the market's stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import random
import time
from typing import Any

import base58
import msgspec
import redis.asyncio as aioredis

from shared import tokens
from shared.launches import BadLaunch, Launches, PoolLaunched, check
from shared.route import Dex

log = logging.getLogger("oee.trigger")

VENUES: tuple[Dex, ...] = ("raydium", "meteora")
# Symbols: a seeded letter pair, then the slot in base 36 (unique per slot).
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789" + LETTERS

# The marker and the launch in one step: a second call for the same slot appends nothing.
_LAUNCH_ONCE = """
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) then
  return redis.call('XADD', KEYS[1], '*', 'd', ARGV[1])
end
return false
"""


def slot_of(at: float, every_s: float) -> int:
    return math.floor(at / every_s)


def planned(seed: str, slot: int) -> PoolLaunched:
    """Slot ``slot``'s launch: the same in every process for the same seed."""
    name = f"{seed or 'market'}/launch/{slot}"
    draw = random.Random(name)
    mint = base58.b58encode(hashlib.sha256(name.encode()).digest()).decode()
    symbol = draw.choice(LETTERS) + draw.choice(LETTERS) + _base36(slot)
    quote = draw.choice(("SOL", "USDC"))
    # Quote tokens per token, log-uniform over four decades; depth in quote tokens a side.
    price = 10 ** draw.uniform(-7, -3) * (150 if quote == "USDC" else 1)
    liquidity = draw.uniform(50, 5000) * (150 if quote == "USDC" else 1)
    return PoolLaunched(mint=mint, symbol=symbol[:10], decimals=draw.choice((6, 9)),
                        venue=draw.choice(VENUES), price=f"{price:.6g}",
                        liquidity=f"{liquidity:.6g}", quote=quote)


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = DIGITS[digit] + digits
        if number == 0:
            return digits


class Schedule:
    def __init__(self, redis: aioredis.Redis, namespace: str, seed: str,
                 every_s: float) -> None:
        self.launches = Launches(redis, namespace)
        self.namespace = namespace
        self.seed, self.every_s = seed, every_s
        self._once = redis.register_script(_LAUNCH_ONCE)
        # A slot is remembered while any instance could still be launching it.
        self._ttl_s = max(3600, math.ceil(every_s * 10))

    def marker(self, slot: int) -> str:
        # Under the namespace; the braces name the stream, so both share a cluster slot.
        return f"{self.namespace}:{{{self.launches.stream}}}:launched:{slot}"

    async def launch(self, slot: int) -> PoolLaunched | None:
        """Launch slot ``slot``'s token unless some instance did; the launch if this call
        appended it."""
        launch = planned(self.seed, slot)
        if tokens.find(launch.mint) is not None:
            return None  # another instance launched it, and this one has read it already
        try:
            launch = check(launch)
        except BadLaunch as refused:  # a name the market has already: the slot passes
            log.warning("scheduled launch %d refused: %s", slot, refused)
            return None
        appended: Any = await self._once(
            keys=[self.launches.stream, self.marker(slot)],
            args=[msgspec.json.encode(launch), launch.mint, self._ttl_s])
        if not appended:
            return None
        log.info("scheduled launch %d: %s (%s) on %s", slot, launch.symbol, launch.mint,
                 launch.venue)
        return launch

    async def run(self, stop: asyncio.Event) -> None:
        """At the start of every slot from now on, launch its token."""
        while not stop.is_set():
            now = time.time()
            wake = (slot_of(now, self.every_s) + 1) * self.every_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, wake - now))
            if stop.is_set():
                return
            try:
                await self.launch(slot_of(max(time.time(), wake), self.every_s))
            except Exception:
                log.exception("trigger: a scheduled launch failed; the next slot comes")
