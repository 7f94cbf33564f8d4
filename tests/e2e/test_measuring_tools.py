"""The measuring tools behind docs/performance.md, run small: each still runs to the end and
reports figures that add up, every one of them present and in a range it could miss.
(Their real runs take minutes and a quiet machine.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import pairwise
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
        assert launch["snipers"] == launch["submitted"] == 20
        # Each sniper is triggered, routed, built and submitted in that order.
        steps = [launch[f"launchTo{step}Ms"] for step in
                 ("Triggered", "Routed", "Built", "Submitted")]
        assert steps[0]["p50"] > 0
        assert all(a["p50"] <= b["p50"] and a["p99"] <= b["p99"] for a, b in pairwise(steps))
        assert all(step["p50"] <= step["p99"] <= step["max"] < 60_000 for step in steps)
        assert 0 < launch["windowS"] < 120
        cpu = launch["cpuSeconds"]
        assert set(cpu) == {"gateway", "router", "executor", "persister", "trigger",
                            "postgres", "redis"}
        # A process's CPU comes in 10 ms ticks, which a short launch may not reach; Redis
        # counts in microseconds, and it ran every sniper's appends.
        assert all(seconds >= 0 for seconds in cpu.values()) and cpu["redis"] > 0
    p99s = sorted(launch["launchToSubmittedMs"]["p99"] for launch in result["launches"])
    spread = result["launchToSubmittedP99Ms"]
    assert (spread["min"], spread["max"]) == (p99s[0], p99s[-1])
    assert spread["min"] <= spread["median"] <= spread["max"]


def test_the_trigger_scale_measure_accounts_for_every_order(
        redis_url: str, database_url: str) -> None:
    # The tool's own seed, whatever OEE_SEED says: the documented window crosses limits.
    result = measured(redis_url, database_url, "bench.limits", "--orders", "300",
                      "--ticks", "120", "--band", "0.012", OEE_SEED="not-the-tools")
    assert (result["orders"], result["ticks"], result["band"]) == (300, 119, 0.012)
    # Each order is fired, still open, or was marketable at once, and no other.
    assert result["fired"] + result["stillOpen"] + result["marketableAtOnce"] == 300
    assert 0 < result["maxFiredInOneTick"] <= result["fired"] < 300
    # A watched order is a few hundred bytes, not nothing and not a page.
    assert 100 < result["bytesPerOpenOrder"] < 100_000
    tick = result["tickToTriggeredMs"]
    assert 0 < tick["p50"] <= tick["p99"] <= tick["max"] < 60_000


def test_the_trigger_scale_measure_says_when_nothing_crossed(
        redis_url: str, database_url: str) -> None:
    """A window the market crosses no limit in has nothing to time: no p99 of 0 ms that
    reads as a target met."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.limits", "--orders", "300", "--ticks", "120",
         "--band", "0.012", "--seed", "market"],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url})
    assert done.returncode == 1, done.stderr[-3000:]
    assert json.loads(done.stdout)["fired"] == 0
    assert "no limit crossed in the window (seed 'market'" in done.stderr


def test_the_capacity_measure_prints_its_model(redis_url: str, database_url: str) -> None:
    result = measured(redis_url, database_url, "bench.capacity", "--rate", "40",
                      "--seconds", "2", "--orders-for-pg", "100", "--persisters", "2")
    load = result["load"]
    assert load["accepted"] == load["statuses"]["confirmed"] > 0 and load["refused"] == 0
    # Both figures are rounded (the window to 0.01 s, the rate to 0.1): the rate is at most
    # what the shortest window that rounds so allows, rounded up.
    most = load["accepted"] / (load["windowSeconds"] - 0.005) + 0.05
    assert 0 < load["ordersPerS"] <= most + 1e-9
    assert load["redis"]["commandsPerOrder"] > 10 and load["redis"]["cpuMsPerOrder"] > 0
    cpu = load["cpuMsPerOrder"]
    assert set(cpu) == {"gateway", "router", "executor", "persister", "trigger", "postgres"}
    # Every service but the trigger (no waiting orders) does work for each order.
    assert all(cpu[kind] > 0 for kind in ("gateway", "router", "executor", "persister"))
    drained = result["postgresWrite"]
    assert drained["persisters"] == 2 and drained["statuses"] == {"confirmed": 100}
    assert set(result["model"]["shards"]) == {"3", "6", "12"}


def test_the_executor_measure_times_every_burst(redis_url: str, database_url: str) -> None:
    result = measured(redis_url, database_url, "bench.executor", "--orders", "1000",
                      "--bursts", "2")
    assert result["orders"] == 1000 and len(result["bursts"]) == 2
    for burst in result["bursts"]:
        # A thousand orders cost the executor some CPU, and less than a core for the whole
        # burst. The CPU is counted in 10 ms ticks, and a burst of a hundred could take
        # the executor less than one (14 ms for all of them, once): a thousand take ten.
        assert 0 < burst["lastConfirmedS"] < 60 and 0 < burst["cpuS"] < 60
        assert burst["cpuMsPerOrder"] == round(burst["cpuS"] / 1000 * 1000, 3)
    medians = sorted(burst["cpuMsPerOrder"] for burst in result["bursts"])
    assert result["cpuMsPerOrderMedian"] == pytest.approx(sum(medians) / 2)


