"""What ``OEE_REDIS_WAIT_REPLICAS`` costs an append, on a local cluster of 3 primaries each
with a replica: append latency one at a time, and appends per second with many appenders
at once, with WAIT 0 and 1. Not a test (it only measures):

    python -m bench.wait [--seconds 10] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.events import order
from services.cli.embedded import EmbeddedCluster
from shared.config import load
from shared.stream import EventStore


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, wait: int, seconds: float, concurrency: int) -> str:
    settings = load({"REDIS_URL": url, "OEE_NAMESPACE": f"wait-{secrets.token_hex(3)}",
                     "OEE_REDIS_WAIT_REPLICAS": str(wait)})
    store = EventStore(settings)
    try:
        await store.check_partitions()
        alone = []
        for _ in range(500):  # one at a time: the round trip, and the replica's ack
            started = time.perf_counter()
            await store.append([order(str(uuid.uuid4()))])
            alone.append(time.perf_counter() - started)
        together: list[float] = []
        deadline = time.monotonic() + seconds

        async def appender() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                await store.append([order(str(uuid.uuid4()))])
                together.append(time.perf_counter() - started)
        begun = time.monotonic()
        await asyncio.gather(*(appender() for _ in range(concurrency)))
        rate = len(together) / (time.monotonic() - begun)
    finally:
        async for key in store.redis.scan_iter(match=f"{settings.namespace}:*", count=1000):
            await store.redis.delete(key)
        await store.close()
    ms = 1000
    return (f"WAIT {wait}: one at a time p50 {statistics.median(alone) * ms:.2f} ms, "
            f"p99 {percentile(alone, 0.99) * ms:.2f} ms; {concurrency} at once "
            f"{rate:,.0f} appends/s, p50 {statistics.median(together) * ms:.2f} ms, "
            f"p99 {percentile(together, 0.99) * ms:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oee-wait-") as folder, EmbeddedCluster(
            Path(folder), primaries=3, replicas=1).start() as cluster:
        for wait in (0, 1):
            print(asyncio.run(measure(cluster.url, wait, args.seconds, args.concurrency)),
                  flush=True)


if __name__ == "__main__":
    main()
