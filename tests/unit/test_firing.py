"""services/trigger/service.py ``Firing``: what a tick fires goes to the store in chunks
while the rest is decided, and the book hears the store's answers once; book.py
``Watched.least_out``: an order's own bound, worked out once its tokenOut is known."""

from __future__ import annotations

from collections.abc import Sequence

from services.trigger.book import Watched, least_price
from services.trigger.service import FIRE_CHUNK, Firing
from shared.events import Event, OrderRequested, Triggered
from shared.positions import StreamId
from shared.waiting import own_bound


def triggered(n: int) -> Triggered:
    return Triggered(order_id=f"order-{n:05d}", seq=3, price=1.0, reason="the market met it")


async def test_chunks_go_out_while_the_rest_is_decided_and_the_answers_come_back_once(
) -> None:
    appended: list[list[str]] = []
    answered: list[tuple[list[str], list[StreamId | None]]] = []

    async def append(events: Sequence[Event]) -> list[StreamId | None]:
        appended.append([e.order_id for e in events])
        # The store refuses every seventh order (another instance fired it first).
        return [None if int(e.order_id[-5:]) % 7 == 0 else StreamId(1, n)
                for n, e in enumerate(events)]

    async def went_in(events: Sequence[Event], ids: Sequence[StreamId | None]) -> None:
        answered.append(([e.order_id for e in events], list(ids)))

    orders = 2 * FIRE_CHUNK + 3
    firing = Firing(append, went_in)
    for n in range(orders):
        await firing.add([triggered(n)])
        if n == FIRE_CHUNK:
            # The first chunk is in the store before the second is full.
            assert appended == [[f"order-{k:05d}" for k in range(FIRE_CHUNK)]]
            assert answered == []
    assert await firing.done() == orders
    assert [len(chunk) for chunk in appended] == [FIRE_CHUNK, FIRE_CHUNK, 3]
    [(ids, answers)] = answered
    assert ids == [f"order-{n:05d}" for n in range(orders)]
    assert [a is None for a in answers] == [n % 7 == 0 for n in range(orders)]


async def test_nothing_fired_asks_nothing_of_the_store() -> None:
    async def append(events: Sequence[Event]) -> list[StreamId | None]:
        raise AssertionError("nothing to append")

    async def went_in(events: Sequence[Event], ids: Sequence[StreamId | None]) -> None:
        raise AssertionError("nothing went in")

    assert await Firing(append, went_in).done() == 0


def order(token_out: str, **terms: str) -> OrderRequested:
    return OrderRequested(order_id="order-1", seq=1, token_in="SOL", token_out=token_out,
                          amount_in=10**9, amount="1", slippage=0.01, **terms)


def test_a_limits_own_bound_is_its_orders() -> None:
    limit = order("USDC", order_type="limit", limit_price="150.5")
    watched = Watched(order=limit, seq=2, price=least_price(limit))
    assert watched.least_out() == own_bound(limit) > 0
    assert watched.bound == own_bound(limit)  # kept for the next tick


def test_a_sniper_before_its_launch_keeps_no_bound() -> None:
    # Its tokenOut (a mint no pool has yet) is not known: nothing to keep until it is.
    sniper = order("So1ana1aunchedMint1111111111111111111111111", order_type="sniper",
                   max_price="0.001")
    watched = Watched(order=sniper, seq=2, price=least_price(sniper))
    assert watched.least_out() == 0
    assert watched.bound is None
