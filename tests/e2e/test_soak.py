"""``oee soak``'s load with waiting orders, against real processes: limit orders that fill
and that wait, cancels, snipers and launches, with a trigger killed midway; then the audit
finds every order ended once (or open within its deadline) and nothing executed twice."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from bench.harness import system
from bench.soak import Load, audit
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


async def _true(value: bool) -> bool | None:
    return True if value else None


async def test_the_soak_load_with_waiting_orders_loses_nothing(
        redis_url: str, database_url: str, tmp_path: Path) -> None:
    namespace = f"soak-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, tmp_path / "logs",
                OEE_AUTH="off", OEE_CLAIM_IDLE_MS="1000",
                OEE_EXECUTION_LATENCY_MS="50-100") as running:
        # Short lives, so the orders that wait end within seconds of the load.
        load = Load(running.url, running.ws_url, seed=11, waiting=True, ttl_s=(2, 8))
        stop = asyncio.Event()
        loading = asyncio.create_task(load.run(25, stop, launch_every_s=3))
        await eventually(lambda: _true(load.launches >= 1 and len(load.accepted) >= 80), 60)
        running.kill("trigger")
        running.restart_dead()
        await eventually(lambda: _true(load.launches >= 2 and len(load.accepted) >= 160), 60)
        stop.set()
        await loading
        result = await audit(running.env, load.accepted, timeout_s=90,
                             deadlines=load.deadlines)
    assert (result.lost, result.duplicated, result.executed_twice) == (0, 0, 0), result.report()
    assert result.terminal + result.still_open == result.accepted
    assert result.reached("cancelled") > 0 and result.reached("expired") > 0
    assert result.reached("confirmed") > 0
    assert load.launches >= 2 and load.cancels > 0
