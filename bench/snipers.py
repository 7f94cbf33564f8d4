"""Measures a launch with many snipers waiting, with every service as its own process: from
``PoolLaunched`` to each sniper's ``Submitted``. Quote and execution latencies are 0, so the
figure is the engine's own time. ``python -m bench.snipers --snipers 1000
--launches 5`` (needs REDIS_URL and DATABASE_URL) prints each launch's figures and the
spread of their p99s."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import base58
import httpx
import msgspec

from bench.cpu import cpu_seconds, postgres_pids, redis_cpu
from bench.harness import collections_paused, system
from bench.limits import percentile
from services.trigger.registry import Registry
from shared.config import load
from shared.launches import Launches, PoolLaunched
from shared.route import Dex
from shared.stream import EventStore

# How long the trigger may take to watch every sniper of a launch before the measure gives up.
WATCHED_WITHIN_S = 60.0


async def measure(url: str, redis_url: str, namespace: str, snipers: int, launches: int,
                  pids: dict[str, list[int]], venue: Dex = "raydium") -> dict[str, object]:
    """``launches`` launches one after the other on the same running system, each with its
    own ``snipers``: the first meets fresh processes (their connections still to open),
    the later ones a system that has been running."""
    # The system's own settings (its partition count among them), in its namespace.
    store = EventStore(msgspec.structs.replace(load(), redis_url=redis_url,
                                               namespace=namespace))
    try:
        runs = [await launch_once(url, store, namespace, snipers, f"SNIPE{n}", pids, venue)
                for n in range(launches)]
    finally:
        await store.close()
    p99s = sorted(float(run["launchToSubmittedMs"]["p99"]) for run in runs)  # type: ignore[index]
    return {"launches": runs,
            "launchToSubmittedP99Ms": {"min": p99s[0], "median": statistics.median(p99s),
                                       "max": p99s[-1]}}


async def launch_once(url: str, store: EventStore, namespace: str, snipers: int,
                      symbol: str, pids: dict[str, list[int]],
                      venue: Dex = "raydium") -> dict[str, object]:
    mint = base58.b58encode(secrets.token_bytes(32)).decode()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async def one(n: int) -> str:
            response = await client.post("/orders/execute", json={
                "type": "sniper", "tokenIn": "SOL", "tokenOut": mint, "amount": "0.01",
                "slippage": 0.05})
            assert response.status_code == 202, response.text
            order_id: str = response.json()["orderId"]
            return order_id
        ids = [await one(n) for n in range(snipers)]
    registry = Registry(store.redis, namespace)
    # Another process's progress, seen only in Redis: polled.
    watched_by = time.monotonic() + WATCHED_WITHIN_S
    while (watched := await registry.count()) < snipers:
        if time.monotonic() > watched_by:
            raise TimeoutError(f"the trigger watches {watched} of {snipers} snipers after "
                               f"{WATCHED_WITHIN_S:.0f} s")
        await asyncio.sleep(0.05)
    launches = Launches(store.redis, namespace)
    launch = PoolLaunched(mint=mint, symbol=symbol, decimals=6, venue=venue,
                          price="0.0001", liquidity="100000")
    position = await store.heads()
    pids = {**pids, "postgres": postgres_pids()}  # the persister's backend is open by now
    before = cpu_seconds(pids)
    redis_before = await redis_cpu(store.redis)
    await launches.append(launch)
    deadline = time.monotonic() + 120
    # Per order, from the launch to the first event of each type, as the log shows them.
    # What is new is read every 0.1 s, so watching costs the system under test little:
    # reading each order's history every 0.2 s, or every entry as soon as it is appended,
    # took Redis and a core away from it.
    waiting = set(ids)
    reached: dict[str, dict[str, float]] = {order_id: {} for order_id in ids}
    while waiting and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        for partition, entry_id, order_id, data in await store.tail_raw(
                position, snipers * 10, list(store.partitions), block_ms=1000):
            position = position.advanced(partition, entry_id)
            if order_id in reached:
                seen = _SEEN.decode(data)
                reached[order_id].setdefault(
                    seen.type, (seen.at - launch.at).total_seconds() * 1000)
                if seen.type == "Submitted":
                    waiting.discard(order_id)
    window_s = (time.time() - launch.at.timestamp())
    after = cpu_seconds(pids)
    # To the 0.1 ms: a launch of a few snipers takes less than a 10 ms tick of a process,
    # and Redis counts in microseconds.
    cpu = {name: round(after[name] - before[name], 4) for name in pids}
    cpu["redis"] = round(await redis_cpu(store.redis) - redis_before, 4)

    def figures(kind: str) -> dict[str, float]:
        values = [r[kind] for r in reached.values() if kind in r]
        return {"p50": round(percentile(values, 50), 1), "p99": round(percentile(values, 99), 1),
                "max": round(max(values, default=0.0), 1)}

    return {"snipers": snipers, "submitted": snipers - len(waiting),
            "launchToSubmittedMs": figures("Submitted"),
            # Where the time goes: the launch to each earlier step.
            "launchToTriggeredMs": figures("Triggered"), "launchToRoutedMs": figures("Routed"),
            "launchToBuiltMs": figures("Built"),
            # CPU seconds each process used from the launch until the last Submitted was
            # read (up to 0.1 s after it was appended).
            "windowS": round(window_s, 2), "cpuSeconds": cpu}


class _Seen(msgspec.Struct):
    """The two fields of an event the figures need."""

    type: str
    at: datetime


_SEEN = msgspec.json.Decoder(_Seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--snipers", type=int, default=1000)
    parser.add_argument("--executors", type=int, default=1)
    parser.add_argument("--concurrency", default="1000")
    parser.add_argument("--venue", choices=("raydium", "meteora"), default="raydium",
                        help="the launched pool's venue")
    parser.add_argument("--launches", type=int, default=1,
                        help="launches one after the other on the same running system")
    args = parser.parse_args()
    namespace = f"snipe-{secrets.token_hex(3)}"
    redis_url, database_url = os.environ["REDIS_URL"], os.environ["DATABASE_URL"]
    with system(redis_url, database_url, namespace, Path(tempfile.mkdtemp()),
                executors=args.executors, OEE_QUOTE_LATENCY_MS="0",
                OEE_EXECUTION_LATENCY_MS="0", OEE_EXECUTOR_CONCURRENCY=args.concurrency,
                OEE_RATE_LIMIT_PER_MIN="1000000",
                OEE_MAX_OPEN_ORDERS="1000000") as running:
        pids = {name: [p.pid for p in group] for name, group in running.processes.items()}
        with collections_paused():
            result = asyncio.run(measure(running.url, redis_url, namespace, args.snipers,
                                         args.launches, pids, args.venue))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
