"""services/executor/execution.py: signatures, the executed price, the transaction; and the
retry backoff (shared/decisions.py)."""

from __future__ import annotations

import random

import base58
import pytest

from services.executor.execution import base58_of, build, executed_price, signature
from shared.decisions import backoff_ms
from shared.route import Candidate
from shared.tokens import get
from tests.unit.builders import direct, requested, routed, split, two_hop

BASE58_ALPHABET = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")


# --- signature -----------------------------------------------------------------------------


def test_signature_is_base58_of_64_bytes() -> None:
    sig = signature("seed", "order-1", 1)
    assert set(sig) <= BASE58_ALPHABET
    assert len(sig) in (87, 88)
    assert len(base58.b58decode(sig)) == 64


def test_signature_length_over_many_orders() -> None:
    for i in range(2_000):
        sig = signature("seed", f"order-{i}", 1 + i % 3)
        assert len(sig) in (87, 88), sig
        assert set(sig) <= BASE58_ALPHABET


@pytest.mark.parametrize("data", [
    b"", b"\0", b"\0\0\x01", b"\x01", b"\xff" * 64, b"\0" * 3 + bytes(range(40)),
    bytes(range(256)), (58**10).to_bytes(8, "big"), (58**10 - 1).to_bytes(8, "big"),
])
def test_base58_of_spells_what_the_library_does(data: bytes) -> None:
    assert base58_of(data) == base58.b58encode(data).decode()


def test_base58_of_random_bytes_spells_what_the_library_does() -> None:
    draw = random.Random(58)
    for size in range(0, 100):
        data = bytes(draw.randrange(4) and draw.randrange(256) for _ in range(size))
        assert base58_of(data) == base58.b58encode(data).decode(), data


def test_signature_is_deterministic() -> None:
    assert signature("seed", "order-1", 2) == signature("seed", "order-1", 2)


def test_signature_differs_across_attempts() -> None:
    for i in range(500):
        sigs = {signature("seed", f"order-{i}", attempt) for attempt in (1, 2, 3)}
        assert len(sigs) == 3


def test_signature_differs_across_orders_and_seeds() -> None:
    sigs = {signature("seed", f"order-{i}", 1) for i in range(1_000)}
    assert len(sigs) == 1_000
    assert signature("a", "order-1", 1) != signature("b", "order-1", 1)


def test_signature_with_empty_seed() -> None:
    sig = signature("", "order-1", 1)
    assert len(sig) in (87, 88)


# --- backoff -------------------------------------------------------------------------------


def test_backoff_doubles() -> None:
    assert [backoff_ms(attempt, 500) for attempt in (1, 2, 3, 4)] == [500, 1_000, 2_000, 4_000]


def test_backoff_with_zero_base() -> None:
    assert backoff_ms(3, 0) == 0


# --- executed price ------------------------------------------------------------------------


def test_executed_price_in_decimal_units() -> None:
    # 0.5 SOL in, 74 USDC out: 148 USDC per SOL.
    assert executed_price(requested(amount_in=500_000_000), 74_000_000) == 148.0
    # 148 USDC in, 1 SOL out.
    usdc_in = requested(token_in="USDC", token_out="SOL", amount_in=148_000_000, amount="148")
    assert executed_price(usdc_in, 10**9) == pytest.approx(1 / 148, rel=1e-12)


def test_executed_price_follows_each_tokens_decimals() -> None:
    # 10 million BONK (5 decimals) for 1.3 SOL (9 decimals).
    order = requested(token_in="BONK", token_out="SOL", amount_in=10**12, amount="10000000")
    assert executed_price(order, 1_300_000_000) == pytest.approx(1.3e-7, rel=1e-12)
    # 10 USDC for 9.99 USDT: both 6 decimals.
    order = requested(token_in="USDC", token_out="USDT", amount_in=10_000_000, amount="10")
    assert executed_price(order, 9_990_000) == 0.999


def test_executed_price_keeps_twelve_significant_digits() -> None:
    # 100 USDC for 3 SOL: 33.333...
    order = requested(amount_in=3 * 10**9, amount="3")
    assert executed_price(order, 100_000_000) == 33.3333333333
    assert executed_price(order, 1) == pytest.approx(1 / 3 * 1e-6, rel=1e-11)


def test_executed_price_accepts_a_mint() -> None:
    order = requested(token_in=get("SOL").mint, token_out=get("USDC").mint)
    assert executed_price(order, 74_000_000) == 148.0


def test_executed_price_of_nothing_out_is_zero() -> None:
    assert executed_price(requested(), 0) == 0.0


# --- build ---------------------------------------------------------------------------------


def _swaps(instructions: list[str]) -> list[str]:
    return [step for step in instructions if ".swap(" in step]


def test_sol_input_is_wrapped() -> None:
    order = requested(token_in="SOL", token_out="USDC")
    tx = build(order, routed(min_amount_out=73_260_000))
    assert tx.wraps_sol
    assert not tx.unwraps_sol
    assert tx.instructions == [
        "createAssociatedTokenAccount(wSOL)",
        f"transfer({order.amount_in} lamports -> wSOL account)",
        "syncNative(wSOL)",
        f"raydium.swap({order.amount_in} SOL -> USDC)",
        "assertMinimumOut(73260000 USDC)",
        "closeAccount(wSOL) -> unwrap to SOL",
    ]


