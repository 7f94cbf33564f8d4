"""The capacity model's arithmetic (bench/capacity.py): no servers."""

from __future__ import annotations

import pytest

from bench.capacity import (
    capacity_model,
    cores_per_thousand,
    expected,
    grown,
    per_order,
    shard_orders_per_s,
)


def test_counters_grow_from_zero_and_never_shrink() -> None:
    before = {"xadd": 10.0, "ended-process": 5.0}
    after = {"xadd": 25.0, "evalsha": 4.0, "ended-process": 0.0}
    assert grown(before, after) == {"xadd": 15.0, "evalsha": 4.0, "ended-process": 0.0}


def test_per_order_divides_every_total() -> None:
    assert per_order({"router": 2.0, "executor": 5.0}, 1000) == {"router": 0.002,
                                                                  "executor": 0.005}


def test_a_shard_carries_its_core_share_over_the_cpu_per_order() -> None:
    # 0.5 ms of Redis CPU per order: 2,000 orders/s on a whole core, 1,400 at 70%.
    assert shard_orders_per_s(0.0005) == pytest.approx(2000)
    assert shard_orders_per_s(0.0005, 0.7) == pytest.approx(1400)
    with pytest.raises(ValueError, match="no Redis CPU"):
        shard_orders_per_s(0.0)


def test_service_cores_per_thousand_orders_a_second() -> None:
    assert cores_per_thousand({"gateway": 0.0004, "router": 0.0002, "executor": 0.0004}) == (
        pytest.approx(1.0))


def test_the_lower_limit_binds() -> None:
    assert expected(3, 2000, 10_000) == (6000, "redis")
    assert expected(6, 2000, 10_000) == (10_000, "postgres")
    # At equality the shards could carry more than PostgreSQL takes: PostgreSQL binds.
    assert expected(5, 2000, 10_000) == (10_000, "postgres")


def test_the_model_at_3_6_and_12_shards() -> None:
    model = capacity_model(0.0005, {"gateway": 0.0005, "executor": 0.0005}, 0.0002, 9000,
                           headroom=0.5)
    assert model["perShardOrdersPerS"] == 2000
    assert model["perShardOrdersPerSAtHeadroom"] == 1000
    assert model["serviceCoresPer1000OrdersPerS"] == 1.0
    assert model["postgresCoresPer1000OrdersPerS"] == 0.2
    three, six, twelve = (model["shards"][s] for s in ("3", "6", "12"))
    assert (three["expectedOrdersPerS"], three["bindsFirst"]) == (6000, "redis")
    assert (six["expectedOrdersPerS"], six["bindsFirst"]) == (9000, "postgres")
    assert (twelve["expectedOrdersPerS"], twelve["bindsFirst"]) == (9000, "postgres")
    assert twelve["redisLimitOrdersPerS"] == 24_000
    assert three["atHeadroomOrdersPerS"] == 3000
    assert three["serviceCoresAtHeadroom"] == 3.0
