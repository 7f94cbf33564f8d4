"""Faults of a Redis Cluster under load, with the services as processes: slots moved
between primaries, and a primary killed with SIGKILL so that its replica takes over. Every
accepted order must end exactly once, and no swap may execute twice.

The cluster is this module's own (3 primaries, each with a replica): the faults change
which node serves what, which the session's shared cluster must not see."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.crc import key_slot

from bench.harness import system
from bench.soak import Audit, Load, audit
from services.cli.embedded import EmbeddedCluster
from shared.partitions import Layout
from tests.conftest import reachable_dir
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

PARTITIONS = 4
RATE_PER_S = 30
# Work cut off by a fault is taken over once idle this long.
FAST_CLAIMS = {"OEE_CLAIM_IDLE_MS": "1000", "OEE_PARTITIONS": str(PARTITIONS),
               "OEE_EXECUTION_LATENCY_MS": "50-100", "OEE_FAILURE_RATE": "0.1"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    # A 2 s node timeout: a killed primary's replica takes over within seconds.
    with reachable_dir() as path, EmbeddedCluster(path, primaries=3, replicas=1,
                                                  node_timeout_ms=2_000).start() as c:
        yield c


def slots(namespace: str) -> list[int]:
    """The hash slot of each partition (every key of a partition shares it)."""
    layout = Layout(namespace, PARTITIONS)
    return [key_slot(layout.log(p).encode()) for p in layout.partitions]


async def accepted_at_least(load: Load, count: int) -> None:
    async def enough() -> bool | None:
        return True if len(load.accepted) >= count else None
    await eventually(enough, 60)


async def stopped(load: Load, stop: asyncio.Event, loading: asyncio.Task[None]) -> None:
    stop.set()
    await loading


def check(result: Audit) -> None:
    assert (result.lost, result.duplicated, result.executed_twice) == (0, 0, 0), result.report()
    assert result.terminal == result.accepted


async def test_slots_moved_between_primaries_under_load_lose_nothing(
    cluster: EmbeddedCluster, database_url: str, tmp_path: Path
) -> None:
    namespace = f"reshard-{secrets.token_hex(4)}"
    with system(cluster.url, database_url, namespace, tmp_path / "logs",
                **FAST_CLAIMS) as running:
        load = Load(running.url, running.ws_url)
        stop = asyncio.Event()
        loading = asyncio.create_task(load.run(RATE_PER_S, stop))
        await accepted_at_least(load, 20)
        moved = {}
        for slot in slots(namespace):
            primaries = sorted((p for p in cluster.topology() if p.primary and not p.failed),
                               key=lambda p: p.port)
            source = cluster.owner(slot)
            target = primaries[(primaries.index(next(
                p for p in primaries if p.id == source.id)) + 1) % len(primaries)]
            await asyncio.to_thread(cluster.move_slot, slot, target)
            moved[slot] = (source.id, target.id)
            await accepted_at_least(load, len(load.accepted) + 15)
        await stopped(load, stop, loading)
        result = await audit(running.env, load.accepted, timeout_s=60)
    for slot, (_, target) in moved.items():
        assert cluster.owner(slot).id == target
    print(f"resharding: {result.report()}; refused for Redis {load.unreachable}")
    check(result)
    assert result.accepted >= 80


@pytest.mark.parametrize("wait_replicas", [0, 1])
async def test_a_primary_killed_under_load_is_replaced_by_its_replica(
    cluster: EmbeddedCluster, database_url: str, tmp_path: Path, wait_replicas: int
) -> None:
    """With ``OEE_REDIS_WAIT_REPLICAS=1`` nothing accepted is lost. Without, what the primary
    acknowledged and had not yet sent to its replica is lost with it: only orders accepted
    after the takeover are held to exactly once, and what was lost is reported."""
    namespace = f"failover-{secrets.token_hex(4)}"
    slot = slots(namespace)[0]
    with system(cluster.url, database_url, namespace, tmp_path / "logs",
                OEE_REDIS_WAIT_REPLICAS=str(wait_replicas), **FAST_CLAIMS) as running:
        load = Load(running.url, running.ws_url)
        stop = asyncio.Event()
        loading = asyncio.create_task(load.run(RATE_PER_S, stop))
        await accepted_at_least(load, 40)
        victim = cluster.owner(slot)
        killed_at = time.monotonic()
        node = cluster.kill(victim.port)
        owner = await asyncio.to_thread(cluster.wait_primary, slot, victim.id)
        takeover_s = time.monotonic() - killed_at
        after_takeover = len(load.accepted)
        # Back as the new primary's replica, which WAIT needs.
        await asyncio.to_thread(cluster.revive, node)
        layout = Layout(namespace, PARTITIONS)

        async def flowing_again() -> bool | None:
            later = load.accepted[after_takeover:]
            on_new = [i for i in later if slot == slots(namespace)[layout.of(i)]]
            return True if len(later) >= 60 and len(on_new) >= 10 else None
        await eventually(flowing_again, 60)
        await stopped(load, stop, loading)
        after = await audit(running.env, load.accepted[after_takeover:], timeout_s=60)
        everything = await audit(running.env, load.accepted, timeout_s=10)
    print(f"failover (WAIT {wait_replicas}): takeover in {takeover_s:.1f} s by {owner.port}; "
          f"all: {everything.report()}; refused for Redis {load.unreachable}")
    check(after)
    if wait_replicas:
        check(everything)
