"""What one order costs and where the engine's capacity ends: the measurements behind the
capacity model of ``docs/performance.md``. Not a test (it only measures):

    python -m bench.capacity [--rate 300] [--seconds 30] [--orders-for-pg 20000]

with REDIS_URL (a single Redis, or any node of a Redis Cluster) and DATABASE_URL set. It
starts every service as its own process (quote and execution latency 0), then:

1. offers ``--rate`` market orders a second for ``--seconds`` and waits until every one has
   ended in PostgreSQL; over that window it counts Redis commands (``INFO commandstats``)
   and CPU (``INFO cpu``), summed over every primary, and the CPU of each service process
   and of PostgreSQL, each per order;
2. stops the persister, puts ``--orders-for-pg`` orders through the rest of the pipeline,
   starts the persister again and times it until PostgreSQL has them all: the rate
   PostgreSQL takes the projection's writes at, as the persister achieves it;
3. prints one JSON document: the figures, and the model derived from them (orders/s per
   shard, the expected throughput at 3, 6 and 12 shards, what binds first).

Redis and PostgreSQL counters are server-wide: anything else using the same servers during
a run is counted too, so run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench.cpu import Snapshot, cpu_used, grown, primaries, snapshot
from bench.harness import System, collections_paused, system
from bench.load import ENDS, Bench, Options
from shared.config import Settings, load
from shared.redis_client import is_cluster
from shared.stream import EventStore, partitions_of

SHARD_COUNTS = (3, 6, 12)
# Part of a core a shard is planned to use: room for bursts, failovers and resharding.
HEADROOM = 0.7
TOP_COMMANDS = 12
# The first orders pay for connections, script loading and the first market tick.
WARMUP_ORDERS = 20
# Beyond any gateway's accept rate: the pipeline, not the submitting, sets the pace.
FULL_SPEED = 1_000_000.0
NOTES = [
    "Redis and PostgreSQL counters are server-wide: other clients of the same servers count.",
    "INFO commandstats counts the commands a script runs as well as its EVALSHA.",
    "Redis figures are summed over every primary; per-shard orders/s = headroom / CPU per"
    " order, since N shards do N times the orders, each 1/N of every order's work.",
    "The PostgreSQL ceiling is ordersPerSSinceFirst: the persister's start-up left out.",
]
SYSTEM = {
    "OEE_QUOTE_LATENCY_MS": "0",
    "OEE_EXECUTION_LATENCY_MS": "0",
    "OEE_EXECUTOR_CONCURRENCY": "200",
    # The harness's 200 ms reads suit tests; production blocks for the default 1 s.
    "OEE_BLOCK_MS": "1000",
    # As `oee bench --spawn`: logging every order would be part of what is measured.
    "OEE_LOG_LEVEL": "WARNING",
    "OEE_RATE_LIMIT_PER_MIN": "10000000",
    "OEE_MAX_OPEN_ORDERS": "10000000",
}


# --- the model: pure arithmetic ---------------------------------------------------------


def per_order(totals: Mapping[str, float], orders: int) -> dict[str, float]:
    return {key: value / orders for key, value in totals.items()}


def shard_orders_per_s(redis_cpu_s_per_order: float, utilisation: float = 1.0) -> float:
    """Orders/s one shard carries with its core ``utilisation`` busy. On a cluster the CPU
    per order is the sum over shards: N shards share N times the orders, each shard doing
    1/N of every order's work, so each adds the same orders/s as a single Redis would."""
    if redis_cpu_s_per_order <= 0:
        raise ValueError("no Redis CPU was measured")
    return utilisation / redis_cpu_s_per_order


def cores_per_thousand(cpu_s_per_order: Mapping[str, float]) -> float:
    """Cores the given processes need together for 1,000 orders/s."""
    return sum(cpu_s_per_order.values()) * 1000


def expected(shards: int, per_shard: float, postgres_ceiling: float) -> tuple[float, str]:
    """Orders/s at ``shards`` shards, and which limit binds first. PostgreSQL is one server
    whatever the shard count: its ceiling stays while Redis's grows with the shards."""
    redis_limit = shards * per_shard
    if redis_limit < postgres_ceiling:
        return redis_limit, "redis"
    return postgres_ceiling, "postgres"


def capacity_model(redis_cpu_s_per_order: float, service_cpu_s_per_order: Mapping[str, float],
                   postgres_cpu_s_per_order: float, postgres_ceiling: float,
                   shard_counts: Iterable[int] = SHARD_COUNTS,
                   headroom: float = HEADROOM) -> dict[str, Any]:
    at_full = shard_orders_per_s(redis_cpu_s_per_order)
    service_cores = cores_per_thousand(service_cpu_s_per_order)
    at: dict[str, Any] = {}
    for shards in shard_counts:
        throughput, binds = expected(shards, at_full, postgres_ceiling)
        # Both limits planned at the same headroom, so the binding one stays the same.
        planned = throughput * headroom
        at[str(shards)] = {
            "redisLimitOrdersPerS": round(shards * at_full, 1),
            "postgresLimitOrdersPerS": round(postgres_ceiling, 1),
            "expectedOrdersPerS": round(throughput, 1),
            "bindsFirst": binds,
            "atHeadroomOrdersPerS": round(planned, 1),
            "serviceCoresAtHeadroom": round(planned * service_cores / 1000, 2),
        }
    return {
        "headroom": headroom,
        "perShardOrdersPerS": round(at_full, 1),
        "perShardOrdersPerSAtHeadroom": round(at_full * headroom, 1),
        "serviceCoresPer1000OrdersPerS": round(service_cores, 2),
        "postgresCoresPer1000OrdersPerS": round(postgres_cpu_s_per_order * 1000, 2),
        "postgresCeilingOrdersPerS": round(postgres_ceiling, 1),
        "shards": at,
    }