def test_the_routing_measure_prices_every_order_shape(
        redis_url: str, database_url: str) -> None:
    result = measured(redis_url, database_url, "bench.routing")
    assert set(result) == {"SOL->USDC 0.5", "SOL->USDC 500", "USDC->SOL 50", "SOL->BONK 0.5",
                           "SOL->USDC in oee bench's sizes", "every pool (12) at a new tick"}
    # A decision, or a tick's pools, is CPU work of microseconds to milliseconds, not
    # nothing and not seconds.
    assert all(0 < microseconds < 1_000_000 for microseconds in result.values())


def test_the_curve_measures_each_load_on_a_fresh_system(
        redis_url: str, database_url: str) -> None:
    # One rate and the burst, each on a system of its own.
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "bench", "--curve", "--levels", "40",
         "--duration", "2", "--orders", "300", "--warmup", "5", "--json"],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [row["load"] for row in rows] == ["40/s", "burst 300"]
    steady, burst = rows
    # Two seconds at 40 a second, paced; the burst all of it.
    assert 78 <= steady["accepted"] <= 80 and 25 < steady["orders_per_s"] <= 41
    assert burst["accepted"] == 300
    for row in rows:
        assert row["confirmed"] == row["accepted"] and row["refused"] == row["failed"] == 0
        cpu = row["cpu_ms_per_order"]
        assert set(cpu) == {"gateway", "router", "executor", "persister", "trigger", "redis",
                            "postgres", "generator"}
        assert all(cpu[kind] > 0 for kind in ("gateway", "router", "executor", "persister"))
        assert row["cpu_ms_per_order_engine"] == pytest.approx(
            sum(ms for kind, ms in cpu.items() if kind != "generator"), abs=0.001)
        assert 0 < row["cores_busy"] <= (os.cpu_count() or 1) + 1
        assert row["redis_commands_per_order"] > 10
        assert row["postgres_transactions_per_order"] > 0
        # Five events and the order's row, at least.
        assert row["postgres_rows_written_per_order"] >= 6
        # Zero delays: the defaults would take 2 s or more an order.
        e2e = row["end_to_end_ms"]
        assert 0 < e2e["p50"] <= e2e["p99"] < 2000


def test_the_idle_measure_counts_every_process_kind_and_finds_an_idle_engine_near_rest(
        redis_url: str, database_url: str) -> None:
    result = measured(redis_url, database_url, "bench.idle", "--seconds", "3", "--settle",
                      "1", "--json")
    cpu = result["cpu_ms_per_s"]
    assert set(cpu) == {"gateway", "router", "executor", "persister", "trigger", "postgres",
                        "redis"}
    # Counted in nanoseconds: a process that runs at all shows; the gateway's loop wakes
    # every second.
    assert cpu["gateway"] > 0 and all(ms >= 0 for ms in cpu.values())
    # A loop that polled instead of blocking would spend tens of ms a second, or more.
    assert sum(cpu.values()) < 100, cpu
    assert 2.5 < result["seconds"] < 10


def test_the_overheads_measure_prices_every_way(redis_url: str, database_url: str) -> None:
    result = measured(redis_url, database_url, "bench.overheads")
    ways = {kind: set(figures) for kind, figures in result.items()}
    assert ways == {
        "workerPerEntry": {"oneAtATime", "hundredAtATime"},
        "pipelinePerCommand": {"redisPyPipeline", "pipelined"},
        "roundTrip": {"socketBlocking", "bareProtocol", "redisPyClient",
                      "pipelinedOwnConnection", "pipelinedShared"},
        "submit": {"submitStraight", "submitThroughStarlette"},
    }
    # CPU microseconds: each way does some work, and none takes a tenth of a second.
    assert all(0 < used < 100_000 for figures in result.values() for used in figures.values())


def test_two_versions_are_measured_in_turn_each_on_its_own_code(
        redis_url: str, database_url: str, tmp_path: Any) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False)
    if head.returncode:
        pytest.skip("not a git checkout")
    out = tmp_path / "pairs.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "bench.ab", "--before", "HEAD", "--pairs", "1", "--out",
         str(out), "--", "--spawn", "--orders", "20", "--warmup", "0",
         "--quote-latency-ms", "0", "--execution-latency-ms", "0"],
        capture_output=True, text=True, timeout=240,
        env={**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [run["side"] for run in runs] == ["before", "after"]
    assert all(head.stdout.startswith(run["commit"].removesuffix("+changes")) for run in runs)
    assert all(run["pair"] == 1 and run["result"]["confirmed"] == 20 for run in runs)
    assert runs[0]["command"] == ("oee bench --spawn --orders 20 --warmup 0"
                                  " --quote-latency-ms 0 --execution-latency-ms 0")
    assert "before: medians of 1: CPU ms/order" in done.stdout
    assert "after: medians of 1: CPU ms/order" in done.stdout

