"""shared/market.py: which pools exist, and their state at any moment, from the seed alone."""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from shared.config import Settings
from shared.market import (
    KEYS,
    METEORA_BIN_STEP,
    POOLS,
    SPREAD,
    STABLE,
    Market,
    PoolKey,
    wave,
)
from shared.pools import CpmmPool, DlmmPool, spot_price
from shared.route import Share
from shared.tokens import TOKENS, get

SEED = "unit-tests"
DRIFT = 0.03
TICK_MS = 1_000.0
T0 = 1_700_000_000.0  # a fixed moment (2023-11-14), on a tick boundary
DAY = 86_400.0
# 300 moments spread over a day, off the tick boundaries.
MOMENTS = [T0 + i * DAY / 300 + 0.37 for i in range(300)]

PAIRS: dict[tuple[str, str], list[PoolKey]] = {}
for _key in KEYS:
    PAIRS.setdefault((_key.base, _key.quote), []).append(_key)
BOTH_VENUES = {pair: keys for pair, keys in PAIRS.items() if len(keys) == 2}

# A Meteora pool's price is its active bin's, the bin nearest the venue's price: off by at most
# half a bin step.
HALF_BIN = (1 + METEORA_BIN_STEP / 10_000) ** 0.5 - 1
# Raydium's reserves are whole base units, millions of them at the least: off by far less.
ROUNDING = HALF_BIN + 1e-6


def market(seed: str = SEED, drift: float = DRIFT, tick_ms: float = TICK_MS) -> Market:
    return Market(seed, drift, tick_ms)


def snapshot(m: Market, at: float) -> dict[str, bytes]:
    return {str(key): msgspec.json.encode(m.pool(key, at)) for key in KEYS}


def digest(m: Market, at: float) -> str:
    text = b"".join(msgspec.json.encode(m.pool(key, at)) for key in KEYS)
    return hashlib.sha256(text).hexdigest()


# --- which pools exist ---------------------------------------------------------------------


def test_keys_follow_the_pool_table() -> None:
    assert [(k.dex, k.base, k.quote) for k in KEYS] == [(d, b, q) for d, b, q, _ in POOLS]
    assert len(set(KEYS)) == len(KEYS)
    for key in KEYS:
        assert key.dex in ("raydium", "meteora")
        assert key.base != key.quote
        get(key.base), get(key.quote)  # known tokens


def test_every_token_is_traded() -> None:
    traded = {token for key in KEYS for token in (key.base, key.quote)}
    assert traded == {t.symbol for t in TOKENS}


def test_pairs_with_both_venues() -> None:
    assert set(BOTH_VENUES) == {("SOL", "USDC"), ("SOL", "USDT"), ("USDC", "USDT"),
                                ("BONK", "SOL")}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("SOL", "USDC", ["raydium SOL/USDC", "meteora SOL/USDC"]),
        ("USDC", "SOL", ["raydium SOL/USDC", "meteora SOL/USDC"]),
        ("SOL", "BONK", ["raydium BONK/SOL", "meteora BONK/SOL"]),
        ("JUP", "SOL", ["meteora JUP/SOL"]),
        ("USDC", "JUP", ["raydium JUP/USDC"]),
        ("RAY", "SOL", ["raydium RAY/SOL"]),
        ("BONK", "RAY", []),
        ("JUP", "USDT", []),
        ("SOL", "SOL", []),
    ],
)
def test_pools_between(a: str, b: str, expected: list[str]) -> None:
    assert [str(k) for k in market().pools_between(a, b)] == expected


def test_venue_sets_the_pool_kind() -> None:
    m = market()
    for key in KEYS:
        pool = m.pool(key, T0)
        assert isinstance(pool, CpmmPool if key.dex == "raydium" else DlmmPool), key
        assert (pool.base, pool.quote) == (key.base, key.quote)


def test_meteora_pools_use_ten_bps_bins() -> None:
    m = market()
    for key in KEYS:
        pool = m.pool(key, T0)
        if isinstance(pool, DlmmPool):
            assert pool.bin_step == METEORA_BIN_STEP == 10
            assert any(b.id == pool.active_id for b in pool.bins)


