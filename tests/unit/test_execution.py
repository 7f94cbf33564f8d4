"""services/executor/execution.py: signatures, backoff, the slippage check, the transaction."""

from __future__ import annotations

import math

import base58
import pytest

from services.executor.execution import backoff_ms, build, fill, signature
from shared.tokens import get
from tests.unit.builders import requested, routed

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


# --- fill ----------------------------------------------------------------------------------


def test_fill_accepted_at_exactly_min_amount_out() -> None:
    order = requested()
    route = routed(amount_out=1_000_000, min_amount_out=990_000)
    # floor(1_000_000 * (1 - 0.01)) == 990_000
    result = fill(order, route, 0.01)
    assert result.amount_out == 990_000
    assert result.accepted


def test_fill_refused_one_unit_below_min_amount_out() -> None:
    order = requested()
    route = routed(amount_out=1_000_000, min_amount_out=990_001)
    result = fill(order, route, 0.01)
    assert result.amount_out == 990_000
    assert not result.accepted


def test_fill_refused_when_price_moved_too_far() -> None:
    route = routed(amount_out=1_000_000, min_amount_out=990_000)
    result = fill(requested(), route, 0.011)
    assert result.amount_out == math.floor(1_000_000 * (1 - 0.011))
    assert result.amount_out < 990_000
    assert not result.accepted


def test_favourable_move_fills_above_the_quote() -> None:
    route = routed(amount_out=1_000_000, min_amount_out=990_000)
    result = fill(requested(), route, -0.002)
    assert result.amount_out == 1_002_000
    assert result.accepted


def test_no_move_fills_at_the_quote() -> None:
    route = routed(amount_out=74_000_000, min_amount_out=73_260_000)
    result = fill(requested(), route, 0.0)
    assert result.amount_out == 74_000_000
    assert result.accepted


def test_executed_price_in_decimal_units() -> None:
    # 0.5 SOL in, 74 USDC out: 148 USDC per SOL.
    order = requested(amount_in=500_000_000)
    result = fill(order, routed(amount_out=74_000_000, min_amount_out=1), 0.0)
    assert result.executed_price == pytest.approx(148.0)
    sol_out = requested(
        token_in="USDC", token_out="SOL", amount_in=148_000_000, amount="148"
    )
    result = fill(sol_out, routed(amount_out=10**9, min_amount_out=1), 0.0)
    assert result.executed_price == pytest.approx(1 / 148)


# --- build ---------------------------------------------------------------------------------


def test_sol_input_is_wrapped() -> None:
    order = requested(token_in="SOL", token_out="USDC")
    tx = build(order, routed(dex="raydium", min_amount_out=73_260_000))
    assert tx.wraps_sol
    assert not tx.unwraps_sol
    text = "\n".join(tx.instructions)
    assert "syncNative(wSOL)" in text
    assert str(order.amount_in) in tx.instructions[1]
    # wrap, then swap, then close the wSOL account
    swap_at = next(i for i, s in enumerate(tx.instructions) if ".swap(" in s)
    assert 0 < swap_at < len(tx.instructions) - 1
    assert tx.instructions[-1].startswith("closeAccount(wSOL)")


def test_sol_output_is_unwrapped() -> None:
    order = requested(token_in="USDC", token_out="SOL", amount_in=75_000_000, amount="75")
    tx = build(order, routed(dex="meteora", min_amount_out=495_000_000))
    assert not tx.wraps_sol
    assert tx.unwraps_sol
    assert not any("syncNative" in s for s in tx.instructions)
    assert tx.instructions[0] == "createAssociatedTokenAccount(wSOL)"
    assert "unwrap" in tx.instructions[-1]


def test_usdc_to_usdt_neither_wraps_nor_unwraps() -> None:
    order = requested(token_in="USDC", token_out="USDT", amount_in=10_000_000, amount="10")
    tx = build(order, routed(dex="raydium", min_amount_out=9_900_000))
    assert not tx.wraps_sol
    assert not tx.unwraps_sol
    assert not any("wSOL" in s for s in tx.instructions)
    assert len(tx.instructions) == 1


def test_swap_step_names_venue_tokens_and_min_amount_out() -> None:
    order = requested(token_in="USDC", token_out="USDT", amount_in=10_000_000, amount="10")
    tx = build(order, routed(dex="meteora", min_amount_out=9_900_000))
    (swap,) = tx.instructions
    assert swap.startswith("meteora.swap(")
    assert "USDC -> USDT" in swap
    assert "10000000" in swap
    assert "minAmountOut=9900000" in swap


def test_build_uses_the_wsol_mint_not_the_symbol() -> None:
    assert get("SOL").mint == "So11111111111111111111111111111111111111112"
    order = requested(token_in=get("SOL").mint, token_out="USDC")
    assert build(order, routed()).wraps_sol
