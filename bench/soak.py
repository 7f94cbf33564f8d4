"""``oee soak``: mixed load against a running system while its services are killed, then an
audit: every accepted order must end exactly once, and no swap may execute twice.

The load submits over HTTP and over WebSocket, across token pairs, with some invalid orders
mixed in (they must be refused and never accepted). The soak's load also submits orders that
wait: limit orders the market meets and ones it does not (some cancelled, the rest expire),
and snipers on a new mint, whose pool it launches every few seconds (those on the last mint
expire); every waiting order has a deadline of at most half a minute. Every few seconds one
service is killed with SIGKILL, round robin (the trigger too), and started again a second
later.

The audit: every accepted order reached exactly one terminal state (confirmed, failed,
cancelled or expired), or is still open within its deadline, and no swap executed twice.
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

import base58
import httpx
import msgspec
import websockets

from bench.harness import System
from services.cli.audit import accepted_endings
from services.cli.invariants import Endings
from shared import lifecycle
from shared.config import load
from shared.lifecycle import Status

PAIRS = [("SOL", "USDC", "0.5"), ("USDC", "SOL", "25"), ("SOL", "USDT", "1.25"),
         ("JUP", "USDC", "100"), ("BONK", "SOL", "1000000"), ("RAY", "USDT", "10")]
KILL_ORDER = ("router", "executor", "persister", "gateway")
# The soak kills the trigger too: it holds every open order.
SOAK_KILLS = (*KILL_ORDER, "trigger")
# Far above any SOL price the seeded market reaches: never marketable.
NEVER = "100000"


class Audit(msgspec.Struct, kw_only=True):
    """How the soak's accepted orders ended (judged by the one auditor that ``oee audit``
    uses too), with what the soak itself counted."""

    endings: Endings
    refused: int = 0
    kills: int = 0
    launches: int = 0

    @property
    def ok(self) -> bool:
        return self.endings.ok

    @property
    def accepted(self) -> int:
        return self.endings.accepted

    @property
    def terminal(self) -> int:
        return self.endings.terminal

    @property
    def still_open(self) -> int:
        return self.endings.still_open

    @property
    def lost(self) -> int:
        return self.endings.lost

    @property
    def duplicated(self) -> int:
        return self.endings.duplicated

    @property
    def executed_twice(self) -> int:
        return self.endings.executed_twice

    def reached(self, status: Status) -> int:
        """How many of the orders ended with this terminal status."""
        return self.endings.ended.get(status, 0)

    def report(self) -> str:
        e = self.endings
        ended = ", ".join(f"{status} {e.ended.get(status, 0)}"
                          for status in sorted(lifecycle.TERMINAL))
        return (f"accepted {e.accepted}  terminal {e.terminal} ({ended})  open in time "
                f"{e.still_open}  lost {e.lost}  duplicated {e.duplicated}  executed twice "
                f"{e.executed_twice}  refused (invalid) {self.refused}  launches "
                f"{self.launches}  kills {self.kills}")


class Load:
    """Submits orders at a steady rate; keeps the ids of those the gateway accepted. With
    ``waiting``, limit and sniper orders too, some of them cancelled, and the snipers' pools
    launched (``launch``): each accepted waiting order's deadline is kept for the audit.
    ``ttl_s``: the range of the waiting orders' time to live, in whole seconds."""

    def __init__(self, base_url: str, ws_url: str, seed: int = 7,
                 waiting: bool = False, ttl_s: tuple[int, int] = (5, 30)) -> None:
        self.base_url, self.ws_url = base_url, ws_url
        self.random = random.Random(seed)
        self.waiting = waiting
        self.ttl_s = ttl_s
        self.accepted: list[str] = []
        self.deadlines: dict[str, float] = {}
        self.refused = 0
        self.unreachable = 0
        self.cancels = 0
        self.launches = 0
        self.mint = self.new_mint()
        self._later: set[asyncio.Task[None]] = set()

    def new_mint(self) -> str:
        return base58.b58encode(self.random.randbytes(32)).decode()

    def body(self) -> dict[str, object]:
        token_in, token_out, amount = self.random.choice(PAIRS)
        if self.random.random() < 0.05:  # an invalid order now and then
            return {"tokenIn": token_in, "tokenOut": token_in, "amount": amount, "slippage": 0.01}
        market = {"tokenIn": token_in, "tokenOut": token_out, "amount": amount,
                  "slippage": 0.02}
        kind = self.random.random() if self.waiting else 1.0
        ttl = self.random.randint(*self.ttl_s)
        if kind < 0.15:  # marketable: fills at once
            return {**market, "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC",
                    "amount": "0.5", "limitPrice": "1", "ttlSeconds": ttl}
        if kind < 0.25:  # never marketable: cancelled, or expires
            return {**market, "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC",
                    "amount": "0.5", "limitPrice": NEVER, "ttlSeconds": ttl}
        if kind < 0.40:  # fires at the next launch, or expires
            return {"type": "sniper", "tokenIn": "SOL", "tokenOut": self.mint,
                    "amount": "0.01", "slippage": 0.05, "ttlSeconds": ttl}
        return market

    def took(self, order_id: str, body: Mapping[str, object],
             client: httpx.AsyncClient | None) -> None:
        """An accepted order: remembered, with its deadline if it waits; a waiting one is
        sometimes cancelled a moment later."""
        self.accepted.append(order_id)
        ttl = body.get("ttlSeconds")
        if isinstance(ttl, int):
            self.deadlines[order_id] = time.time() + ttl
            if client is not None and self.random.random() < 0.3:
                task = asyncio.create_task(self.cancel(client, order_id,
                                                       self.random.uniform(0, 3)))
                self._later.add(task)
                task.add_done_callback(self._later.discard)

    async def cancel(self, client: httpx.AsyncClient, order_id: str, after_s: float) -> None:
        # A client's second thoughts, not synchronisation: the cancel races the trigger.
        await asyncio.sleep(after_s)
        try:
            response = await client.delete(f"/orders/{order_id}")
        except httpx.HTTPError:
            return
        if response.status_code == 202:
            self.cancels += 1

    async def launch(self, client: httpx.AsyncClient) -> None:
        """Launch the pool the snipers so far wait for; new snipers wait for the next."""
        mint, self.mint = self.mint, self.new_mint()
        symbol = "S" + "".join(self.random.choices("ABCDEFGHJKLMNPQRSTUVWXYZ", k=6))
        try:
            response = await client.post("/admin/pools", json={
                "mint": mint, "symbol": symbol, "decimals": 6, "venue": self.random.choice(
                    ("raydium", "meteora")), "price": "0.0001", "liquidity": "1000"})
        except httpx.HTTPError:
            return
        if response.status_code == 201:
            self.launches += 1

    async def submit_http(self, client: httpx.AsyncClient) -> None:
        body = self.body()
        try:
            response = await client.post("/orders/execute", json=body)
        except httpx.HTTPError:
            self.unreachable += 1
            return
        if response.status_code == 202:
            self.took(response.json()["orderId"], body, client)
        elif 400 <= response.status_code < 500:
            self.refused += 1
        else:
            self.unreachable += 1

    async def submit_ws(self) -> None:
        """Submit on a WebSocket and read the first answer (the pending status)."""
        body = self.body()
        try:
            async with websockets.connect(f"{self.ws_url}/orders/execute", open_timeout=5) as ws:
                await ws.send(json.dumps(body))
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        except (OSError, TimeoutError, websockets.WebSocketException):
            self.unreachable += 1
            return
        if "orderId" in first:
            self.took(first["orderId"], body, None)
        else:
            self.refused += 1

    async def run(self, rate_per_s: float, stop: asyncio.Event,
                  launch_every_s: float = 8.0) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            pending: set[asyncio.Task[None]] = set()
            started = time.monotonic()
            sent = launched = 0
            while not stop.is_set():
                if self.waiting and (time.monotonic() - started) // launch_every_s > launched:
                    launched += 1
                    await self.launch(client)
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
            if self._later:
                await asyncio.wait(set(self._later))


