"""CPU time used by processes on this machine and by Redis, and the commands Redis ran, for
the measuring tools: each reads the kernel's and the server's own counters, so the figures
cost the measured nothing.

Redis and PostgreSQL counters are server-wide: anything else using the same servers during
a run is counted too."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis


def cpu_seconds(pids: Mapping[str, Iterable[int]]) -> dict[str, float]:
    """CPU time (user + system) each named group of processes has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for name, group in pids.items():
        total = 0
        for pid in group:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a PostgreSQL backend that ended
            total += int(fields[11]) + int(fields[12])
        used[name] = total / tick
    return used


def postgres_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and _command(p).startswith(b"postgres")]


def _command(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


async def redis_cpu(redis: aioredis.Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def grown(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Each counter's growth. A counter first seen after ``before`` grew from 0; one that
    went down (a process that ended and took its CPU with it) counts as 0."""
    return {key: max(0.0, value - before.get(key, 0.0)) for key, value in after.items()}


# --- Redis nodes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCounters:
    cpu_s: float
    calls: dict[str, float]
    usec: dict[str, float]


def primaries(url: str, cluster: bool) -> dict[str, redis.Redis]:
    """A client for each primary, by ``host:port``: the one server, or every primary the
    cluster client knows of."""
    if not cluster:
        return {"single": redis.Redis.from_url(url, socket_timeout=5)}
    client: Any = redis.RedisCluster.from_url(url, socket_timeout=5)
    return {node.name: client.get_redis_connection(node) for node in client.get_primaries()}


def node_counters(node: redis.Redis) -> NodeCounters:
    cpu: Any = node.info("cpu")
    stats: Any = node.info("commandstats")
    calls, usec = {}, {}
    for key, figures in stats.items():
        name = key.removeprefix("cmdstat_")
        calls[name], usec[name] = float(figures["calls"]), float(figures["usec"])
    return NodeCounters(float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), calls, usec)


# --- processes --------------------------------------------------------------------------------


def pid_cpu(pids: Iterable[int]) -> dict[str, float]:
    """CPU seconds of each process, by pid: per process, so that one started in the window
    counts from 0."""
    return cpu_seconds({str(pid): [pid] for pid in pids})


def process_cpu(processes: Mapping[str, Iterable[int]],
                postgres_excluded: Sequence[int]) -> dict[str, dict[str, float]]:
    """Each group's processes' CPU seconds, and PostgreSQL's (every server process on this
    machine but ``postgres_excluded``: a tool's own backends are not the engine's work)."""
    groups = {service: pid_cpu(pids) for service, pids in processes.items()}
    groups["postgres"] = pid_cpu(p for p in postgres_pids() if p not in postgres_excluded)
    return groups


def pid_syscalls(pids: Iterable[int]) -> dict[str, tuple[int, int]]:
    """The read and write system calls each process has made so far, by pid (the kernel's
    ``syscr`` and ``syscw``): for a service, its socket reads and writes, so its round
    trips and the wakes that bring their replies."""
    made = {}
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/io").read_text().splitlines()
        except OSError:
            continue
        counters = dict(line.split(": ") for line in lines)
        made[str(pid)] = (int(counters["syscr"]), int(counters["syscw"]))
    return made


@dataclass(frozen=True)
class Snapshot:
    at: float
    nodes: dict[str, NodeCounters]
    cpu: dict[str, dict[str, float]]
    syscalls: dict[str, dict[str, tuple[int, int]]]


def snapshot(processes: Mapping[str, Iterable[int]], nodes: Mapping[str, redis.Redis],
             postgres_excluded: Sequence[int] = ()) -> Snapshot:
    return Snapshot(time.monotonic(), {name: node_counters(n) for name, n in nodes.items()},
                    process_cpu(processes, postgres_excluded),
                    {service: pid_syscalls(pids) for service, pids in processes.items()})


def cpu_used(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds each group of processes used between the snapshots."""
    return {group: sum(grown(before.cpu.get(group, {}), pids).values())
            for group, pids in after.cpu.items()}


def syscalls_made(before: Snapshot, after: Snapshot) -> dict[str, tuple[int, int]]:
    """The read and write system calls each group of processes made between the
    snapshots (a process started in between counts from 0)."""
    made = {}
    for group, pids in after.syscalls.items():
        earlier = before.syscalls.get(group, {})
        made[group] = (
            sum(max(0, r - earlier.get(pid, (0, 0))[0]) for pid, (r, _) in pids.items()),
            sum(max(0, w - earlier.get(pid, (0, 0))[1]) for pid, (_, w) in pids.items()))
    return made
