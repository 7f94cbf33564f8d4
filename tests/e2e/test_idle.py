"""An idle system makes a few Redis calls a second per process, not a busy poll (and a
gateway nobody follows, none): with 8 partitions (twice the default) and one consumer per
group, on a single Redis and on a cluster.

Each process's calls are counted by the servers themselves: ``CLIENT LIST`` gives every
connection's ``tot-cmds`` (Valkey) and whether it waits in a blocking command, and the
connection's port names the process that owns it (``/proc``).

The window is marked by what the servers count, not by a clock. It opens once every worker
has swept its partitions for idle entries, which it does a sweep period after it starts, so
the start's own calls are over; it closes once every worker has swept again and every read
that was waiting at the opening has returned (a blocking command is counted when it
returns). On a single Redis it holds whole periods of all an idle process does but the
trim (every 30 s). On a cluster a read waits 8 s, one per partition, and the window holds
one such round of reads: its calls are spread over those 8 s, which reads a little low
for the calls that come every second."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pytest
import redis

from bench.harness import System, system
from services.cli.embedded import EmbeddedRedis
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

PARTITIONS = 8
IDLE = {"OEE_PARTITIONS": str(PARTITIONS), "OEE_BLOCK_MS": "1000",
        "OEE_CLAIM_IDLE_MS": "15000"}
# A worker sweeps every third of OEE_CLAIM_IDLE_MS, one call per partition.
SWEEP_S = 5.0
# One blocking read waits OEE_BLOCK_MS; on a cluster, where each partition has a read of
# its own, OEE_BLOCK_MS times the partitions.
READ_S = {"single": 1.0, "cluster": 8.0}
# At most three calls once per OEE_BLOCK_MS (the trigger's: a read of its queue, one of
# the launches, and a look at its deadlines), and a claim per partition per sweep,
# with half again for the counting's edges: a few calls a second. A process that polls
# makes hundreds.
MOST_PER_S = 1.5 * (3 + PARTITIONS / SWEEP_S)


class Connection(NamedTuple):
    calls: int
    blocked: bool


# By (server port, client port).
Connections = dict[tuple[int, int], Connection]


class Servers:
    """What the Redis servers of a system count."""

    def __init__(self, ports: list[int]) -> None:
        self.clients = {port: redis.Redis(port=port, decode_responses=True) for port in ports}

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def connections(self) -> Connections:
        """Every client connection: its ``tot-cmds``, and whether it waits in a blocking
        command."""
        found: Connections = {}
        for node, client in self.clients.items():
            for entry in client.client_list():
                # A connection still being set up may list no address yet: not a client's.
                _, _, port = str(entry.get("addr", "")).rpartition(":")
                if port.isdigit():
                    found[(node, int(port))] = Connection(
                        int(entry.get("tot-cmds", 0)), "b" in str(entry.get("flags", "")))
        return found

    def commandstats(self) -> Counter[str]:
        """Calls per command, summed over the servers (our own CLIENT and INFO included)."""
        counts: Counter[str] = Counter()
        for client in self.clients.values():
            for name, stats in client.info("commandstats").items():
                counts[name.removeprefix("cmdstat_")] += int(stats["calls"])
        return counts


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


def by_process(running: System, found: Connections) -> dict[str, Connections]:
    """The connections of each process of the system, by ``service-slot``."""
    owned = {}
    for service, processes in running.processes.items():
        for slot, process in enumerate(processes):
            ports = ports_of(process.pid)
            owned[f"{service}-{slot}"] = {key: c for key, c in found.items() if key[1] in ports}
    return owned


async def idle_calls_per_s(running: System, servers: Servers, kind: str) -> dict[str, float]:
    """Each process's Redis calls per second over one sweep period of the idle system."""
    workers = sum(len(ps) for service, ps in running.processes.items() if service != "gateway")

    async def swept_since(sweeps: int) -> Counter[str] | None:
        """The servers' calls per command, once every worker has swept since ``sweeps``."""
        commands = servers.commandstats()
        return commands if commands["xautoclaim"] - sweeps >= workers * PARTITIONS else None

    at_start = servers.commandstats()["xautoclaim"]
    before = await eventually(lambda: swept_since(at_start), SWEEP_S + 20, every_s=0.2)
    opened, started = by_process(running, servers.connections()), time.monotonic()
    waiting = {key: c.calls for held in opened.values() for key, c in held.items() if c.blocked}

    async def cycle_over() -> Counter[str] | None:
        after = await swept_since(before["xautoclaim"])
        if after is None:
            return None
        calls = {key: c.calls for key, c in servers.connections().items()}
        # A connection gone has returned from its read too.
        returned = all(calls.get(key, then + 1) > then for key, then in waiting.items())
        return after if returned else None

    after = await eventually(cycle_over, SWEEP_S + READ_S[kind] + 20, every_s=0.2)
    closed, elapsed = by_process(running, servers.connections()), time.monotonic() - started
    print(f"one sweep period, {kind}: {elapsed:.1f} s; calls per command, all processes: "
          + ", ".join(f"{name} {after[name] - before[name]}"
                      for name in sorted(after) if after[name] > before[name]))
    calls_before = {key: c.calls for held in opened.values() for key, c in held.items()}
    calls = {name: sum(c.calls - calls_before.get(key, 0) for key, c in held.items())
             for name, held in closed.items()}
    # A process that polls is never found waiting in a blocking read; one that makes no
    # call (a gateway's tail that nobody follows reads nothing) does not poll either.
    polling = sorted(name for name in closed if calls[name] and not any(
        c.blocked for c in [*opened.get(name, {}).values(), *closed[name].values()]))
    assert not polling, f"not waiting in a blocking read, so polling: {polling}"
    return {name: count / max(elapsed, READ_S[kind]) for name, count in calls.items()}


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
        servers = Servers(nodes)
        try:
            with system(url, database_url, namespace, tmp_path / "logs", **IDLE) as running:
                rates = await idle_calls_per_s(running, servers, kind)
        finally:
            servers.close()
    print(f"idle Redis calls per second, {kind}, {PARTITIONS} partitions: "
          + ", ".join(f"{name} {rate:.2f}" for name, rate in sorted(rates.items())))
    assert set(rates) == {"gateway-0", "router-0", "executor-0", "persister-0", "trigger-0"}
    assert all(rate <= MOST_PER_S for rate in rates.values()), rates
    # No WebSocket follows anything: the gateway's tail reads nothing.
    assert rates["gateway-0"] == 0, rates
