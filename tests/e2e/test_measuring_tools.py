"""The measuring tools behind docs/performance.md, run small: each still runs to the end and
reports figures that add up. (Their real runs take minutes and a quiet machine.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest


def measured(redis_url: str, database_url: str, module: str, *args: str,
             **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=240,
        env={**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url, **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_the_launch_measure_follows_every_sniper_to_submitted(
        redis_url: str, database_url: str, venue: str) -> None:
    result = measured(redis_url, database_url, "bench.snipers",
                      "--snipers", "20", "--launches", "2", "--venue", venue)
    assert len(result["launches"]) == 2
    for launch in result["launches"]:
        assert launch["submitted"] == 20
        fired, submitted = launch["launchToTriggeredMs"], launch["launchToSubmittedMs"]
        assert 0 <= fired["p99"] <= submitted["p99"] <= submitted["max"]
        assert launch["cpuSeconds"]["executor"] >= 0 and "redis" in launch["cpuSeconds"]
    spread = result["launchToSubmittedP99Ms"]
    assert spread["min"] <= spread["median"] <= spread["max"]


def test_the_trigger_scale_measure_accounts_for_every_order(
        redis_url: str, database_url: str) -> None:
    # How many the market crosses depends on the moment (the market is a function of
    # time): each order is fired, still open, or was marketable at once, and no other.
    result = measured(redis_url, database_url, "bench.limits", "--orders", "300",
                      "--ticks", "12", "--band", "0", OEE_SEED="scale")
    assert result["orders"] == 300
    assert result["fired"] + result["stillOpen"] + result["marketableAtOnce"] == 300
    assert result["bytesPerOpenOrder"] > 0
    if result["fired"]:
        assert 0 <= result["tickToTriggeredMs"]["p50"] <= result["tickToTriggeredMs"]["max"]


def test_the_capacity_measure_prints_its_model(redis_url: str, database_url: str) -> None:
    result = measured(redis_url, database_url, "bench.capacity", "--rate", "40",
                      "--seconds", "2", "--orders-for-pg", "100", "--persisters", "2")
    load = result["load"]
    assert load["accepted"] == load["statuses"]["confirmed"] > 0
    assert load["redis"]["commandsPerOrder"] > 0 and load["redis"]["cpuMsPerOrder"] > 0
    drained = result["postgresWrite"]
    assert drained["persisters"] == 2 and drained["statuses"] == {"confirmed": 100}
    assert set(result["model"]["shards"]) == {"3", "6", "12"}


def test_the_executor_measure_times_every_burst(redis_url: str, database_url: str) -> None:
    result = measured(redis_url, database_url, "bench.executor", "--orders", "50",
                      "--bursts", "2")
    assert result["orders"] == 50 and len(result["bursts"]) == 2
    for burst in result["bursts"]:
        assert burst["lastConfirmedS"] > 0 and burst["cpuS"] >= 0
        assert burst["cpuMsPerOrder"] == round(burst["cpuS"] / 50 * 1000, 3)


def test_the_routing_measure_prices_every_order_shape(
        redis_url: str, database_url: str) -> None:
    result = measured(redis_url, database_url, "bench.routing")
    assert set(result) == {"SOL->USDC 0.5", "SOL->USDC 500", "USDC->SOL 50", "SOL->BONK 0.5"}
    assert all(microseconds > 0 for microseconds in result.values())
