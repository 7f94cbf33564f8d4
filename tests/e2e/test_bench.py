"""``oee bench`` against a running system: it counts, times and samples what it ran."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from bench.load import Options, run
from services.cli.launcher import System, system


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    namespace = f"bench-test-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, tmp_path_factory.mktemp("logs")) as started:
        yield started


@pytest.mark.parametrize("ws", [False, True], ids=["http", "websocket"])
def test_bench_follows_every_order_and_reports_figures(
    running: System, ws: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("REDIS_URL", "DATABASE_URL", "OEE_NAMESPACE"):
        monkeypatch.setenv(name, running.env[name])
    options = Options(orders=30, in_flight=10, ws=ws, as_json=True, warmup=5, sample_s=0.2)
    assert run(options, running.url) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["accepted"], result["confirmed"], result["refused"]) == (30, 30, 0)
    assert result["orders_per_s"] > 0
    assert set(result["overhead_ms"]) >= {"p50", "p95", "p99"}
    assert result["projected_in_postgres_s"] is not None
    assert all(count == 0 for count in result["pending_entries"].values())
    assert result["samples"] and "executor" in result["samples"][-1]["backlog"]
    if ws:
        assert result["ws_delivery_ms"]["p99"] >= 0
        assert result["ws_subscribers_peak"] >= 1
        # Every status the gateway sent in the run is in its histogram.
        assert result["gateway_sent_within_ms"]["inf"] == 1.0


@pytest.mark.parametrize(("order_type", "resting", "ended"), [
    ("limit", False, "confirmed"), ("limit", True, "cancelled"), ("sniper", False, "confirmed"),
], ids=["marketable-limit", "resting-limit", "sniper"])
def test_bench_runs_limit_and_sniper_orders(
    running: System, order_type: str, resting: bool, ended: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("REDIS_URL", "DATABASE_URL", "OEE_NAMESPACE"):
        monkeypatch.setenv(name, running.env[name])
    options = Options(orders=20, in_flight=10, as_json=True, warmup=2, sample_s=0.5,
                      order_type=order_type, resting=resting)
    assert run(options, running.url) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["order_type"] == order_type
    assert (result["accepted"], result[ended], result["refused"]) == (20, 20, 0)
    assert result["stages_ms"]["open"]["p99"] >= 0
    if resting:
        assert result["stages_ms"]["cancel"]["p99"] >= 0
    else:
        assert result["stages_ms"]["fire"]["p99"] >= 0
    if order_type == "sniper":
        assert result["launch_to_submitted_ms"]["p99"] > 0
    else:
        assert result["launch_to_submitted_ms"] == {}
