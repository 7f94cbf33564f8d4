"""An idle system makes a few Redis calls a second per process, not a busy poll: with 16
partitions and one consumer per group, on a single Redis and on a cluster.

Each process's calls are counted by the servers themselves: ``CLIENT LIST`` gives every
connection's ``tot-cmds`` (Valkey), and the connection's port names the process that owns
it (``/proc``)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from bench.harness import System, system
from services.cli.embedded import EmbeddedRedis

pytestmark = pytest.mark.e2e

# Reads on a cluster block for OEE_BLOCK_MS x partitions (16 s here) and are counted when
# they return: a window this short catches the claims, a 32 s one the reads too.
WINDOW_S = float(os.environ.get("OEE_IDLE_WINDOW_S", "10"))
# A blocking read per OEE_BLOCK_MS, claims every third of OEE_CLAIM_IDLE_MS (one call per
# partition), a trim every 30 s: a few calls a second at most.
MOST_PER_S = 5.0
IDLE = {"OEE_PARTITIONS": "16", "OEE_BLOCK_MS": "1000", "OEE_CLAIM_IDLE_MS": "30000"}


def ports_of(pid: int) -> set[int]:
    """The local TCP ports of a process's sockets."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def commands_by_port(nodes: list[int]) -> Counter[int]:
    """``tot-cmds`` of every client connection of these servers, by its port."""
    counts: Counter[int] = Counter()
    for port in nodes:
        client = redis.Redis(port=port, decode_responses=True)
        try:
            for entry in client.client_list():
                # A connection still being set up may list no address yet: not a client's.
                _, _, client_port = str(entry.get("addr", "")).rpartition(":")
                if client_port.isdigit():
                    counts[int(client_port)] += int(entry.get("tot-cmds", 0))
        finally:
            client.close()
    return counts


def commandstats(nodes: list[int]) -> Counter[str]:
    """Calls per command, summed over these servers (our own CLIENT and INFO included)."""
    counts: Counter[str] = Counter()
    for port in nodes:
        client = redis.Redis(port=port, decode_responses=True)
        try:
            for name, stats in client.info("commandstats").items():
                counts[name.removeprefix("cmdstat_")] += int(stats["calls"])
        finally:
            client.close()
    return counts


async def idle_calls_per_s(running: System, nodes: list[int],
                           window_s: float = WINDOW_S) -> dict[str, float]:
    """Each process's Redis calls per second over ``window_s`` of an idle system."""
    processes = {f"{name}-{i}": p.pid for name, ps in running.processes.items()
                 for i, p in enumerate(ps)}
    before, commands_before = commands_by_port(nodes), commandstats(nodes)
    started = time.monotonic()
    await asyncio.sleep(window_s)  # the window measured, not a wait for something
    after, commands_after = commands_by_port(nodes), commandstats(nodes)
    elapsed = time.monotonic() - started
    if window_s == WINDOW_S:
        print("per command, all processes, per second: " + ", ".join(
            f"{name} {(commands_after[name] - commands_before.get(name, 0)) / elapsed:.2f}"
            for name in sorted(commands_after)
            if commands_after[name] > commands_before.get(name, 0)))
    rates = {}
    for name, pid in processes.items():
        ports = ports_of(pid)
        calls = sum(after[p] - before.get(p, 0) for p in ports if p in after)
        rates[name] = calls / elapsed
    return rates


def cluster_ports(url: str) -> list[int]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        nodes: dict[str, object] = client.execute_command("CLUSTER NODES")  # parsed, by address
        return [int(address.split("@")[0].rsplit(":", 1)[1]) for address in nodes]
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["single", "cluster"])
async def test_an_idle_system_makes_a_few_redis_calls_a_second_per_process(
    kind: str, cluster_url: str, database_url: str, server_dir: Path, tmp_path: Path
) -> None:
    namespace = f"idle-{secrets.token_hex(4)}"
    with EmbeddedRedis(server_dir / "redis") as own:
        if kind == "single":
            url, nodes = own.start().url, [own.port]
        else:
            url, nodes = cluster_url, cluster_ports(cluster_url)
        with system(url, database_url, namespace, tmp_path / "logs", **IDLE) as running:
            await idle_calls_per_s(running, nodes, 2.0)  # past the start's own calls
            rates = await idle_calls_per_s(running, nodes)
    print(f"idle Redis calls per second, {kind}, 16 partitions: "
          + ", ".join(f"{name} {rate:.2f}" for name, rate in sorted(rates.items())))
    assert set(rates) >= {"gateway-0", "router-0", "executor-0", "persister-0", "trigger-0"}
    assert all(rate <= MOST_PER_S for rate in rates.values()), rates
