"""``oee bench --curve``: what an order costs as the load grows. The same measurement at a
few steady rates (open loop) and at saturation (closed loop: a burst with many in flight),
each against a freshly spawned system with zero simulated delays, so every figure is the
engine's own work; one table row (or one JSON line) per load."""

from __future__ import annotations

import json
import sys

import msgspec

from bench.load import Options, measure
from bench.report import Result

# Orders per second offered, open loop: a light load, a middling one, and one near what
# two cores carry.
LEVELS: tuple[float, ...] = (20.0, 250.0, 1000.0)
DURATION_S = 20.0
# Saturation, closed loop: as many in flight as the executor takes at once
# (SYSTEM_ENV), so the engine never waits for the load generator.
BURST_ORDERS = 20_000
BURST_IN_FLIGHT = 200
# As the figures of docs/performance.md: one executor may hold 200 orders in flight.
SYSTEM_ENV = {"OEE_EXECUTOR_CONCURRENCY": "200"}
ENGINE = ("gateway", "router", "executor", "persister", "trigger", "redis", "postgres")
HEADER = ("load", "orders/s", "CPU ms/order", "gateway", "router", "executor",
          "persister", "trigger", "Redis", "PG", "generator", "cores busy",
          "Redis cmds/order", "PG xacts/order", "PG rows/order", "e2e p50 ms", "e2e p99 ms")


def loads(rates: tuple[float, ...], duration_s: float, burst: int,
          base: Options) -> list[tuple[str, Options]]:
    """Each load's name and its run: the rates, then the burst."""
    fixed = msgspec.structs.replace(
        base, spawn=True, quote_latency_ms="0", execution_latency_ms="0",
        env={**SYSTEM_ENV, **base.env}, ws=False, order_type="market", resting=False,
        # The table is the output: no progress lines between its rows.
        as_json=True)
    runs = [(f"{rate:g}/s", msgspec.structs.replace(fixed, rate=rate, duration_s=duration_s,
                                                    orders=0)) for rate in rates]
    runs.append((f"burst {burst}", msgspec.structs.replace(
        fixed, rate=0.0, duration_s=0.0, orders=burst, in_flight=BURST_IN_FLIGHT)))
    return runs


def engine_cpu_ms(result: Result) -> float:
    """CPU ms per order of the engine's processes, Redis and PostgreSQL: all but the
    load generator."""
    return round(sum(ms for kind, ms in result.cpu_ms_per_order.items()
                     if kind != "generator"), 4)


def row(load: str, result: Result) -> tuple[str, ...]:
    cpu = result.cpu_ms_per_order
    e2e = result.end_to_end_ms
    return (load, f"{result.orders_per_s:g}", f"{engine_cpu_ms(result):g}",
            *(f"{cpu.get(kind, 0.0):g}" for kind in ENGINE), f"{cpu.get('generator', 0.0):g}",
            f"{result.cores_busy}", f"{result.redis_commands_per_order}",
            f"{result.postgres_transactions_per_order}",
            f"{result.postgres_rows_written_per_order}",
            f"{e2e.get('p50')}", f"{e2e.get('p99')}")


def line(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def as_json(load: str, result: Result) -> str:
    """The run's whole result, its load named first, and the engine's CPU per order."""
    figures = msgspec.to_builtins(result)
    return json.dumps({"load": load, "cpu_ms_per_order_engine": engine_cpu_ms(result),
                       **figures})


def run(base: Options, rates: tuple[float, ...], duration_s: float, burst: int,
        json_lines: bool) -> int:
    """Each load in turn, its row printed as soon as it is measured (a curve takes minutes)."""
    if not json_lines:
        print(line(HEADER))
        print(line(("---",) * len(HEADER)), flush=True)
    for load, options in loads(rates, duration_s, burst, base):
        sys.stderr.write(f"bench: {load}\n")
        result = measure(options, None)
        print(as_json(load, result) if json_lines else line(row(load, result)), flush=True)
    return 0
