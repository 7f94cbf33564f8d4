"""The simulated market: which pools exist, and their state at any moment.

Every process computes the same state for the same moment from the seed alone, so the
router that quotes and the executor that re-checks at submit time see one market without
sharing anything. Token prices drift on a seeded path (a sum of slow sines with random
amplitudes, periods and phases: smooth, bounded, reproducible), and on every pair the two
venues sit 2-5% apart, the cheaper one changing now and then. The state moves in ticks, so a
quote and an execution a tick or more later can see different prices.

The market is the seed plus its launches: a pool launched on the market's stream
(``shared.launches``) is added here with ``launch``, in every process that learns of it, and
from then on is quoted like the seed's. A launched pool prices its token at the launch price
in its quote token, on its one venue, and follows the quote token's drift.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import lru_cache

import msgspec

from shared.config import Settings
from shared.pools import CpmmPool, Pool
from shared.pools.meteora import make_pool
from shared.route import Dex, Share
from shared.tokens import get

# (venue, base, quote, depth in USD per side)
POOLS: tuple[tuple[Dex, str, str, float], ...] = (
    ("raydium", "SOL", "USDC", 20_000_000),
    ("meteora", "SOL", "USDC", 12_000_000),
    ("raydium", "SOL", "USDT", 6_000_000),
    ("meteora", "SOL", "USDT", 4_000_000),
    ("raydium", "USDC", "USDT", 10_000_000),
    ("meteora", "USDC", "USDT", 8_000_000),
    ("raydium", "BONK", "SOL", 3_000_000),
    ("meteora", "BONK", "SOL", 2_000_000),
    ("raydium", "JUP", "USDC", 4_000_000),
    ("meteora", "JUP", "SOL", 2_500_000),
    ("raydium", "RAY", "SOL", 3_000_000),
    ("raydium", "RAY", "USDC", 1_500_000),
)
SPREAD = (0.02, 0.05)
STABLE = frozenset({"USDC", "USDT"})
METEORA_BIN_STEP = 10  # bps between bins
METEORA_BINS_EACH_SIDE = 80


class PoolKey(msgspec.Struct, frozen=True, order=True):
    dex: Dex
    base: str
    quote: str

    def __str__(self) -> str:
        return f"{self.dex} {self.base}/{self.quote}"


KEYS: tuple[PoolKey, ...] = tuple(PoolKey(d, b, q) for d, b, q, _ in POOLS)
_DEPTH = {PoolKey(d, b, q): depth for d, b, q, depth in POOLS}


class LaunchedPool(msgspec.Struct, frozen=True):
    """A pool a launch added: its token's price in quote tokens, and the quote tokens on
    each side, both in decimal units."""

    key: PoolKey
    price: float
    liquidity: float


_LAUNCHED: dict[PoolKey, LaunchedPool] = {}


def launch(pool: LaunchedPool) -> None:
    """Add a launched pool to this process's market (once; a second launch of the same
    pool changes nothing)."""
    _LAUNCHED.setdefault(pool.key, pool)


def keys() -> tuple[PoolKey, ...]:
    """Every pool: the seed's, then the launched ones."""
    return (*KEYS, *_LAUNCHED)


def launched(key: PoolKey) -> LaunchedPool | None:
    return _LAUNCHED.get(key)


def launched_pool_of(token: str) -> PoolKey | None:
    """The pool a launched token (by symbol) was launched in; None for the seed's."""
    return next((key for key in _LAUNCHED if key.base == token), None)


@lru_cache(maxsize=256)
def _terms(seed: str, name: str) -> tuple[tuple[float, float, float], ...]:
    draw = random.Random(f"{seed}/{name}")
    return tuple(
        (draw.uniform(0.3, 1.0), draw.uniform(60.0, 3600.0), draw.uniform(0, 2 * math.pi))
        for _ in range(4)
    )


def wave(seed: str, name: str, t: float) -> float:
    """A smooth seeded path in [-1, 1]."""
    terms = _terms(seed, name)
    total = sum(a * math.sin(2 * math.pi * t / period + phase) for a, period, phase in terms)
    return total / sum(a for a, _, _ in terms)


class Market:
    def __init__(self, seed: str, drift: float, tick_ms: float) -> None:
        # Without OEE_SEED every process must still agree on one market.
        self.seed = seed or "market"
        self.drift = drift
        self.tick_s = tick_ms / 1000
        self._tick = -1.0
        self._pools: dict[PoolKey, Pool] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Market:
        return cls(settings.seed, settings.price_drift, settings.market_tick_ms)

    def tick(self, at: float) -> float:
        return math.floor(at / self.tick_s) * self.tick_s if self.tick_s > 0 else at

    def usd(self, token: str, at: float) -> float:
        for pool in _LAUNCHED.values():
            if pool.key.base == token:
                return pool.price * self.usd(pool.key.quote, at)
        amplitude = self.drift / 30 if token in STABLE else self.drift
        return get(token).usd * (1 + amplitude * wave(self.seed, token, at))

    def venue_factor(self, key: PoolKey, at: float) -> float:
        """Each venue's price on a pair, relative to the mid: the two are 2-5% apart."""
        pair = f"{key.base}/{key.quote}"
        spread = SPREAD[0] + (SPREAD[1] - SPREAD[0]) * (wave(self.seed, pair + "/s", at) + 1) / 2
        cheaper = 1 if wave(self.seed, pair + "/side", at) >= 0 else -1
        sign = cheaper if key.dex == "raydium" else -cheaper
        return 1 + sign * spread / 2

    def pool(self, key: PoolKey, at: float) -> Pool:
        moment = self.tick(at)
        if moment != self._tick:
            self._tick, self._pools = moment, {}
        if key not in self._pools:
            self._pools[key] = self._build(key, moment)
        return self._pools[key]

    def _build(self, key: PoolKey, at: float) -> Pool:
        base, quote = get(key.base), get(key.quote)
        fresh = _LAUNCHED.get(key)
        if fresh is not None:
            # Exactly the launch price on its one venue: no spread to another venue.
            quote_reserve = int(fresh.liquidity * quote.unit)
            base_reserve = int(fresh.liquidity / fresh.price * base.unit)
            if key.dex == "raydium":
                return CpmmPool(key.base, key.quote, base_reserve, quote_reserve)
            return make_pool(key.base, key.quote, quote_reserve / base_reserve,
                             METEORA_BIN_STEP, base_reserve, quote_reserve,
                             METEORA_BINS_EACH_SIDE)
        base_usd, quote_usd = self.usd(key.base, at), self.usd(key.quote, at)
        # Quote base units per base base unit, at this venue.
        price = base_usd / quote_usd * self.venue_factor(key, at) * quote.unit / base.unit
        side_usd = _DEPTH[key] / 2
        base_reserve = int(side_usd / base_usd * base.unit)
        if key.dex == "raydium":
            return CpmmPool(key.base, key.quote, base_reserve, int(base_reserve * price))
        return make_pool(key.base, key.quote, price, METEORA_BIN_STEP, base_reserve,
                         int(base_reserve * price), METEORA_BINS_EACH_SIDE)

    def pools_between(self, token_a: str, token_b: str) -> list[PoolKey]:
        pair = {token_a, token_b}
        return [k for k in keys() if {k.base, k.quote} == pair]

    def pool_at(self, at: float) -> Callable[[Share], Pool]:
        """The pool a route's share trades against, at this moment."""
        return lambda share: self.pool(PoolKey(share.dex, share.base, share.quote), at)
