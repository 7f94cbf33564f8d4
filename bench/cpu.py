"""CPU time used by processes on this machine and by Redis, for the measuring tools: each
reads the kernel's and the server's own counters, so the figures cost the measured nothing."""

from __future__ import annotations

import os
from pathlib import Path

import redis.asyncio as aioredis


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
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
