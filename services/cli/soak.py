"""``oee soak``: mixed load against a running system while its services are killed, then an
audit: every accepted order must end exactly once, and no swap may execute twice.

The load submits over HTTP and over WebSocket, across token pairs, with some invalid orders
mixed in (they must be refused and never accepted). Every few seconds one service is killed
with SIGKILL, round robin, and started again a second later.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import msgspec
import psycopg
import websockets

from services.cli.launcher import System
from services.executor.chain import SimulatedChain
from shared.config import load
from shared.stream import EventStore

PAIRS = [("SOL", "USDC", "0.5"), ("USDC", "SOL", "25"), ("SOL", "USDT", "1.25"),
         ("JUP", "USDC", "100"), ("BONK", "SOL", "1000000"), ("RAY", "USDT", "10")]
KILL_ORDER = ("router", "executor", "persister", "gateway")


class Audit(msgspec.Struct):
    accepted: int
    terminal: int
    lost: int
    duplicated: int
    executed_twice: int
    confirmed: int
    failed: int
    refused: int = 0
    kills: int = 0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.executed_twice == 0

    def report(self) -> str:
        return (f"accepted {self.accepted}  terminal {self.terminal} "
                f"(confirmed {self.confirmed}, failed {self.failed})  lost {self.lost}  "
                f"duplicated {self.duplicated}  executed twice {self.executed_twice}  "
                f"refused (invalid) {self.refused}  kills {self.kills}")


class Load:
    """Submits orders at a steady rate; keeps the ids of those the gateway accepted."""

    def __init__(self, base_url: str, ws_url: str, seed: int = 7) -> None:
        self.base_url, self.ws_url = base_url, ws_url
        self.random = random.Random(seed)
        self.accepted: list[str] = []
        self.refused = 0
        self.unreachable = 0

    def body(self) -> dict[str, object]:
        token_in, token_out, amount = self.random.choice(PAIRS)
        if self.random.random() < 0.05:  # an invalid order now and then
            return {"tokenIn": token_in, "tokenOut": token_in, "amount": amount, "slippage": 0.01}
        return {"tokenIn": token_in, "tokenOut": token_out, "amount": amount, "slippage": 0.02}

    async def submit_http(self, client: httpx.AsyncClient) -> None:
        try:
            response = await client.post("/orders/execute", json=self.body())
        except httpx.HTTPError:
            self.unreachable += 1
            return
        if response.status_code == 202:
            self.accepted.append(response.json()["orderId"])
        elif 400 <= response.status_code < 500:
            self.refused += 1
        else:
            self.unreachable += 1

    async def submit_ws(self) -> None:
        """Submit on a WebSocket and read the first answer (the pending status)."""
        try:
            async with websockets.connect(f"{self.ws_url}/orders/execute", open_timeout=5) as ws:
                await ws.send(json.dumps(self.body()))
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        except (OSError, TimeoutError, websockets.WebSocketException):
            self.unreachable += 1
            return
        if "orderId" in first:
            self.accepted.append(first["orderId"])
        else:
            self.refused += 1

    async def run(self, rate_per_s: float, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            pending: set[asyncio.Task[None]] = set()
            started = time.monotonic()
            sent = 0
            while not stop.is_set():
                due = int((time.monotonic() - started) * rate_per_s) - sent
                for _ in range(due):
                    use_ws = self.random.random() < 0.2
                    task = asyncio.create_task(
                        self.submit_ws() if use_ws else self.submit_http(client))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                sent += max(due, 0)
                await asyncio.sleep(0.01)
            if pending:
                await asyncio.wait(pending)


async def audit(env: Mapping[str, str], accepted: Sequence[str],
                timeout_s: float = 120.0) -> Audit:
    """Waits until every accepted order has a terminal state in PostgreSQL (or the deadline),
    then counts, in the system with this environment. Terminal events are counted in the
    stream too, and executions on the simulated chain."""
    settings = load(env)
    database_url = settings.database_url
    ids = list(accepted)
    deadline = time.monotonic() + timeout_s
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            cursor = await conn.execute(
                "SELECT count(*) FROM orders WHERE order_id = ANY(%s)"
                " AND status IN ('confirmed', 'failed')", (ids,))
            row = await cursor.fetchone()
            done = row[0] if row else 0
            if done == len(ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        cursor = await conn.execute(
            "SELECT o.order_id, o.status,"
            " (SELECT count(*) FROM events e WHERE e.order_id = o.order_id"
            "  AND e.type IN ('Confirmed', 'Failed'))"
            " FROM orders o WHERE o.order_id = ANY(%s)", (ids,))
        rows = await cursor.fetchall()
    store = EventStore(settings)
    try:
        stream_terminals: dict[str, int] = {}
        async for entry in store.everything_after():
            if entry.event.is_terminal:
                order_id = entry.event.order_id
                stream_terminals[order_id] = stream_terminals.get(order_id, 0) + 1
        executions = await SimulatedChain(store.redis, settings).executions(ids)
    finally:
        await store.close()
    status = {r[0]: r[1] for r in rows}
    pg_terminals = {r[0]: r[2] for r in rows}
    terminal = [i for i in ids if status.get(i) in ("confirmed", "failed")]
    return Audit(
        accepted=len(ids),
        terminal=len(terminal),
        lost=len(ids) - len(terminal),
        duplicated=sum(1 for i in ids
                       if pg_terminals.get(i, 0) > 1 or stream_terminals.get(i, 0) > 1),
        executed_twice=sum(1 for n in executions.values() if n > 1),
        confirmed=sum(1 for i in ids if status.get(i) == "confirmed"),
        failed=sum(1 for i in ids if status.get(i) == "failed"),
    )


async def kill_periodically(system: System, every_s: float, stop: asyncio.Event) -> int:
    kills = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            break
        except TimeoutError:
            pass
        service = KILL_ORDER[kills % len(KILL_ORDER)]
        index = kills // len(KILL_ORDER) % len(system.processes[service])
        system.kill(service, index)
        kills += 1
        print(f"soak: killed {service} #{index} (kill {kills})", flush=True)
        await asyncio.sleep(1)
        system.restart_dead()
    return kills


async def soak(system: System, env: dict[str, str], minutes: float, rate: float,
               kill_every_s: float) -> Audit:
    load = Load(system.url, system.ws_url)
    stop = asyncio.Event()
    loading = asyncio.create_task(load.run(rate, stop))
    killing = asyncio.create_task(kill_periodically(system, kill_every_s, stop))
    started = time.monotonic()
    while time.monotonic() - started < minutes * 60:
        await asyncio.sleep(min(10.0, minutes * 60))
        print(f"soak: {time.monotonic() - started:5.0f}s  accepted {len(load.accepted)}  "
              f"refused {load.refused}  unreachable {load.unreachable}", flush=True)
    stop.set()
    await loading
    kills = await killing
    system.restart_dead()
    result = await audit(env, load.accepted)
    result.refused, result.kills = load.refused, kills
    return result


def run(minutes: float, rate: float, kill_every_s: float) -> int:
    from services.cli.embedded import free_port
    from services.cli.up import servers

    root = Path(tempfile.mkdtemp(prefix="oee-soak-"))
    root.chmod(0o755)
    with servers(root) as env:
        env.update({
            "PORT": str(free_port()),
            "OEE_NAMESPACE": f"soak-{secrets.token_hex(3)}",
            "OEE_QUOTE_LATENCY_MS": os.environ.get("OEE_QUOTE_LATENCY_MS", "20"),
            "OEE_EXECUTION_LATENCY_MS": os.environ.get("OEE_EXECUTION_LATENCY_MS", "100-300"),
            "OEE_FAILURE_RATE": os.environ.get("OEE_FAILURE_RATE", "0.1"),
            "OEE_RETRY_BASE_MS": os.environ.get("OEE_RETRY_BASE_MS", "50"),
            "OEE_CLAIM_IDLE_MS": os.environ.get("OEE_CLAIM_IDLE_MS", "2000"),
            "OEE_LOG_LEVEL": "WARNING",
            # The load acts as the one built-in account: the soak is about faults, and its
            # audit reads every order whoever submitted it.
            "OEE_AUTH": "off",
            # The audit at the end reads every order's landings on the simulated chain, and
            # every terminal event in the log.
            "OEE_FINISHED_ORDER_TTL_S": "86400",
            "OEE_STREAM_RETENTION_S": "86400",
        })
        logs = root / "logs"
        logs.mkdir()
        system = System(env, logs)
        system.start_all({"executor": 2})
        try:
            system.wait_ready()
            print(f"soak: {minutes} min at {rate} orders/s, a kill every {kill_every_s}s; "
                  f"logs in {logs}", flush=True)
            result = asyncio.run(soak(system, env, minutes, rate, kill_every_s))
        finally:
            system.stop()
    print("soak: " + result.report(), flush=True)
    return 0 if result.ok else 1
