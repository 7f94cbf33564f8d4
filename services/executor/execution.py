"""What an execution decides: the transaction, its signature, the retry delay, and whether
the fill respects the slippage bound. No I/O here."""

from __future__ import annotations

import hashlib
import math

import base58
import msgspec

from shared.events import OrderRequested, Routed
from shared.tokens import WSOL_MINT, get


class Transaction(msgspec.Struct, frozen=True):
    instructions: list[str]
    wraps_sol: bool
    unwraps_sol: bool


class Fill(msgspec.Struct, frozen=True):
    amount_out: int
    executed_price: float
    accepted: bool


def build(order: OrderRequested, routed: Routed) -> Transaction:
    """The swap's instructions; native SOL is wrapped into wSOL before and unwrapped after."""
    token_in, token_out = get(order.token_in), get(order.token_out)
    wraps, unwraps = token_in.mint == WSOL_MINT, token_out.mint == WSOL_MINT
    steps: list[str] = []
    if wraps:
        steps += [
            "createAssociatedTokenAccount(wSOL)",
            f"transfer({order.amount_in} lamports -> wSOL account)",
            "syncNative(wSOL)",
        ]
    elif unwraps:
        steps.append("createAssociatedTokenAccount(wSOL)")
    steps.append(
        f"{routed.dex}.swap({order.amount_in} {token_in.symbol} -> {token_out.symbol}, "
        f"minAmountOut={routed.min_amount_out})"
    )
    if wraps or unwraps:
        steps.append("closeAccount(wSOL) -> unwrap to SOL")
    return Transaction(steps, wraps, unwraps)


def signature(seed: str, order_id: str, attempt: int) -> str:
    """A Solana-style signature: 64 bytes in base58. Each attempt signs a fresh
    transaction, as a resubmission with a new blockhash would. The first byte is kept
    non-zero so the text is 87-88 characters long, like a real one."""
    digest = bytearray(hashlib.sha512(f"{seed}/{order_id}/{attempt}".encode()).digest())
    digest[0] = max(digest[0], 1)
    return base58.b58encode(bytes(digest)).decode()


def backoff_ms(attempt: int, base_ms: float) -> float:
    """Delay before the attempt after ``attempt``: base, 2 x base, 4 x base, ..."""
    return float(base_ms * 2 ** (attempt - 1))


def fill(order: OrderRequested, routed: Routed, adverse_move: float) -> Fill:
    """The fill after the price moved against the order by ``adverse_move`` (negative:
    in its favour). It is accepted only at or above minAmountOut."""
    amount_out = math.floor(routed.amount_out * (1 - adverse_move))
    token_in, token_out = get(order.token_in), get(order.token_out)
    price = (amount_out / token_out.unit) / (order.amount_in / token_in.unit)
    rounded = float(f"{price:.12g}")
    return Fill(amount_out, rounded, amount_out >= routed.min_amount_out)
