"""New tokens and pools: ``PoolLaunched`` facts on the market's own stream.

A launch is a market fact, not an order's: it goes on ``{namespace}:market``, and every
process that needs the market learns the tokens and pools launched so far from there
(``Launches.catch_up``), so the market each computes is the seed plus its launches. Launches
come from ``oee launch``, ``POST /admin/pools`` and, when ``OEE_LAUNCH_EVERY_S`` is set, a
seeded schedule, which the trigger service keeps (``services.trigger.schedule``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
import redis.asyncio as aioredis

from shared import market, tokens
from shared.batching import Batcher
from shared.events import now
from shared.market import LaunchedPool, PoolKey
from shared.pools import Pool, swap
from shared.route import Dex, Share

# The tokens a launched pool may be paired with.
QUOTES = ("SOL", "USDC")


class PoolLaunched(msgspec.Struct, frozen=True, kw_only=True, tag=True, rename="camel"):
    """A token and its first pool appeared. ``price`` is quote tokens per token and
    ``liquidity`` the quote tokens on each side, both decimal text."""

    mint: str
    symbol: str
    decimals: int
    venue: Dex
    price: str
    liquidity: str
    quote: str = "SOL"
    at: datetime = msgspec.field(default_factory=now)
    v: int = 1

    @property
    def key(self) -> PoolKey:
        return PoolKey(self.venue, self.symbol, self.quote)


class BadLaunch(ValueError):
    """A launch the market cannot take, with the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class EmptyPool(BadLaunch):
    """Each field is in range, but together they leave a side of the pool empty."""


def check(launch: PoolLaunched) -> PoolLaunched:
    """The launch as the market takes it, or BadLaunch naming the field."""
    if not tokens.is_mint(launch.mint):
        raise BadLaunch("mint", "mint must be a base58 public key (32 bytes)")
    if tokens.find(launch.mint) is not None:
        raise BadLaunch("mint", f"{launch.mint} is listed already")
    if not (launch.symbol.isascii() and launch.symbol.isalnum() and 1 <= len(launch.symbol) <= 10):
        raise BadLaunch("symbol", "symbol must be 1 to 10 letters or digits")
    symbol = launch.symbol.upper()
    if tokens.find(symbol) is not None:
        raise BadLaunch("symbol", f"{symbol} is listed already")
    if not 0 <= launch.decimals <= 12:
        raise BadLaunch("decimals", "decimals must be from 0 to 12")
    if launch.quote.upper() not in QUOTES:
        raise BadLaunch("quote", "quote must be one of " + ", ".join(QUOTES))
    for field in ("price", "liquidity"):
        try:
            value = Decimal(getattr(launch, field))
        except ArithmeticError:
            raise BadLaunch(field, f"{field} must be a decimal number") from None
        if not (value.is_finite() and Decimal("1e-12") <= value <= Decimal("1e12")):
            raise BadLaunch(field, f"{field} must be from 1e-12 to 1e12")
    # As the market fills the pool (shared.market): a side without one base unit has no
    # price, and no swap could ever be quoted on it.
    liquidity, price = float(launch.liquidity), float(launch.price)
    quote_units = int(liquidity * tokens.get(launch.quote.upper()).unit)
    token_units = int(liquidity / price * 10**launch.decimals)
    if quote_units < 1 or token_units < 1:
        raise EmptyPool("liquidity", f"liquidity {launch.liquidity} at price {launch.price} "
                        "leaves the pool without one base unit of "
                        f"{launch.quote.upper() if quote_units < 1 else symbol}")
    return msgspec.structs.replace(launch, symbol=symbol, quote=launch.quote.upper())


def apply(launch: PoolLaunched) -> None:
    """Teach this process the launched token and pool."""
    quote = tokens.get(launch.quote)
    price = float(launch.price)
    tokens.learn(tokens.Token(launch.symbol, launch.mint, launch.decimals, price * quote.usd))
    market.launch(LaunchedPool(launch.key, price, float(launch.liquidity)))


def into_pool(launch: PoolLaunched, legs: Any) -> int:
    """How much of the launch's quote token a route's legs put into the launched pool."""
    return sum(leg.amount_in for leg in legs
               if leg.dex == launch.venue and leg.token_in == launch.quote
               and leg.token_out == launch.symbol)


def pushed(pool_of: Callable[[Share], Pool], key: PoolKey,
           amount: int) -> Callable[[Share], Pool]:
    """The pools as ``pool_of`` gives them, except the launched pool ``key``, which
    ``amount`` of its quote token has bought into first (snipers fired before)."""
    if amount <= 0:
        return pool_of

    def pool(share: Share) -> Pool:
        found = pool_of(share)
        if PoolKey(share.dex, share.base, share.quote) != key:
            return found
        return swap(found, key.quote, amount).pool_after

    return pool


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PoolLaunched)


class Launches:
    """The market's stream, read and appended: what this process knows was launched."""

    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self.redis = redis
        self.stream = f"{namespace}:market"
        self.last = "0-0"
        self._checked = 0.0
        # Callers at the same moment (a batch of orders for a token just launched) share
        # one read, each started after its callers asked.
        self._looks: Batcher[None, list[PoolLaunched]] = Batcher(self._look)

    async def append(self, launch: PoolLaunched) -> str:
        entry_id: Any = await self.redis.xadd(self.stream, {"d": _encoder.encode(launch)})
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def catch_up(self) -> list[PoolLaunched]:
        """Learn every launch since the last look; returns them, oldest first."""
        [learned] = await self._looks([None])
        return learned

    async def _look(self, callers: list[None]) -> list[list[PoolLaunched]]:
        learned: list[PoolLaunched] = []
        while True:
            start = "-" if self.last == "0-0" else f"({self.last}"
            raw: Any = await self.redis.xrange(self.stream, min=start, count=1000)
            if not raw:
                break
            for entry_id, fields in raw:
                launch = _decoder.decode(fields[b"d"])
                apply(launch)
                learned.append(launch)
                self.last = entry_id.decode()
        self._checked = time.monotonic()
        return [learned] * len(callers)

    async def fresh(self, max_age_s: float = 0.2) -> None:
        """Catch up unless this process looked less than ``max_age_s`` ago (or is looking
        now: the requests of a busy gateway do not all look at once)."""
        if time.monotonic() - self._checked >= max_age_s:
            self._checked = time.monotonic()
            await self.catch_up()

    async def wait(self, block_ms: int) -> list[PoolLaunched]:
        """Block until a launch arrives (or ``block_ms`` passes), then learn it."""
        raw: Any = await self.redis.xread({self.stream: self.last}, count=1000, block=block_ms)
        if not raw:
            return []
        learned = []
        for entry_id, fields in raw[0][1]:
            launch = _decoder.decode(fields[b"d"])
            apply(launch)
            learned.append(launch)
            self.last = entry_id.decode()
        return learned
