"""bench/load.py: how often the bench reads the log at a steady rate."""

from __future__ import annotations

import pytest

from bench.load import follow_every_s


@pytest.mark.parametrize(("rate", "every_s"), [
    (1, 0.1), (20, 0.1), (50, 0.1),  # few orders: a read for every few of them, at most
    (100, 0.05),                      # a read once 5 orders have come
    (250, 0.02), (1000, 0.02),        # many: small reads, so none holds Redis up long
])
def test_the_log_is_read_once_a_few_orders_have_come_within_bounds(rate: float,
                                                                   every_s: float) -> None:
    assert follow_every_s(rate) == pytest.approx(every_s)
