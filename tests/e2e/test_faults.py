"""Fault injection with real processes: kill -9 each service under load, stop and restart
PostgreSQL and Redis, and check that nothing is lost, nothing ends twice and no swap
executes twice."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from pathlib import Path

import httpx
import pytest
import websockets

from bench.harness import system
from bench.soak import KILL_ORDER, Load, audit
from services.cli.embedded import EmbeddedPostgres, EmbeddedRedis
from shared.db import migrate
from tests.helpers import HAPPY, eventually

pytestmark = pytest.mark.e2e

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.02}
ALLOWED_NEXT = {
    None: {"pending"},
    "pending": {"routing", "failed"},
    "routing": {"building", "failed"},
    "building": {"submitted", "failed"},
    "submitted": {"confirmed", "failed"},
}


class Watcher:
    """A client that follows one order and reconnects whenever the connection drops."""

    def __init__(self, ws_url: str, order_id: str) -> None:
        self.url = f"{ws_url}/orders/execute?orderId={order_id}"
        self.connections: list[tuple[list[str], int | None]] = []
        self.connected = asyncio.Event()

    async def run(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                async with websockets.connect(self.url, open_timeout=2) as ws:
                    self.connected.set()
                    statuses: list[str] = []
                    try:
                        while True:
                            statuses.append(json.loads(await ws.recv())["status"])
                    except websockets.ConnectionClosed:
                        pass
                    self.connections.append((statuses, ws.close_code))
                    if ws.close_code == 1000:
                        return
            except (OSError, TimeoutError, websockets.WebSocketException):
                pass
            await asyncio.sleep(0.1)  # the gateway is restarting

    def check(self) -> None:
        *earlier, (final, code) = self.connections
        assert code == 1000, self.connections
        previous = None
        for status in final:  # complete, ordered, each status once
            assert status in ALLOWED_NEXT[previous], final
            previous = status
        assert previous in ("confirmed", "failed"), final
        for statuses, _ in earlier:  # a dropped connection saw a prefix of the same story
            assert final[: len(statuses)] == statuses, self.connections


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.mark.cluster
async def test_killing_any_service_loses_nothing_and_executes_nothing_twice(
    redis_url: str, database_url: str, logs: Path
) -> None:
    namespace = f"faults-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, logs, executors=2,
                OEE_CLAIM_IDLE_MS="1000", OEE_FAILURE_RATE="0.2",
                OEE_EXECUTION_LATENCY_MS="100-200") as running:
        load = Load(running.url, running.ws_url)
        stop = asyncio.Event()
        loading = asyncio.create_task(load.run(30, stop))
        watchers: list[Watcher] = []
        watching: list[asyncio.Task[None]] = []

        async def watch_new_orders() -> None:
            seen = 0
            while not stop.is_set():
                for index in range(seen, len(load.accepted)):
                    if index % 3 == 0:
                        watcher = Watcher(running.ws_url, load.accepted[index])
                        watchers.append(watcher)
                        watching.append(asyncio.create_task(watcher.run()))
                seen = len(load.accepted)
                await asyncio.sleep(0.05)

        spawning = asyncio.create_task(watch_new_orders())

        async def accepted_at_least(count: int) -> None:
            await eventually(lambda: _true(len(load.accepted) >= count), 60)

        for round_ in range(2):
            for service in KILL_ORDER:
                await accepted_at_least(len(load.accepted) + 15)
                if service == "gateway":  # with a subscriber to cut off mid-stream
                    await eventually(lambda: _true(any(
                        w.connected.is_set() and not w.connections for w in watchers)), 30)
                index = round_ % len(running.processes[service])
                running.kill(service, index)
                running.restart_dead()
                if service == "gateway":
                    await asyncio.to_thread(running.wait_ready)
        await accepted_at_least(200)
        stop.set()
        await loading
        await spawning
        result = await audit(running.env, load.accepted, timeout_s=90)
        await asyncio.gather(*watching)
    assert result.accepted >= 200 and load.refused > 0
    assert (result.lost, result.duplicated, result.executed_twice) == (0, 0, 0), result.report()
    assert result.terminal == result.accepted
    for watcher in watchers:
        watcher.check()
    # Some subscribers were cut off by the gateway kills, and reconnected.
    assert sum(1 for w in watchers if len(w.connections) > 1) > 0


async def _true(condition: bool) -> bool | None:
    return True if condition else None


async def test_a_gateway_stopping_closes_subscriptions_with_1001(
    redis_url: str, database_url: str, logs: Path
) -> None:
    namespace = f"faults-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, logs,
                OEE_EXECUTION_LATENCY_MS="3000") as running:
        async with httpx.AsyncClient(base_url=running.url) as client:
            order_id = await _submit(client)
        watcher = Watcher(running.ws_url, order_id)
        watching = asyncio.create_task(watcher.run())
        await asyncio.wait_for(watcher.connected.wait(), 10)
        gateway = running.processes["gateway"][0]
        gateway.send_signal(signal.SIGTERM)
        await eventually(lambda: _true(bool(watcher.connections)), 10)
        assert watcher.connections[0][1] == 1001
        # Uvicorn re-raises the signal once it has shut down gracefully.
        assert await asyncio.to_thread(gateway.wait, 20) in (0, -signal.SIGTERM)
        running.restart_dead()
        await watching
    watcher.check()
    assert watcher.connections[-1][0][0] == "pending"  # the whole history again


async def test_postgres_restart_mid_run_loses_nothing(
    redis_url: str, server_dir: Path, logs: Path
) -> None:
    postgres = EmbeddedPostgres(server_dir / "pg").start()
    try:
        postgres.create_database("oee")
        database_url = postgres.url("oee")
        await migrate(database_url)
        namespace = f"faults-{secrets.token_hex(4)}"
        with system(redis_url, database_url, namespace, logs) as running:
            async with httpx.AsyncClient(base_url=running.url) as client:
                first = [await _submit(client) for _ in range(10)]
                postgres.stop()
                ready = await client.get("/readyz")
                assert ready.status_code == 503 and ready.json()["status"] == "not ready"
                assert ready.json()["checks"]["postgres"].startswith("unavailable")
                assert ready.json()["checks"]["redis"] == "ok"
                listing = await client.get("/orders")
                assert listing.status_code == 503
                assert listing.json()["error"]["rule"] == "unavailable"
                # Orders are still taken, executed and followed: they live in the stream.
                during = [await _submit(client) for _ in range(10)]
                shown = await client.get(f"/orders/{during[0]}")
                assert shown.status_code == 200, shown.text
                order = shown.json()
                assert (order["orderId"], order["amount"]) == (during[0], "0.5")
                assert order["status"] in [*HAPPY, "failed"], order
                postgres.start()  # listening; accepting connections a moment later

                async def ready_again() -> dict[str, object] | None:
                    ready = await client.get("/readyz")
                    return ready.json() if ready.status_code == 200 else None

                assert await eventually(ready_again, 30, every_s=0.1) == {
                    "status": "ready", "checks": {"redis": "ok", "postgres": "ok"}}
                result = await audit(running.env, first + during, 60)
    finally:
        postgres.stop()
    assert (result.lost, result.duplicated) == (0, 0), result.report()


async def test_redis_outage_refuses_orders_with_503_then_recovers(
    database_url: str, server_dir: Path, logs: Path
) -> None:
    redis = EmbeddedRedis(server_dir / "redis").start()
    try:
        namespace = f"faults-{secrets.token_hex(4)}"
        # Work cut off by the outage is taken over once idle for a second.
        with system(redis.url, database_url, namespace, logs,
                    OEE_CLAIM_IDLE_MS="1000") as running:
            async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
                before = await _submit(client)
                redis.stop()
                refused = await client.post("/orders/execute", json=ORDER)
                assert refused.status_code == 503
                assert refused.json()["error"]["rule"] == "unavailable"
                ready = await client.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["status"] == "not ready"
                assert ready.json()["checks"]["redis"].startswith("unavailable"), ready.json()
                assert ready.json()["checks"]["postgres"] == "ok"
                redis.start()  # same port, same append-only file

                async def accepted() -> str | None:
                    response = await client.post("/orders/execute", json=ORDER)
                    return response.json()["orderId"] if response.status_code == 202 else None

                after = await eventually(accepted, 30, every_s=0.2)
                result = await audit(running.env, [before, after], 60)
    finally:
        redis.stop()
    assert result.terminal == 2 and result.lost == 0, result.report()


async def _submit(client: httpx.AsyncClient) -> str:
    response = await client.post("/orders/execute", json=ORDER)
    assert response.status_code == 202, response.text
    order_id: str = response.json()["orderId"]
    return order_id
