"""``oee bench --curve``'s loads and its table, without running them."""

from __future__ import annotations

import argparse

import pytest

from bench import curve
from bench.commands import rates
from bench.load import Options
from bench.report import Result


def test_each_level_then_the_burst_runs_on_a_fresh_system_with_zero_delays() -> None:
    runs = curve.loads((20.0, 250.0), 5.0, 1000, Options(warmup=7, executors=2))
    assert [name for name, _ in runs] == ["20/s", "250/s", "burst 1000"]
    for _, options in runs:
        assert options.spawn and options.warmup == 7 and options.executors == 2
        assert (options.quote_latency_ms, options.execution_latency_ms) == ("0", "0")
        assert options.env["OEE_EXECUTOR_CONCURRENCY"] == "200"
    assert [(o.rate, o.duration_s, o.orders) for _, o in runs[:2]] == [
        (20.0, 5.0, 0), (250.0, 5.0, 0)]
    burst = runs[2][1]
    assert (burst.rate, burst.orders, burst.in_flight) == (0.0, 1000, curve.BURST_IN_FLIGHT)


def test_a_row_has_a_cell_per_heading_and_the_engine_total_leaves_out_the_generator() -> None:
    result = Result(
        accepted=10, confirmed=10, failed=0, refused=0, seconds=1.0, orders_per_s=10.0,
        end_to_end_ms={"p50": 5.0, "p99": 9.0}, overhead_ms={}, stages_ms={},
        projected_in_postgres_s=1.0, pending_entries={},
        cpu_ms_per_order={"gateway": 1.0, "postgres": 0.5, "generator": 4.0},
        cores_busy=0.25, redis_commands_per_order=40.0,
        postgres_transactions_per_order=0.2, postgres_rows_written_per_order=7.0)
    assert curve.engine_cpu_ms(result) == 1.5
    cells = curve.row("10/s", result)
    assert len(cells) == len(curve.HEADER)
    assert dict(zip(curve.HEADER, cells, strict=True)) == {
        "load": "10/s", "orders/s": "10", "CPU ms/order": "1.5", "gateway": "1",
        "router": "0", "executor": "0", "persister": "0", "trigger": "0", "Redis": "0",
        "PG": "0.5", "generator": "4", "cores busy": "0.25", "Redis cmds/order": "40.0",
        "PG xacts/order": "0.2", "PG rows/order": "7.0", "e2e p50 ms": "5.0",
        "e2e p99 ms": "9.0"}


@pytest.mark.parametrize("text", ["", "20,x", "0", "20,-5"])
def test_levels_are_positive_rates(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        rates(text)


def test_levels_are_read_in_order() -> None:
    assert rates("20,50") == (20.0, 50.0)
