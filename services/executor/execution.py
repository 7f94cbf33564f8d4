"""What an execution computes: the transaction, its signature, and the price it was executed
at. No I/O here; what the order's next event is, is the domain's (``shared.decisions``)."""

from __future__ import annotations

import hashlib

from shared.decisions import Transaction
from shared.events import OrderRequested, Routed
from shared.tokens import WSOL_MINT, get


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
    for leg in routed.route.legs:
        steps.append(f"{leg.dex}.swap({leg.amount_in} {leg.token_in} -> {leg.token_out})")
    steps.append(f"assertMinimumOut({routed.min_amount_out} {token_out.symbol})")
    if wraps or unwraps:
        steps.append("closeAccount(wSOL) -> unwrap to SOL")
    return Transaction(steps, wraps, unwraps)


_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# Every two-digit string, at its value: 58 x first + second.
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]


def base58_of(data: bytes) -> str:
    """``base58.b58encode(data)``, as text, in half the time: ten digits per division of
    the big number and two per small one, where the library takes one of each per digit.
    Every execution signs a transaction."""
    number = int.from_bytes(data, "big")
    pairs: list[str] = []
    while number:
        number, ten = divmod(number, 58**10)
        for _ in range(5):
            ten, pair = divmod(ten, 58 * 58)
            pairs.append(_PAIRS[pair])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(pairs)).lstrip("1")


def signature(seed: str, order_id: str, attempt: int) -> str:
    """A Solana-style signature: 64 bytes in base58. Each attempt signs a fresh
    transaction, as a resubmission with a new blockhash would. The first byte is kept
    non-zero so the text is 87-88 characters long, like a real one."""
    digest = bytearray(hashlib.sha512(f"{seed}/{order_id}/{attempt}".encode()).digest())
    digest[0] = max(digest[0], 1)
    return base58_of(bytes(digest))


def executed_price(order: OrderRequested, amount_out: int) -> float:
    """Output per input, in decimal token units."""
    token_in, token_out = get(order.token_in), get(order.token_out)
    price = (amount_out / token_out.unit) / (order.amount_in / token_in.unit)
    return float(f"{price:.12g}")