def pids_of(running: System) -> dict[str, list[int]]:
    """Each service's processes now: a persister started again is another process."""
    return {service: [p.pid for p in processes]
            for service, processes in running.processes.items()}


# --- load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submitted:
    ids: list[str]
    refused: int
    seconds: float


async def submit(url: str, settings: Settings, options: Options) -> Submitted:
    """Orders submitted open loop, as ``oee bench --rate`` submits them."""
    bench = Bench(url, url.replace("http", "ws", 1), settings, options)
    started = time.monotonic()
    await bench.submit_all()
    return Submitted(list(bench.tracks), bench.refused, time.monotonic() - started)


async def statuses(conn: psycopg.AsyncConnection[Any], ids: list[str]) -> dict[str, int]:
    cursor = await conn.execute(
        "SELECT status, count(*) FROM orders WHERE order_id = ANY(%s) GROUP BY status", (ids,))
    return {status: count for status, count in await cursor.fetchall()}


async def wait_ended(conn: psycopg.AsyncConnection[Any], ids: list[str], timeout_s: float,
                     seen_first: list[float] | None = None,
                     every_s: float = 0.2) -> dict[str, int]:
    """Until every order has ended in the projection; notes when the first had."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = await statuses(conn, ids)
        ended = sum(n for status, n in counts.items() if status in ENDS)
        if ended and seen_first is not None and not seen_first:
            seen_first.append(time.monotonic())
        if ended == len(ids):
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ended} of {len(ids)} orders ended after {timeout_s} s")
        await asyncio.sleep(every_s)


async def wait_executed(store: EventStore, timeout_s: float) -> int:
    """Until every group but the persister has nothing left; returns the persister's
    backlog then: the events waiting to be projected."""
    deadline = time.monotonic() + timeout_s
    while True:
        backlog = await store.backlog()
        if all(n == 0 for group, n in backlog.items() if group != "persister"):
            return backlog.get("persister", 0)
        if time.monotonic() > deadline:
            raise TimeoutError(f"backlog after {timeout_s} s: {backlog}")
        await asyncio.sleep(0.2)


# --- the two measurements -----------------------------------------------------------------


def redis_figures(before: Snapshot, after: Snapshot, orders: int) -> dict[str, Any]:
    calls: dict[str, float] = {}
    usec: dict[str, float] = {}
    cpu_by_node: dict[str, float] = {}
    for name, node in after.nodes.items():
        was = before.nodes[name]
        for command, grew in grown(was.calls, node.calls).items():
            calls[command] = calls.get(command, 0.0) + grew
        for command, grew in grown(was.usec, node.usec).items():
            usec[command] = usec.get(command, 0.0) + grew
        cpu_by_node[name] = max(0.0, node.cpu_s - was.cpu_s)
    cpu = sum(cpu_by_node.values())
    top = sorted(calls, key=lambda c: calls[c], reverse=True)[:TOP_COMMANDS]
    return {
        "primaries": len(after.nodes),
        "commandsPerOrder": round(sum(calls.values()) / orders, 2),
        "topCommandsPerOrder": {c: {"calls": round(calls[c] / orders, 3),
                                    "usec": round(usec.get(c, 0.0) / orders, 2)} for c in top},
        "cpuMsPerOrder": round(cpu / orders * 1000, 4),
        # How evenly the shards share the work: the busiest one saturates first.
        "cpuShareByNode": {n: round(s / cpu, 3) if cpu else 0.0 for n, s in cpu_by_node.items()},
        "cpuSeconds": round(cpu, 3),
    }


async def measure_load(running: System, settings: Settings, nodes: Mapping[str, redis.Redis],
                       conn: psycopg.AsyncConnection[Any], own: Sequence[int],
                       rate: float, seconds: float) -> dict[str, Any]:
    warmup = await submit(running.url, settings, Options(orders=WARMUP_ORDERS, rate=100))
    await wait_ended(conn, warmup.ids, 120)
    before = snapshot(pids_of(running), nodes, own)
    load = await submit(running.url, settings, Options(rate=rate, duration_s=seconds))
    counts = await wait_ended(conn, load.ids, 600)
    after = snapshot(pids_of(running), nodes, own)
    orders = len(load.ids)
    cpu = cpu_used(before, after)
    window = after.at - before.at
    return {
        "offeredPerS": rate, "accepted": orders, "refused": load.refused,
        "statuses": counts, "submitSeconds": round(load.seconds, 2),
        # From the first submit until the last order ended in PostgreSQL.
        "windowSeconds": round(window, 2),
        "ordersPerS": round(orders / window, 1),
        "redis": redis_figures(before, after, orders),
        "cpuMsPerOrder": {group: round(s / orders * 1000, 4) for group, s in cpu.items()},
        "cpuCoresBusy": {group: round(s / window, 3) for group, s in cpu.items()},
    }


async def measure_postgres(running: System, settings: Settings,
                           conn: psycopg.AsyncConnection[Any], own: Sequence[int],
                           orders: int, persisters: int) -> dict[str, Any]:
    persister = running.processes["persister"][0]
    # SIGTERM, not kill -9: it acknowledges what it holds, so nothing waits to be claimed.
    persister.send_signal(signal.SIGTERM)
    await asyncio.to_thread(persister.wait, 60)
    store = EventStore(settings)
    try:
        queued = await submit(running.url, settings, Options(orders=orders, rate=FULL_SPEED))
        events = await wait_executed(store, 600)
    finally:
        await store.close()
    before = snapshot(pids_of(running), {}, own)
    running.start("persister", 0)
    # More writers: whether PostgreSQL takes more than one persister gives it.
    for _ in range(persisters - 1):
        running.start("persister")
    first: list[float] = []
    # Polled often: a drain of a few thousand orders lasts about a second.
    counts = await wait_ended(conn, queued.ids, 1200, first, every_s=0.05)
    after = snapshot(pids_of(running), {}, own)
    cursor = await conn.execute("SELECT count(*) FROM events WHERE order_id = ANY(%s)",
                                (queued.ids,))
    row = await cursor.fetchone()
    projected_events = int(row[0]) if row else 0
    drain = after.at - before.at
    cpu = cpu_used(before, after)
    n = len(queued.ids)
    return {
        "orders": n, "persisters": persisters, "refused": queued.refused, "statuses": counts,
        "submitSeconds": round(queued.seconds, 2),
        "eventsQueued": events, "eventsProjected": projected_events,
        # From starting the persister (its start-up included) until all were projected.
        "drainSeconds": round(drain, 2),
        "ordersPerS": round(n / drain, 1), "eventsPerS": round(projected_events / drain, 1),
        # From the first order seen ended, start-up left out (the ceiling the model uses).
        "sinceFirstSeconds": round(after.at - first[0], 2) if first else None,
        "ordersPerSSinceFirst": round(n / (after.at - first[0]), 1) if first else None,
        "eventsPerSSinceFirst": (round(projected_events / (after.at - first[0]), 1)
                                 if first else None),
        # Which one was the limit: a process near 1.0 core was.
        "cpuCoresBusy": {g: round(cpu.get(g, 0.0) / drain, 3) for g in ("persister", "postgres")},
    }


async def measure(running: System, args: argparse.Namespace, cluster: bool) -> dict[str, Any]:
    settings = load(running.env)
    nodes = primaries(settings.redis_url, cluster)
    async with await psycopg.AsyncConnection.connect(settings.database_url,
                                                     autocommit=True) as conn:
        cursor = await conn.execute("SELECT pg_backend_pid()")
        row = await cursor.fetchone()
        own = [int(row[0])] if row else []
        load_figures = await measure_load(running, settings, nodes, conn, own, args.rate,
                                          args.seconds)
        postgres = await measure_postgres(running, settings, conn, own, args.orders_for_pg,
                                          args.persisters)
    for node in nodes.values():
        node.close()
    orders_cpu = load_figures["cpuMsPerOrder"]
    services = {g: ms / 1000 for g, ms in orders_cpu.items() if g != "postgres"}
    ceiling = postgres["ordersPerSSinceFirst"] or postgres["ordersPerS"]
    return {
        "redis": {"cluster": cluster, "primaries": len(nodes),
                  "partitions": partitions_of(settings)},
        "notes": NOTES,
        "settings": {**SYSTEM, "rate": args.rate, "seconds": args.seconds,
                     "ordersForPostgres": args.orders_for_pg, "persisters": args.persisters},
        "load": load_figures,
        "postgresWrite": postgres,
        "model": capacity_model(load_figures["redis"]["cpuMsPerOrder"] / 1000, services,
                                orders_cpu.get("postgres", 0.0) / 1000, ceiling),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--orders-for-pg", type=int, default=20000)
    parser.add_argument("--persisters", type=int, default=1,
                        help="persister processes draining the backlog")
    args = parser.parse_args()
    redis_url, database_url = os.environ["REDIS_URL"], os.environ["DATABASE_URL"]
    cluster = is_cluster(redis_url)
    namespace = f"capacity-{secrets.token_hex(3)}"
    logs = Path(tempfile.mkdtemp(prefix="oee-capacity-"))
    with system(redis_url, database_url, namespace, logs, 1, **SYSTEM) as running, \
            collections_paused():
        result = asyncio.run(measure(running, args, cluster))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
