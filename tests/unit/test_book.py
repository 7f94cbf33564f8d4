"""services/trigger/book.py: taking many orders out of the book at once."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest

from services.trigger.book import Book, Watched, least_price
from shared.events import OrderRequested


def limit(n: int, draw: random.Random, token_out: str = "USDC") -> Watched:
    order = OrderRequested(
        order_id=f"limit-{n:04d}", seq=1, token_in="SOL", token_out=token_out,
        amount_in=draw.choice([10**8, 5 * 10**8, 10**9]), amount="0.1", slippage=0.01,
        order_type="limit", limit_price=str(round(draw.uniform(100, 200), 2)))
    return Watched(order=order, seq=2, price=least_price(order))


def book_of(orders: list[Watched]) -> Book:
    book = Book()
    for watched in orders:
        book.add(watched)
    return book


def every_order(book: Book) -> list[str]:
    """Each pair's orders, in the order the market would meet them."""
    return [w.order_id for pair in sorted(book.pairs()) for w in book.meetable(pair, math.inf)]


@pytest.mark.parametrize("seed", range(20))
def test_discarding_many_leaves_the_book_the_rest_would_make(seed: int) -> None:
    draw = random.Random(seed)
    orders = [limit(n, draw, draw.choice(["USDC", "USDT"])) for n in range(draw.randrange(1, 400))]
    leaving = {w.order_id for w in orders if draw.random() < draw.random()}
    book = book_of(orders)
    book.discard_all([*leaving, "never-watched"])
    staying = [w for w in orders if w.order_id not in leaving]
    assert every_order(book) == every_order(book_of(staying))
    assert {w.order_id for w in staying} == set(book.orders)


def test_discarding_one_by_one_or_all_at_once_is_the_same() -> None:
    draw = random.Random(7)
    orders = [limit(n, draw) for n in range(300)]
    leaving = [w.order_id for w in orders[::3]]
    one_by_one, at_once = book_of(orders), book_of(orders)
    for order_id in leaving:
        one_by_one.discard(order_id)
    at_once.discard_all(leaving)
    assert every_order(one_by_one) == every_order(at_once)


MINT = "Mint1111111111111111111111111111111111111111"


def sniper(n: int) -> Watched:
    order = OrderRequested(
        order_id=f"sniper-{n:04d}", seq=1, token_in="SOL", token_out=MINT, amount_in=10**8,
        amount="0.1", slippage=0.01, order_type="sniper",
        at=datetime(2026, 12, 6, 12, 0, n, tzinfo=UTC))
    return Watched(order=order, seq=2, price=least_price(order))


def test_a_launch_fires_each_waiting_sniper_once_in_submission_order() -> None:
    book = Book()
    first, second, third, fourth = (sniper(n) for n in range(4))
    for watched in (third, first, second):
        book.add(watched)
    # One gone before the launch, one watched again (reopened): neither trips the next add.
    book.discard(first.order_id)
    book.add(second)
    book.add(fourth)
    assert [w.order_id for w in book.launched(MINT)] == [
        second.order_id, third.order_id, fourth.order_id]
    assert book.launched(MINT) == []
