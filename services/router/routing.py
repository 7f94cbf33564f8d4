"""Choosing a venue: the better output after fees wins. No I/O here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal, localcontext

import msgspec

from shared.events import Dex, Quote


class Decision(msgspec.Struct, frozen=True):
    dex: Dex
    amount_out: int
    min_amount_out: int
    reason: str


def min_amount_out(quoted_out: int, slippage: float) -> int:
    """The least the order accepts: quotedOut x (1 - slippage), rounded up so the bound
    is never looser than the client asked for."""
    with localcontext(prec=60):
        return math.ceil(Decimal(quoted_out) * (1 - Decimal(repr(slippage))))


def choose(quotes: Sequence[Quote], slippage: float) -> Decision:
    if not quotes:
        raise ValueError("no quotes to choose from")
    ranked = sorted(quotes, key=lambda q: (-q.amount_out, q.dex))
    best = ranked[0]
    if len(ranked) == 1:
        reason = f"{best.dex} is the only venue quoting"
    else:
        runner_up = ranked[1]
        edge = best.amount_out - runner_up.amount_out
        share = edge / runner_up.amount_out if runner_up.amount_out else math.inf
        reason = (
            f"{best.dex} pays {best.amount_out} net of a {best.fee_bps} bps fee, "
            f"{edge} ({share:.2%}) more than {runner_up.dex} at {runner_up.amount_out}"
        )
    return Decision(best.dex, best.amount_out, min_amount_out(best.amount_out, slippage), reason)