def test_each_pool_holds_half_its_depth_in_base_token() -> None:
    m = market()
    depth = {PoolKey(d, b, q): usd for d, b, q, usd in POOLS}
    for at in MOMENTS[::30]:
        for key in KEYS:
            pool = m.pool(key, at)
            if isinstance(pool, CpmmPool):
                base_units = pool.base_reserve
            else:
                base_units = sum(b.base for b in pool.bins)
            # The pools of a moment are those of its tick's start.
            worth = base_units / get(key.base).unit * m.usd(key.base, m.tick(at))
            assert worth == pytest.approx(depth[key] / 2, rel=1e-6), key


def test_pool_at_gives_the_pool_of_a_share() -> None:
    m = market()
    pool_of = m.pool_at(T0 + 5.5)
    for key in KEYS:
        assert pool_of(Share(key.dex, key.base, key.quote, 10_000)) == m.pool(key, T0 + 5.5)
        assert pool_of(Share(key.dex, key.base, key.quote, 1)) == m.pool(key, T0 + 5)


def test_from_settings() -> None:
    m = Market.from_settings(Settings(seed="abc", price_drift=0.01, market_tick_ms=250))
    assert (m.seed, m.drift, m.tick_s) == ("abc", 0.01, 0.25)
    assert snapshot(m, T0) == snapshot(Market("abc", 0.01, 250), T0)
    assert Market.from_settings(Settings()).seed == Market("", 0.03, 1_000).seed


# --- determinism and ticks -----------------------------------------------------------------


def test_same_seed_same_pools() -> None:
    for at in (T0, T0 + 0.5, T0 + 3_600.25, T0 + DAY):
        assert snapshot(market(), at) == snapshot(market(), at)


def test_other_seed_other_pools() -> None:
    assert snapshot(market("a"), T0) != snapshot(market("b"), T0)


def test_within_a_tick_the_pools_are_equal() -> None:
    start = T0 + 42
    a, b = market(), market()  # separate instances: nothing cached in common
    for key in KEYS:
        assert a.pool(key, start) == b.pool(key, start + 0.999)
    # With a longer tick: the whole minute is one market.
    minute = market(tick_ms=60_000)
    start = minute.tick(T0)
    assert start <= T0 < start + 60
    assert snapshot(minute, start) == snapshot(market(tick_ms=60_000), start + 59.9)
    assert snapshot(minute, start) != snapshot(market(tick_ms=60_000), start + 60)


def test_a_tick_later_the_pools_may_differ() -> None:
    m = market()
    snapshots = [snapshot(m, T0 + i) for i in range(10)]
    # Prices drift on every tick: consecutive ticks differ.
    for before, after in itertools.pairwise(snapshots):
        assert before != after
    key = str(KEYS[0])
    assert len({s[key] for s in snapshots}) == 10


def test_without_ticks_every_moment_is_its_own() -> None:
    m = market(tick_ms=0)
    assert m.tick(T0 + 0.123) == T0 + 0.123
    assert snapshot(m, T0) != snapshot(m, T0 + 0.5)


def test_tick_floors_to_its_start() -> None:
    m = market(tick_ms=250)
    assert m.tick(T0 + 0.3) == T0 + 0.25
    assert m.tick(T0 + 0.25) == T0 + 0.25
    assert m.tick(T0 + 0.2499) == T0


def test_the_cache_never_leaks_across_ticks() -> None:
    m = market()
    key = KEYS[1]
    first = m.pool(key, T0)
    later = m.pool(key, T0 + 7)
    assert m.pool(key, T0) == first == market().pool(key, T0)
    assert later == market().pool(key, T0 + 7)


def test_no_seed_still_gives_one_market() -> None:
    assert snapshot(market(""), T0) == snapshot(market(""), T0)
    assert snapshot(market(""), T0 + 2) == snapshot(market(""), T0 + 2)


_CHILD = """
import hashlib, sys
import msgspec
from shared.market import KEYS, Market
for seed in sys.argv[1:]:
    m = Market(seed, {drift}, {tick})
    text = b"".join(msgspec.json.encode(m.pool(k, {at!r})) for k in KEYS)
    print(hashlib.sha256(text).hexdigest())
"""


def test_processes_agree_on_the_market() -> None:
    """Another interpreter, with another hash seed, computes the same pools: the router and
    the executor share nothing but the seed. Without a seed too."""
    at = T0 + 123.4
    seeds = [SEED, ""]
    code = _CHILD.format(drift=DRIFT, tick=TICK_MS, at=at)
    root = Path(__file__).resolve().parents[2]
    env = os.environ | {"PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    child = subprocess.run(
        [sys.executable, "-c", code, *seeds],
        capture_output=True, text=True, check=True, env=env, cwd=root, timeout=60,
    )
    assert child.stdout.split() == [digest(market(seed), at) for seed in seeds]