async def audit(env: Mapping[str, str], accepted: Sequence[str],
                timeout_s: float = 120.0, deadlines: Mapping[str, float] | None = None) -> Audit:
    """Waits until every accepted order has a terminal state in PostgreSQL (or the deadline),
    then judges how each ended, in the system with this environment: ``oee audit``'s
    ``accepted_endings``. ``deadlines``: each waiting order's (epoch seconds); one still
    open before it is not lost."""
    return Audit(endings=await accepted_endings(load(env), accepted, deadlines=deadlines,
                                                wait_s=timeout_s))


async def kill_periodically(system: System, every_s: float, stop: asyncio.Event) -> int:
    kills = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
            break
        except TimeoutError:
            pass
        service = SOAK_KILLS[kills % len(SOAK_KILLS)]
        index = kills // len(SOAK_KILLS) % len(system.processes[service])
        system.kill(service, index)
        kills += 1
        print(f"soak: killed {service} #{index} (kill {kills})", flush=True)
        await asyncio.sleep(1)
        system.restart_dead()
    return kills


async def soak(system: System, env: dict[str, str], minutes: float, rate: float,
               kill_every_s: float) -> Audit:
    load = Load(system.url, system.ws_url, waiting=True)
    stop = asyncio.Event()
    loading = asyncio.create_task(load.run(rate, stop))
    killing = asyncio.create_task(kill_periodically(system, kill_every_s, stop))
    started = time.monotonic()
    while time.monotonic() - started < minutes * 60:
        await asyncio.sleep(min(10.0, minutes * 60))
        print(f"soak: {time.monotonic() - started:5.0f}s  accepted {len(load.accepted)}  "
              f"refused {load.refused}  unreachable {load.unreachable}  cancels "
              f"{load.cancels}  launches {load.launches}", flush=True)
    stop.set()
    await loading
    kills = await killing
    system.restart_dead()
    result = await audit(env, load.accepted, deadlines=load.deadlines)
    result.refused, result.kills, result.launches = load.refused, kills, load.launches
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
