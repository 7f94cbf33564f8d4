"""``oee_order_seconds`` is the engine's time: a waiting order counts from the moment it
fired, not from its request (its wait for a price or a pool is the client's choice)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from services.executor.service import Execution
from shared.config import Settings
from shared.events import OrderOpened, Triggered
from shared.order import fold
from tests.unit.builders import T0, confirmed, requested, routed


def _observed() -> tuple[float, float]:
    """The confirmed series' count and sum so far."""
    labels = {"status": "confirmed"}
    count = REGISTRY.get_sample_value("oee_order_seconds_count", labels) or 0.0
    total = REGISTRY.get_sample_value("oee_order_seconds_sum", labels) or 0.0
    return count, total


def _measure_end(events: list[Any], ended_after_s: float) -> float:
    """What one order's Confirmed adds to the histogram's sum (a float difference of a
    sum that other tests have grown, so it is compared with approx)."""
    state = fold("o-1", events)
    execution = Execution(cast(Any, None), cast(Any, None), Settings(), state)
    before = _observed()
    execution.measure(confirmed(seq=state.last_seq + 1, at=T0 + timedelta(seconds=ended_after_s)))
    after = _observed()
    assert after[0] == before[0] + 1
    return after[1] - before[1]


def test_a_market_order_counts_from_its_request() -> None:
    events = [requested(at=T0), routed(seq=2, at=T0 + timedelta(seconds=1))]
    assert _measure_end(events, 3.0) == pytest.approx(3.0)


def test_a_waiting_order_counts_from_the_moment_it_fired() -> None:
    waited = T0 + timedelta(hours=2)
    events = [
        requested(at=T0, order_type="limit", limit_price="100"),
        OrderOpened(order_id="o-1", seq=2, at=T0),
        Triggered(order_id="o-1", seq=3, at=waited, price=150.0, reason="met"),
        routed(seq=4, at=waited + timedelta(seconds=1)),
    ]
    assert _measure_end(events, 2 * 3600 + 2.5) == pytest.approx(2.5)
