"""bench/load.py: the orders a run submits differ in size, as traders' orders do."""

from __future__ import annotations

from bench.load import SIZES, Options, amounts, order_bodies


def test_every_size_comes_once_small_and_large_mixed() -> None:
    sizes = amounts()
    assert len(sizes) == len(set(sizes)) == SIZES
    assert min(map(float, sizes)) == 0.01 and max(map(float, sizes)) == 10.0
    # Not sorted: a run of a few hundred orders meets small and large ones alike.
    assert max(map(float, sizes[:10])) > 1 > min(map(float, sizes[:10]))


def test_market_and_limit_orders_take_the_sizes_and_snipers_share_theirs() -> None:
    market = order_bodies(Options(order_type="market"), mint="M")
    assert [body["amount"] for body in market] == amounts()
    limit = order_bodies(Options(order_type="limit"), mint="M")
    assert {body["type"] for body in limit} == {"limit"} and len(limit) == SIZES
    [sniper] = order_bodies(Options(order_type="sniper"), mint="M")
    assert sniper["tokenOut"] == "M"
