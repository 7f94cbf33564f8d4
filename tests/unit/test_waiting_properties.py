"""Properties of waiting orders, over any story the lifecycle allows and any market."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from shared import lifecycle
from shared.events import OrderRequested
from shared.routing import min_amount_out
from shared.waiting import execution_bound, own_bound

MOVES = sorted({move for moves in lifecycle._ALLOWED.values() for move in moves})
FILLS = {"Submitted", "Confirmed"}


@st.composite
def stories(draw: st.DrawFn) -> list[str]:
    """A waiting order's moves, each one the lifecycle allows from where it stands."""
    moves, state = ["OrderRequested:waiting"], lifecycle.walk(["OrderRequested:waiting"])
    for _ in range(draw(st.integers(0, 14))):
        allowed = sorted(lifecycle._ALLOWED[state])
        if not allowed:
            break
        move = draw(st.sampled_from(allowed))
        moves.append(move)
        state = lifecycle.step(state, move)
    return moves


@settings(max_examples=500)
@given(stories(), st.sampled_from(MOVES))
def test_a_cancelled_or_expired_order_never_fills(moves: list[str], extra: str) -> None:
    for end in ("Cancelled", "Expired"):
        if end in moves:
            after = moves[moves.index(end) + 1:]
            assert not FILLS & set(after)
            state = lifecycle.walk(moves)
            assert lifecycle.is_terminal(state)
            assert not lifecycle.allows(state, extra)


@settings(max_examples=500)
@given(stories())
def test_a_fill_always_comes_from_a_trigger_after_the_order_opened(moves: list[str]) -> None:
    if "Confirmed" in moves:
        fired = next(i for i, move in enumerate(moves) if move.startswith("Triggered"))
        assert moves.index("OrderOpened") < fired < moves.index("Confirmed")


@settings(max_examples=500)
@given(
    amount=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("100000"), places=6),
    limit=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1000000"), places=6),
    quoted=st.integers(1, 10**15),
    slippage=st.floats(min_value=1e-6, max_value=0.5),
    landed=st.integers(0, 10**15),
)
def test_a_limit_order_never_fills_below_its_limit(
        amount: Decimal, limit: Decimal, quoted: int, slippage: float, landed: int) -> None:
    """Whatever the quote and whatever the pools give when the transaction lands, the
    swap program refuses anything below minAmountOut, and minAmountOut is at least
    amount x limitPrice."""
    order = OrderRequested(order_id="o", seq=1, token_in="SOL", token_out="USDC",
                           amount_in=int(amount.scaleb(9)), amount=str(amount),
                           slippage=slippage, order_type="limit", limit_price=str(limit))
    bound = execution_bound(order, min_amount_out(quoted, slippage))
    fills = landed >= bound  # what the simulated chain checks
    if fills:
        assert Decimal(landed).scaleb(-6) >= amount * limit
    assert bound >= own_bound(order) >= amount * limit * 10**6
