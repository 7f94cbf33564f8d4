"""What an idle engine costs: a fresh system, as ``oee bench --spawn`` starts it, left
without load; then the CPU milliseconds a second of each kind of process, of Redis and of
PostgreSQL, and the Redis commands a second. Not a test (it only measures):

    python -m bench.idle [--seconds 60] [--settle 5] [--json]

The processes' CPU is read from the scheduler's own count (``/proc/PID/task/*/schedstat``,
in nanoseconds): the kernel's ticks of 10 ms would swamp what an idle process uses.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import msgspec

from bench.cpu import postgres_pids, primaries, snapshot
from bench.load import Options, spawned
from bench.report import redis_commands, redis_cpu_s
from shared.redis_client import is_cluster


class Idle(msgspec.Struct, kw_only=True):
    seconds: float
    # CPU ms a second, by kind of process ("redis", "postgres" and each service's).
    cpu_ms_per_s: dict[str, float]
    redis_commands_per_s: float


def cpu_ns(pids: Iterable[int]) -> int:
    """CPU nanoseconds every thread of these processes has run so far."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(task.read_text().split()[0])
            except OSError:
                continue  # a thread or a backend that ended
    return total


def measure(seconds: float, settle_s: float) -> Idle:
    with spawned(Options(spawn=True)) as (system, settings, _):
        groups: Mapping[str, list[int]] = {
            service: [p.pid for p in processes]
            for service, processes in system.processes.items()}
        nodes = primaries(settings.redis_url, is_cluster(settings.redis_url))
        time.sleep(settle_s)  # past the start's own work: migrations, groups, first reads
        groups = {**groups, "postgres": postgres_pids()}
        before = {kind: cpu_ns(pids) for kind, pids in groups.items()}
        redis_before = snapshot({}, nodes)
        time.sleep(seconds)
        after = {kind: cpu_ns(pids) for kind, pids in groups.items()}
        redis_after = snapshot({}, nodes)
        for node in nodes.values():
            node.close()
    elapsed = redis_after.at - redis_before.at
    cpu = {kind: (after[kind] - before[kind]) / 1e6 / elapsed for kind in groups}
    cpu["redis"] = redis_cpu_s(redis_before, redis_after) * 1000 / elapsed
    commands = redis_commands(redis_before, redis_after)
    return Idle(seconds=round(elapsed, 1),
                cpu_ms_per_s={kind: round(ms, 2) for kind, ms in sorted(cpu.items())},
                redis_commands_per_s=round(commands / elapsed, 2))


def render(idle: Idle) -> str:
    engine = sum(idle.cpu_ms_per_s.values())
    lines = [f"idle for {idle.seconds:.0f} s: {engine:.2f} ms of CPU a second in all"]
    lines += [f"  {kind:10s} {ms:6.2f} ms/s" for kind, ms in idle.cpu_ms_per_s.items()]
    lines.append(f"  Redis ran {idle.redis_commands_per_s:.2f} commands a second")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to watch")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds to let the system settle first")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args()
    idle = measure(args.seconds, args.settle)
    print(msgspec.json.encode(idle).decode() if args.json else render(idle))


if __name__ == "__main__":
    main()
