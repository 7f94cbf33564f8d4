"""The executor's own CPU for a burst of orders, with no other service running: the
measurement behind "the executor alone" in ``docs/performance.md``. Not a test (it only
measures):

    python -m bench.executor [--orders 1000] [--bursts 5] [--profile FILE]

with REDIS_URL set. It starts one executor as its own process (quote and execution latency
0, ``OEE_EXECUTOR_CONCURRENCY`` = ``--orders``), then, ``--bursts`` times, appends that many
routed market orders at once, as a launch hands the executor its snipers, and waits until
every one is confirmed in the log. It prints, per burst, the time from the append to the
last ``Confirmed`` and the executor's CPU (from ``/proc``, up to 0.3 s after it, so the
acknowledgements count); ``--profile`` records the executor with py-spy meanwhile (raw
collapsed stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid

from redis.exceptions import ResponseError

from bench.cpu import cpu_seconds
from bench.events import order, route_now
from bench.harness import forget
from services.cli.embedded import free_port
from shared.config import Settings
from shared.stream import EventStore

# Events the executor appends to an order: Built, Submitted, Confirmed.
STEPS = 3


async def burst(store: EventStore, settings: Settings, orders: int,
                pid: int) -> dict[str, float]:
    events = []
    for _ in range(orders):
        requested = order(str(uuid.uuid4()), amount_in=10_000_000)
        events += [requested, route_now(requested, settings)]
    logs = [store.log_key(p) for p in store.partitions]

    async def logged() -> int:
        return sum([await store.redis.xlen(log) for log in logs])

    expected = await logged() + len(events) + STEPS * orders
    before = cpu_seconds({"executor": [pid]})["executor"]
    started = time.monotonic()
    await store.append(events)
    # Another process's progress, seen only in Redis: polled.
    while await logged() < expected:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    seconds = time.monotonic() - started
    await asyncio.sleep(0.3)
    used = cpu_seconds({"executor": [pid]})["executor"] - before
    return {"lastConfirmedS": round(seconds, 3), "cpuS": round(used, 3),
            "cpuMsPerOrder": round(used / orders * 1000, 3)}


async def wait_for_group(store: EventStore, group: str) -> None:
    """Until the executor has created its consumer group on every partition's queue."""
    for partition in store.partitions:
        while True:
            try:
                if await store.redis.xinfo_groups(store.queue_key(group, partition)):
                    break
            except ResponseError:  # the queue does not exist yet
                pass
            await asyncio.sleep(0.05)


async def measure(args: argparse.Namespace) -> dict[str, object]:
    namespace = f"executor-{secrets.token_hex(3)}"
    settings = Settings(redis_url=os.environ["REDIS_URL"], namespace=namespace, seed="measure")
    env = {**os.environ, "OEE_NAMESPACE": namespace, "OEE_SEED": settings.seed,
           "OEE_QUOTE_LATENCY_MS": "0", "OEE_EXECUTION_LATENCY_MS": "0",
           "OEE_EXECUTOR_CONCURRENCY": str(args.orders), "OEE_LOG_LEVEL": "WARNING",
           "OEE_METRICS_PORT": str(free_port())}
    store = EventStore(settings)
    executor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "executor", env=env)
    spy = None
    try:
        await wait_for_group(store, "executor")
        if args.profile:
            py_spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
            spy = await asyncio.create_subprocess_exec(
                py_spy, "record", "-p", str(executor.pid), "-r", "1000", "-f", "raw",
                "-o", args.profile, "--nonblocking",
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1)  # py-spy attaching
        runs = [await burst(store, settings, args.orders, executor.pid)
                for _ in range(args.bursts)]
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output and exits
            await spy.wait()
        executor.terminate()
        await executor.wait()
        await store.close()
        forget(settings)  # a shared Redis keeps nothing of the run
    return {"orders": args.orders, "bursts": runs,
            "cpuMsPerOrderMedian": statistics.median(r["cpuMsPerOrder"] for r in runs),
            "lastConfirmedSMedian": statistics.median(r["lastConfirmedS"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--profile", help="py-spy's raw output, written here")
    print(json.dumps(asyncio.run(measure(parser.parse_args())), indent=1))


if __name__ == "__main__":
    main()
