"""``OEE_LAUNCH_EVERY_S`` with real processes: three triggers, one launch per interval,
each the seed's, and a sniper waiting for the next one fires on it."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.harness import system
from services.trigger.schedule import planned, slot_of
from shared.config import Settings
from shared.launches import Launches
from shared.stream import EventStore
from tests.conftest import cleanup
from tests.helpers import eventually, stories

pytestmark = pytest.mark.e2e

EVERY_S = 2.0


async def test_three_triggers_launch_once_per_interval_and_a_sniper_fires(
        redis_url: str, database_url: str, tmp_path: Path) -> None:
    namespace = f"e2e-sched-{secrets.token_hex(4)}"
    seed = f"sched-{secrets.token_hex(2)}"
    with system(redis_url, database_url, namespace, tmp_path / "logs", OEE_SEED=seed,
                OEE_LAUNCH_EVERY_S=str(EVERY_S)) as running:
        running.start("trigger")
        running.start("trigger")
        store = EventStore(Settings(redis_url=redis_url, namespace=namespace))
        try:
            # The slot after the next: every trigger is up by then.
            slot = slot_of(time.time(), EVERY_S) + 2
            mint = planned(seed, slot).mint
            async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
                response = await client.post("/orders/execute", json={
                    "type": "sniper", "tokenIn": planned(seed, slot).quote, "tokenOut": mint,
                    "amount": "0.01", "slippage": 0.05, "ttlSeconds": 60})
                assert response.status_code == 202, response.text
                order_id = response.json()["orderId"]

                async def listed() -> list[dict[str, Any]] | None:
                    tokens = (await client.get("/tokens")).json()["tokens"]
                    found = [t for t in tokens if t["mint"] == mint]
                    return found or None

                await eventually(listed, 30)
            found = await stories(store, [order_id], timeout_s=30)
            assert found[order_id][-1].type == "Confirmed", found[order_id]
            launched = await Launches(store.redis, namespace).catch_up()
            mints = [launch.mint for launch in launched]
            # One launch per interval, however many triggers ran, each the seed's.
            assert len(mints) == len(set(mints)) and mint in mints
            slots = [s for s in range(slot - 3, slot + 4) if planned(seed, s).mint in mints]
            assert slots == list(range(slots[0], slots[-1] + 1))
        finally:
            await cleanup(store.redis, namespace)
            await store.close()