def test_sol_output_is_unwrapped() -> None:
    order = requested(token_in="USDC", token_out="SOL", amount_in=75_000_000, amount="75")
    route = direct("meteora", "USDC", "SOL", 75_000_000, 500_000_000)
    tx = build(order, routed(route=route, min_amount_out=495_000_000))
    assert not tx.wraps_sol
    assert tx.unwraps_sol
    assert not any("syncNative" in s for s in tx.instructions)
    assert tx.instructions == [
        "createAssociatedTokenAccount(wSOL)",
        "meteora.swap(75000000 USDC -> SOL)",
        "assertMinimumOut(495000000 SOL)",
        "closeAccount(wSOL) -> unwrap to SOL",
    ]


def test_usdc_to_usdt_neither_wraps_nor_unwraps() -> None:
    order = requested(token_in="USDC", token_out="USDT", amount_in=10_000_000, amount="10")
    route = direct("raydium", "USDC", "USDT", 10_000_000, 9_970_000)
    tx = build(order, routed(route=route, min_amount_out=9_900_000))
    assert not tx.wraps_sol
    assert not tx.unwraps_sol
    assert not any("wSOL" in s for s in tx.instructions)
    assert tx.instructions == [
        "raydium.swap(10000000 USDC -> USDT)",
        "assertMinimumOut(9900000 USDT)",
    ]


@pytest.mark.parametrize(
    "route",
    [direct("raydium"), direct("meteora"), split(), split(raydium_bps=1)],
    ids=["raydium", "meteora", "split", "split-1bps"],
)
def test_one_swap_step_per_leg(route: Candidate) -> None:
    order = requested()
    tx = build(order, routed(route=route))
    assert _swaps(tx.instructions) == [
        f"{leg.dex}.swap({leg.amount_in} {leg.token_in} -> {leg.token_out})"
        for leg in route.legs
    ]
    assert sum(leg.amount_in for leg in route.legs) == order.amount_in


def test_split_swaps_both_venues_between_wrap_and_assert() -> None:
    order = requested()
    route = split(raydium_bps=6_000)
    tx = build(order, routed(route=route, min_amount_out=73_000_000))
    steps = tx.instructions
    assert steps[3:6] == [
        "raydium.swap(300000000 SOL -> USDC)",
        "meteora.swap(200000000 SOL -> USDC)",
        "assertMinimumOut(73000000 USDC)",
    ]
    assert steps[2] == "syncNative(wSOL)"
    assert steps[-1].startswith("closeAccount(wSOL)")


def test_two_hop_swaps_in_path_order() -> None:
    order = requested(token_in="BONK", token_out="RAY", amount_in=10**12, amount="10000000")
    route = two_hop(("BONK", "SOL", "RAY"), ("meteora", "raydium"),
                    (10**12, 1_300_000_000, 78_000_000))
    tx = build(order, routed(route=route, min_amount_out=77_220_000))
    # SOL is only passed through inside the route: nothing to wrap or unwrap.
    assert not tx.wraps_sol
    assert not tx.unwraps_sol
    assert tx.instructions == [
        "meteora.swap(1000000000000 BONK -> SOL)",
        "raydium.swap(1300000000 SOL -> RAY)",
        "assertMinimumOut(77220000 RAY)",
    ]


@pytest.mark.parametrize(
    "route",
    [direct("raydium"), split(), two_hop()],
    ids=["direct", "split", "two_hop"],
)
def test_assert_minimum_out_comes_once_after_every_swap(route: Candidate) -> None:
    tx = build(requested(), routed(route=route, min_amount_out=12_345))
    asserts = [i for i, s in enumerate(tx.instructions) if s.startswith("assertMinimumOut(")]
    assert len(asserts) == 1
    last_swap = max(i for i, s in enumerate(tx.instructions) if ".swap(" in s)
    assert asserts[0] == last_swap + 1
    assert tx.instructions[asserts[0]] == "assertMinimumOut(12345 USDC)"


def test_assert_uses_the_routed_min_amount_out_not_the_quote() -> None:
    tx = build(requested(), routed(amount_out=74_000_000, min_amount_out=1))
    assert "assertMinimumOut(1 USDC)" in tx.instructions


def test_build_uses_the_wsol_mint_not_the_symbol() -> None:
    assert get("SOL").mint == "So11111111111111111111111111111111111111112"
    order = requested(token_in=get("SOL").mint, token_out="USDC")
    tx = build(order, routed())
    assert tx.wraps_sol
    usdc_out = requested(token_in="USDC", token_out=get("SOL").mint, amount_in=75_000_000)
    assert build(usdc_out, routed(route=direct("raydium", "USDC", "SOL"))).unwraps_sol


def test_assert_names_the_output_symbol_for_a_mint() -> None:
    order = requested(token_in="SOL", token_out=get("USDC").mint)
    tx = build(order, routed(min_amount_out=5))
    assert "assertMinimumOut(5 USDC)" in tx.instructions
