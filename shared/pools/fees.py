"""How fees round: always up, in the pool's favour, so any non-zero rate charges something."""

from __future__ import annotations

BPS = 10_000


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def fee_for(amount: int, bps: int) -> int:
    """The fee on ``amount`` at ``bps``: ceil(amount * bps / 10000), at least 1 when both > 0."""
    return ceil_div(amount * bps, BPS)