# --- prices --------------------------------------------------------------------------------


def test_wave_is_bounded_and_seeded() -> None:
    values = [wave(SEED, "SOL", at) for at in MOMENTS]
    assert all(-1 <= v <= 1 for v in values)
    assert max(values) - min(values) > 0.5  # it moves over a day
    assert values == [wave(SEED, "SOL", at) for at in MOMENTS]
    assert values != [wave("other", "SOL", at) for at in MOMENTS]


@pytest.mark.parametrize("token", [t.symbol for t in TOKENS])
def test_usd_stays_within_drift_of_the_reference(token: str) -> None:
    m = market()
    reference = get(token).usd
    bound = DRIFT / 30 if token in STABLE else DRIFT
    moves = [m.usd(token, at) / reference - 1 for at in MOMENTS]
    assert all(abs(move) <= bound * (1 + 1e-12) for move in moves), max(map(abs, moves))
    # ... and does drift, over a day.
    assert max(moves) - min(moves) > bound / 10


def test_no_drift_keeps_the_reference() -> None:
    m = market(drift=0)
    for token in TOKENS:
        assert m.usd(token.symbol, T0 + 99) == token.usd


@pytest.mark.parametrize("pair", list(BOTH_VENUES), ids="/".join)
def test_venues_differ_by_two_to_five_percent(pair: tuple[str, str]) -> None:
    """|raydium / meteora - 1| over 300 moments of a day. The venues sit at mid x (1 ± s/2)
    with s in [2%, 5%], so measured against one venue rather than the mid the ratio is off
    by up to s^2 / (2 - s), and Meteora's bin by up to half a bin more."""
    m = market()
    raydium, meteora = BOTH_VENUES[pair]
    low, high = SPREAD
    asymmetry = high**2 / (2 - high)
    eps = asymmetry + ROUNDING
    assert eps <= 0.002
    moments = MOMENTS if pair != ("BONK", "SOL") else MOMENTS[::3]  # its pools cost ~10 ms
    ratios, spreads = [], []
    for at in moments:
        r = spot_price(m.pool(raydium, at), pair[0])
        t = spot_price(m.pool(meteora, at), pair[0])
        ratios.append(abs(r / t - 1))
        # Against the mid the spread is exactly s, up to rounding.
        spreads.append(abs(r - t) / ((r + t) / 2))
    assert low - eps <= min(ratios) and max(ratios) <= high + eps, (min(ratios), max(ratios))
    assert low - ROUNDING <= min(spreads) and max(spreads) <= high + ROUNDING
    # The spread moves within its band over the day.
    assert max(spreads) - min(spreads) > 0.01


@pytest.mark.parametrize("pair", list(BOTH_VENUES), ids="/".join)
def test_either_venue_can_be_cheaper(pair: tuple[str, str]) -> None:
    m = market()
    raydium, meteora = BOTH_VENUES[pair]
    richer = {
        "raydium" if m.venue_factor(raydium, at) > m.venue_factor(meteora, at) else "meteora"
        for at in MOMENTS
    }
    assert richer == {"raydium", "meteora"}


def test_venue_factors_mirror_each_other() -> None:
    m = market()
    for raydium, meteora in BOTH_VENUES.values():
        for at in MOMENTS[::10]:
            a, b = m.venue_factor(raydium, at), m.venue_factor(meteora, at)
            assert a + b == pytest.approx(2)
            assert SPREAD[0] - 1e-12 <= abs(a - b) <= SPREAD[1] + 1e-12


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_spot_price_is_the_venue_price(key: PoolKey) -> None:
    """Each pool's spot price is mid x venue factor, in base units, up to rounding."""
    m = market()
    base, quote = get(key.base), get(key.quote)
    for at in MOMENTS[::60]:
        tick = m.tick(at)
        mid = m.usd(key.base, tick) / m.usd(key.quote, tick) * quote.unit / base.unit
        expected = mid * m.venue_factor(key, tick)
        tolerance = HALF_BIN if key.dex == "meteora" else 1e-6
        assert spot_price(m.pool(key, at), key.base) == pytest.approx(expected, rel=tolerance)
