"""``oee bench`` against a running system: it counts, times and samples what it ran, and
every figure it prints is one that the run could have got wrong."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.harness import FAST, System, system
from bench.load import Options, run

GROUPS = {"persister", "executor", "router", "trigger"}
MARKET_STAGES = {"accept", "route", "pickup", "send", "confirm"}
# The least an order can take with the harness's delays: a quote, then an execution.
QUOTE_MS = float(FAST["OEE_QUOTE_LATENCY_MS"])
EXECUTION_MS = [float(bound) for bound in FAST["OEE_EXECUTION_LATENCY_MS"].split("-")]
LEAST_MS = QUOTE_MS + EXECUTION_MS[0]


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    namespace = f"bench-test-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, tmp_path_factory.mktemp("logs")) as started:
        yield started


def bench(running: System, options: Options, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    for name in ("REDIS_URL", "DATABASE_URL", "OEE_NAMESPACE"):
        monkeypatch.setenv(name, running.env[name])
    assert run(options, running.url) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def ordered(figures: dict[str, float]) -> bool:
    return 0 < figures["p50"] <= figures["p95"] <= figures["p99"] <= figures["max"]


def assert_run_figures(result: dict[str, Any], orders: int) -> None:
    """What every run reports: its pace, the projection, the groups, the CPU."""
    # Both figures are rounded to the hundredth, each by at most 0.005: their product is
    # off by at most 0.005 times the other, each way.
    assert result["orders_per_s"] * result["seconds"] == pytest.approx(
        orders, abs=0.005 * (result["orders_per_s"] + result["seconds"]) + 1e-4)
    assert result["seconds"] - 0.01 <= result["projected_in_postgres_s"] < 120
    assert result["pending_entries"] == dict.fromkeys(GROUPS, 0)
    samples = result["samples"]
    assert samples and all(set(s["backlog"]) == GROUPS for s in samples)
    assert [s["at_s"] for s in samples] == sorted(s["at_s"] for s in samples)
    # Not spawned: the bench knows no service's process, only the servers and itself.
    cpu = result["cpu_ms_per_order"]
    assert set(cpu) == {"generator", "redis", "postgres"}
    assert 0 < cpu["generator"] < 1000 and 0 < cpu["redis"] < 1000
    assert result["redis_commands_per_order"] > 10  # an order's appends and reads at least
    # Redis and PostgreSQL worked through the window, and no more than the cores allow
    # (give or take the 10 ms ticks the kernel counts in, per process).
    assert 0 < result["cores_busy"] <= (os.cpu_count() or 1) + 1


@pytest.mark.parametrize("ws", [False, True], ids=["http", "websocket"])
def test_bench_follows_every_order_and_reports_figures(
    running: System, ws: bool, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    times = tmp_path / "orders.jsonl"
    options = Options(orders=30, in_flight=10, ws=ws, as_json=True, warmup=5, sample_s=0.2,
                      orders_out=str(times))
    result = bench(running, options, monkeypatch, capsys)
    assert (result["accepted"], result["confirmed"], result["failed"], result["refused"]) == (
        30, 30, 0, 0)
    assert_run_figures(result, 30)
    # PostgreSQL's counters publish late but for a system the bench stops (--spawn).
    assert result["postgres_transactions_per_order"] is None
    assert result["postgres_rows_written_per_order"] is None
    end_to_end, overhead = result["end_to_end_ms"], result["overhead_ms"]
    assert ordered(end_to_end) and end_to_end["p50"] >= LEAST_MS and end_to_end["max"] < 30_000
    # The engine's own share: what is left of each order's time once its delays are taken.
    assert ordered(overhead) and overhead["p50"] <= end_to_end["p50"] - LEAST_MS
    # The share of the rate the delays allow: below 1, as the engine takes some of each
    # order's time.
    assert 0 < result["ideal_rate_share"] < 1
    stages = result["stages_ms"]
    assert set(stages) == MARKET_STAGES and all(ordered(s) for s in stages.values())
    assert stages["route"]["p50"] >= QUOTE_MS
    assert_orders_out(times, result)
    if ws:
        delivery = result["ws_delivery_ms"]
        assert ordered(delivery) and delivery["max"] < 10_000
        assert 1 <= result["ws_subscribers_peak"] <= 30
        # Every status the gateway sent in the run is in its histogram, and the share
        # within each bound grows with the bound.
        shares = result["gateway_sent_within_ms"]
        assert shares["inf"] == 1.0
        assert list(shares.values()) == sorted(shares.values())
    else:
        assert result["ws_delivery_ms"] == {} and result["ws_subscribers_peak"] == 0


def assert_orders_out(times: Path, result: dict[str, Any]) -> None:
    """The file holds the measured orders, each as the figures took it (the warm-up's
    left out), its events in the order they were made."""
    orders = [json.loads(line) for line in times.read_text().splitlines()]
    assert len(orders) == result["accepted"] == len({o["orderId"] for o in orders})
    kinds = ["OrderRequested", "Routed", "Built", "Submitted", "Confirmed"]
    for order in orders:
        # The slower venue's quote (each venue's is drawn within ±20% of the setting, and
        # timed as the router slept, which the loop's millisecond timer may end up to 1 ms
        # early), then the chain's time.
        assert order["status"] == "confirmed"
        assert order["simulatedMs"] > 0.8 * QUOTE_MS - 1 + EXECUTION_MS[0]
        made = [order["events"][kind] for kind in kinds]
        # A stream id counts whole milliseconds: the end may read up to 1 ms early.
        assert order["submittedAt"] < made[0] and made == sorted(made)
        assert made[-1] - 0.001 <= order["endedAt"]
    # The engine's overhead is each order's end to end less its delays.
    overheads = [(o["endedAt"] - o["submittedAt"]) * 1000 - o["simulatedMs"] for o in orders]
    assert round(max(overheads), 2) == result["overhead_ms"]["max"]


@pytest.mark.parametrize(("order_type", "resting", "ended"), [
    ("limit", False, "confirmed"), ("limit", True, "cancelled"), ("sniper", False, "confirmed"),
], ids=["marketable-limit", "resting-limit", "sniper"])
def test_bench_runs_limit_and_sniper_orders(
    running: System, order_type: str, resting: bool, ended: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    options = Options(orders=20, in_flight=10, as_json=True, warmup=2, sample_s=0.5,
                      order_type=order_type, resting=resting)
    result = bench(running, options, monkeypatch, capsys)
    assert result["order_type"] == order_type
    assert (result["accepted"], result[ended], result["failed"], result["refused"]) == (
        20, 20, 0, 0)
    assert_run_figures(result, 20)
    stages = result["stages_ms"]
    if resting:
        assert set(stages) == {"accept", "open", "cancel"}
        assert ordered(stages["open"]) and ordered(stages["cancel"])
    else:
        assert set(stages) == MARKET_STAGES | {"open", "fire"}
        assert ordered(stages["open"]) and ordered(stages["fire"])
    if order_type == "sniper":
        assert ordered(result["launch_to_submitted_ms"])
    else:
        assert result["launch_to_submitted_ms"] == {}
