"""``oee bench``: submit orders to a running system, follow each to its end, print figures.

Past 400 lines: one run is one story (start or find the system, load it, follow every
order, sample the groups, measure every process), and its report is in ``bench.report``.

Two ways to load it:
* closed loop (``--in-flight N``): N orders in flight at any time, a new one as soon as one
  ends. With N equal to the executors' total concurrency nothing queues inside the engine,
  so end-to-end time minus the simulated delays is the engine's own overhead.
* open loop (``--rate R``): R orders per second whatever happens, for sustained throughput.

Orders are submitted over HTTP and followed by tailing the event stream (so the bench needs
REDIS_URL and OEE_NAMESPACE, as the system has), or with ``--ws`` submitted and followed on
one WebSocket each, as a client would.

``--type`` picks the orders: ``market`` (the default); ``limit``, marketable (they fill at
once) or with ``--resting`` not (each is cancelled as soon as it is open, so the run times
submit to open and cancel to cancelled); ``sniper``: every order waits for one new mint,
the bench launches its pool once all are open, and reports ``PoolLaunched`` to each
``Submitted``.

The HTTP client is aiohttp (``http_client``); the hand-written one it replaced could send a
POST twice. What it costs, alternating with the code before, three runs each of
``OEE_EXECUTOR_CONCURRENCY=200 oee bench --spawn --rate 400 --duration 15
--quote-latency-ms 0 --execution-latency-ms 0 --json`` on the shared 2-core machine
(2026-12-06; other work ran meanwhile, so the figures are noisy). The bench process's own
CPU (user + system, start-up and warm-up included) per accepted order: in a quiet hour
0.923, 0.881 and 0.884 ms before, 1.020, 1.037 and 0.977 ms after; in a busy one 0.397,
0.394 and 0.504 before, 0.549, 0.493 and 0.515 after: 0.12-0.14 ms more an order, 5% of a
core at 400 orders/s. Alone, against a server that only answers 202, a request cost 50 µs
before and 180-230 µs after. In the quiet hour the engine's figures stayed within the runs'
spread: 399.3-399.7 orders/s before and 399.4-399.8 after, end-to-end p50 21-41 and 16-33
ms, p99 56-103 and 36-123 ms. Every figure is measured as before; the generator's CPU over
the measured window is ``cpu_ms_per_order["generator"]``.

Past 400 lines: a run's submitting, following, sampling and counting share its tracks, in
one class; what it reports, and the table of it, is ``bench.report``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import aiohttp
import base58
import httpx
import msgspec
import psycopg
import websockets

from bench.cpu import cpu_used, primaries, snapshot, syscalls_made
from bench.harness import System, collections_paused, forget
from bench.postgres import PgCounters, clients, grown_by, pg_counters, read_once_gone
from bench.report import (
    Result,
    Sample,
    percentiles,
    redis_commands,
    redis_cpu_s,
    render,
    rss_mb,
    sent_within,
)
from shared import lifecycle
from shared.accounts import create_key
from shared.config import Settings, load
from shared.events import AnyEvent, Confirmed, Routed, Submitted
from shared.launches import Launches, PoolLaunched
from shared.metrics import DELIVERY
from shared.redis_client import is_cluster
from shared.stream import EventStore, Positions

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5", "slippage": 0.05}
# Market and limit orders come in this many sizes, taken in turn: as traders' orders do, they
# differ, so the router decides each one's route (it remembers a decision per order terms
# and market tick: a run of identical orders would decide once a tick).
SIZES = 1000
CONNECTIONS = 32
# Following the log: entries per read; at a steady rate it is read once FOLLOW_ORDERS
# orders have come, but no more often than every FOLLOW_EVERY_S[0] seconds and no less
# often than every FOLLOW_EVERY_S[1].
FOLLOW_PAGE = 2000
FOLLOW_ORDERS = 5
FOLLOW_EVERY_S = (0.02, 0.1)


def follow_every_s(rate: float) -> float:
    """How long the bench waits between reads of the log at a steady ``rate``."""
    often, seldom = FOLLOW_EVERY_S
    return min(seldom, max(often, FOLLOW_ORDERS / rate))


STAGES = (
    ("accept", "OrderRequested", None),
    ("route", "OrderRequested", "Routed"),
    ("pickup", "Routed", "Built"),
    ("send", "Built", "Submitted"),
    ("confirm", "Submitted", "Confirmed"),
)
# A waiting order is opened, fired, then routed; a resting one is cancelled once open.
WAITING_STAGES = (
    ("accept", "OrderRequested", None),
    ("open", "OrderRequested", "OrderOpened"),
    ("fire", "OrderOpened", "Triggered"),
    ("route", "Triggered", "Routed"),
    *STAGES[2:],
)
RESTING_STAGES = (
    ("accept", "OrderRequested", None),
    ("open", "OrderRequested", "OrderOpened"),
    ("cancel", "OrderOpened", "Cancelled"),
)
# A limit any SOL price meets, and one none does (the seeded market stays near 150 USDC).
MARKETABLE, RESTING = "1", "100000"
SNIPER_AMOUNT = "0.01"
# After one of these an order changes no more.
ENDS = lifecycle.TERMINAL


class Options(msgspec.Struct, kw_only=True):
    orders: int = 0
    duration_s: float = 0.0
    rate: float = 0.0
    in_flight: int = 10
    ws: bool = False
    as_json: bool = False
    spawn: bool = False
    executors: int = 1
    quote_latency_ms: str | None = None
    execution_latency_ms: str | None = None
    # Seconds between samples of the groups' backlog and of memory.
    sample_s: float = 5.0
    # Orders run (closed loop) and left out before measuring: the first ones pay for
    # connections, script loading and the first market tick.
    warmup: int = 20
    # The key to submit with; --spawn makes one.
    api_key: str | None = None
    order_type: str = "market"
    # Limit orders only: not marketable; the bench cancels each once it is open.
    resting: bool = False
    # With --spawn: settings for the services, over the environment's.
    env: dict[str, str] = msgspec.field(default_factory=dict)
    # A file for each measured order's times, one JSON line each (``OrderTimes``).
    orders_out: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key} if self.api_key else {}


class Track(msgspec.Struct):
    submitted_at: float
    events: dict[str, AnyEvent] = msgspec.field(default_factory=dict)
    ended_at: float | None = None
    status: str | None = None

    def simulated_ms(self) -> float | None:
        """A confirmed market order's simulated delays: the slower venue's quote and the
        landed attempt's chain time. A fired sniper's route was priced by the trigger: no
        venue was asked."""
        routed, confirmed = self.events.get("Routed"), self.events.get("Confirmed")
        if not (isinstance(routed, Routed) and isinstance(confirmed, Confirmed)):
            return None
        return max((q.latency_ms for q in routed.quotes), default=0.0) + confirmed.simulated_ms


class OrderTimes(msgspec.Struct, rename="camel"):
    """One measured order, as ``--orders-out`` writes it: what its figures are made of."""

    order_id: str
    status: str | None
    # Seconds since the epoch: the submit, and the terminal event entering the log.
    submitted_at: float
    ended_at: float | None
    # When each of its events was made, the first of each type.
    events: dict[str, float]
    simulated_ms: float | None


class Bench:
    def __init__(self, base_url: str, ws_url: str, settings: Settings, options: Options,
                 gateway_pid: int | None = None,
                 pids: dict[str, list[int]] | None = None) -> None:
        self.base_url, self.ws_url = base_url, ws_url
        # When the work before the window ended (the warm-up's end; time.monotonic()).
        # Whole: joining a session's base URL to a path cost 85 µs of CPU a request.
        self.submit_url = f"{base_url}/orders/execute"
        self.gateway_pid = gateway_pid
        # The system's processes, by service, when the bench started them.
        self.pids = pids or {}
        self.samples: list[Sample] = []
        self.settings, self.options = settings, options
        self.tracks: dict[str, Track] = {}
        self.refused = 0
        self.ended = asyncio.Event()
        self.done = 0
        self.slots = asyncio.Semaphore(options.in_flight)
        self.deliveries: list[float] = []
        self.subscribers = self.subscribers_peak = 0
        self.mint = base58.b58encode(secrets.token_bytes(32)).decode()
        self.bodies = [msgspec.json.encode(body) for body in order_bodies(options, self.mint)]
        self.submits = 0
        self.opened = 0
        self.all_open = asyncio.Event()
        self.expect_open = sys.maxsize
        self.to_cancel: asyncio.Queue[str] = asyncio.Queue()
        self.launched: PoolLaunched | None = None

    # --- submitting -------------------------------------------------------------------

    def next_body(self) -> bytes:
        body = self.bodies[self.submits % len(self.bodies)]
        self.submits += 1
        return body

    async def submit_http(self, client: aiohttp.ClientSession) -> None:
        started = time.time()
        try:
            async with client.post(self.submit_url, data=self.next_body()) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, OSError):
            # Never sent again: a POST that may have reached the gateway is not repeated.
            status, body = 0, b""
        if status != 202:
            self.refused += 1
            self.slots.release()
            return
        order_id = msgspec.json.decode(body)["orderId"]
        self.tracks.setdefault(order_id, Track(started)).submitted_at = started

    async def submit_ws(self) -> None:
        started = time.time()
        async with websockets.connect(f"{self.ws_url}/orders/execute", open_timeout=30,
                                      compression=None,
                                      additional_headers=self.options.headers) as ws:
            await ws.send(self.next_body().decode())
            track: Track | None = None
            self.subscribers += 1
            self.subscribers_peak = max(self.subscribers_peak, self.subscribers)
            async for raw in ws:
                received = time.time()
                message = json.loads(raw)
                if "error" in message:
                    self.refused += 1
                    self.slots.release()
                    return
                if track is None:
                    # The stream tail may have seen the order first: the submit time is ours.
                    track = self.tracks.setdefault(message["orderId"], Track(started))
                    track.submitted_at = started
                at = datetime.fromisoformat(message["timestamp"]).timestamp()
                self.deliveries.append((received - at) * 1000)
                if message["status"] in ENDS:
                    self.finish(track, message["status"])
            self.subscribers -= 1

    def finish(self, track: Track, status: str, at: float | None = None) -> None:
        """``at``: when the order ended, if not now."""
        if track.ended_at is None:
            track.ended_at, track.status = at or time.time(), status
            self.done += 1
            self.slots.release()
            if self.done == self.target:
                self.ended.set()

    @property
    def target(self) -> int:
        return self.options.orders or sys.maxsize

    async def submit_all(self) -> int:
        """Submits until the order count or the duration is reached; returns how many."""
        o = self.options
        deadline = time.monotonic() + (o.duration_s or 10**9)
        sent = 0
        tasks: set[asyncio.Task[None]] = set()
        client = http_client(self.options.headers)
        try:
            started = time.monotonic()
            while sent < self.target and time.monotonic() < deadline:
                if o.rate:
                    due = min(self.target, int((time.monotonic() - started) * o.rate))
                    if due <= sent:
                        await asyncio.sleep(0.002)
                        continue
                else:
                    await self.slots.acquire()
                task = asyncio.create_task(self.submit_ws() if o.ws else self.submit_http(client))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            if tasks:
                await asyncio.wait(tasks)
        finally:
            await client.close()
        return sent

    # --- following --------------------------------------------------------------------

    async def follow(self, store: EventStore, start: Positions) -> None:
        """Every event of the log after ``start``. At a steady rate (open loop) the log is
        read once a few orders have come (``follow_every_s``): the load generator's own
        reads count in Redis's CPU and commands as if the engine's (read every 20 ms, 2.1
        ``XREAD`` an order at 20 orders/s), and a read of 100 ms of events at 1,000/s
        holds Redis up long enough to add to the engine's p99. An order ends when its
        terminal event entered the log (its stream id's time), however late this reads
        it."""
        position = start
        lingers = self.options.rate > 0
        every_s = follow_every_s(self.options.rate) if lingers else 0.0
        while True:
            entries = await store.tail(position, FOLLOW_PAGE)
            for entry in entries:
                position = position.advanced(entry.partition, entry.id)
                event = entry.event
                track = self.tracks.setdefault(event.order_id, Track(time.time()))
                # The first of each type: a retried order's first Submitted is when it went.
                track.events.setdefault(event.type, event)
                if event.type == "OrderOpened":
                    self.opened += 1
                    self.count_open()
                    if self.options.resting:
                        self.to_cancel.put_nowait(event.order_id)
                if event.is_terminal and not self.options.ws:
                    self.finish(track, event.status or "", entry.id.ms / 1000)
            if lingers and len(entries) < FOLLOW_PAGE:
                await asyncio.sleep(every_s)

    async def cancel(self) -> None:
        """Cancels each resting order as soon as it is open."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30,
                                     headers=self.options.headers) as client:
            while True:
                order_id = await self.to_cancel.get()
                response = await client.delete(f"/orders/{order_id}")
                if response.status_code != 202:
                    sys.stderr.write(f"bench: cancel of {order_id}: {response.text}\n")

    def count_open(self) -> None:
        if self.opened >= self.expect_open:
            self.all_open.set()

    async def launch(self, store: EventStore, accepted: int) -> None:
        """Once every sniper is open, launch the pool they wait for."""
        self.expect_open = accepted
        self.count_open()
        await self.all_open.wait()
        launch = PoolLaunched(mint=self.mint, symbol="B" + secrets.token_hex(3).upper(),
                              decimals=6, venue="raydium", price="0.0001",
                              liquidity="100000")
        await Launches(store.redis, self.settings.namespace).append(launch)
        self.launched = launch

    async def progress(self) -> None:
        """A progress line, redrawn in place on a terminal, every 5 s elsewhere."""
        live = sys.stderr.isatty()
        while True:
            line = (f"  submitted {len(self.tracks):7d}  finished {self.done:7d}  "
                    f"refused {self.refused:5d}")
            sys.stderr.write(f"\r{line}" if live else f"{line}\n")
            sys.stderr.flush()
            await asyncio.sleep(0.5 if live else 5)

    async def watch(self, store: EventStore, began: float) -> None:
        """Samples the groups' backlog, Redis memory and the gateway's RSS all run long."""
        while True:
            memory = await store.redis.info("memory")
            self.samples.append(Sample(
                at_s=round(time.time() - began, 1), backlog=await store.backlog(),
                redis_used_mb=round(memory["used_memory"] / 2**20, 1),
                gateway_rss_mb=rss_mb(self.gateway_pid) if self.gateway_pid else None,
            ))
            await asyncio.sleep(self.options.sample_s)

    # --- the run ----------------------------------------------------------------------

    async def run(self) -> Result:
        store = EventStore(msgspec.structs.replace(self.settings, block_ms=200))
        nodes = primaries(self.settings.redis_url, is_cluster(self.settings.redis_url))
        start = await store.heads()
        following = asyncio.create_task(self.follow(store, start))
        showing = None if self.options.as_json else asyncio.create_task(self.progress())
        delivery_before = await self.delivery_counts()
        counted = snapshot(self.pids, nodes)
        generated = time.process_time()
        began = time.time()
        watching = asyncio.create_task(self.watch(store, began))
        cancelling = asyncio.create_task(self.cancel()) if self.options.resting else None
        sent = await self.submit_all()
        accepted = sent - self.refused
        if self.options.order_type == "sniper":
            await asyncio.wait_for(self.launch(store, accepted), 600)
        if self.done < accepted:
            self.options.orders = accepted
            if self.done < accepted:
                await asyncio.wait_for(self.ended.wait(), 600)
        finished = time.time()
        projected = await self.projected_after(began)
        pending = await store.backlog()
        # Acknowledgements linger a moment after the work they acknowledge: what is still
        # pending a second later is real.
        deadline = time.monotonic() + 1
        while any(pending.values()) and time.monotonic() < deadline:
            await asyncio.sleep(FOLLOW_EVERY_S[0])
            pending = await store.backlog()
        generator_s = time.process_time() - generated
        counts = snapshot(self.pids, nodes)
        used = cpu_used(counted, counts)
        used["generator"] = generator_s
        used["redis"] = redis_cpu_s(counted, counts)
        commands = redis_commands(counted, counts)
        for node in nodes.values():
            node.close()
        following.cancel()
        watching.cancel()
        if cancelling:
            cancelling.cancel()
        delivery = await self.delivery_counts()
        if showing:
            showing.cancel()
            sys.stderr.write("\n")
        await store.close()
        result = self.result(began, finished, projected, pending)
        if self.options.orders_out:
            self.write_orders(Path(self.options.orders_out))
        result.gateway_sent_within_ms = sent_within(delivery_before, delivery)
        # The engine's and the servers' CPU over the window's wall time: the generator's
        # is the tool's, not the system's.
        system_s = sum(s for kind, s in used.items() if kind != "generator")
        result.cores_busy = round(system_s / max(counts.at - counted.at, 1e-9), 3)
        if result.accepted:
            result.cpu_ms_per_order = {kind: round(seconds / result.accepted * 1000, 4)
                                       for kind, seconds in sorted(used.items())}
            result.redis_commands_per_order = round(commands / result.accepted, 2)
            result.syscalls_per_order = {
                kind: {"reads": round(reads / result.accepted, 2),
                       "writes": round(writes / result.accepted, 2)}
                for kind, (reads, writes) in sorted(syscalls_made(counted, counts).items())}
        return result

    def write_orders(self, path: Path) -> None:
        """Each order of the run: its submit, its events' times, its end, its delays."""
        encoder = msgspec.json.Encoder()
        with path.open("wb") as out:
            for order_id, track in self.tracks.items():
                out.write(encoder.encode(OrderTimes(
                    order_id=order_id, status=track.status, submitted_at=track.submitted_at,
                    ended_at=track.ended_at,
                    events={kind: event.at.timestamp() for kind, event in track.events.items()},
                    simulated_ms=track.simulated_ms())) + b"\n")

    async def delivery_counts(self) -> dict[str, int]:
        """The gateway's delivery histogram: bound (seconds, as text) -> cumulative count."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            text = (await client.get("/metrics")).text
        counts = {}
        for line in text.splitlines():
            if line.startswith(DELIVERY_BUCKET):
                bound, _, count = line[len(DELIVERY_BUCKET):].partition('"} ')
                counts[bound] = int(float(count))
        return counts

    async def projected_after(self, began: float) -> float | None:
        ids = [i for i, t in self.tracks.items() if t.status]
        deadline = time.monotonic() + 120
        async with await psycopg.AsyncConnection.connect(self.settings.database_url) as conn:
            while time.monotonic() < deadline:
                cursor = await conn.execute(
                    "SELECT count(*) FROM orders WHERE order_id = ANY(%s)"
                    " AND status = ANY(%s)", (ids, sorted(ENDS)))
                row = await cursor.fetchone()
                if row and row[0] == len(ids):
                    return round(time.time() - began, 2)
                await asyncio.sleep(0.1)
        return None

    def result(self, began: float, finished: float, projected: float | None,
               pending: dict[str, int]) -> Result:
        ended = [t for t in self.tracks.values() if t.ended_at is not None]
        e2e = [(t.ended_at - t.submitted_at) * 1000 for t in ended if t.ended_at]
        overhead, simulated_sum, timed_sum = [], 0.0, 0.0
        kinds = (RESTING_STAGES if self.options.resting else
                 STAGES if self.options.order_type == "market" else WAITING_STAGES)
        stages: dict[str, list[float]] = {name: [] for name, _, _ in kinds}
        sniped: list[float] = []
        for track in ended:
            events = track.events
            simulated = track.simulated_ms()
            if (simulated is not None and track.ended_at
                    and self.options.order_type == "market"):
                timed = (track.ended_at - track.submitted_at) * 1000
                overhead.append(timed - simulated)
                simulated_sum, timed_sum = simulated_sum + simulated, timed_sum + timed
            submitted = events.get("Submitted")
            if self.launched is not None and isinstance(submitted, Submitted):
                sniped.append((submitted.at - self.launched.at).total_seconds() * 1000)
            for name, first, then in kinds:
                a = events.get(first)
                b = events.get(then) if then else None
                if a is not None and then is None:
                    stages[name].append((a.at.timestamp() - track.submitted_at) * 1000)
                elif a is not None and b is not None:
                    stages[name].append((b.at - a.at).total_seconds() * 1000)
        seconds = max(finished - began, 1e-9)
        reached = Counter(t.status for t in ended)
        return Result(
            accepted=len(self.tracks),
            confirmed=reached["confirmed"],
            failed=reached["failed"],
            refused=self.refused,
            seconds=round(seconds, 2),
            orders_per_s=round(len(ended) / seconds, 2),
            end_to_end_ms=percentiles(e2e),
            overhead_ms=percentiles(overhead),
            # None with zero delays: then no rate is theirs.
            ideal_rate_share=(round(simulated_sum / timed_sum, 4)
                              if simulated_sum > 0 and timed_sum > 0 else None),
            stages_ms={name: percentiles(values) for name, values in stages.items()},
            projected_in_postgres_s=projected,
            pending_entries=pending,
            ws_delivery_ms=percentiles(self.deliveries),
            ws_subscribers_peak=self.subscribers_peak,
            gateway_rss_mb=rss_mb(self.gateway_pid) if self.gateway_pid else None,
            samples=self.samples,
            order_type=self.options.order_type,
            cancelled=reached["cancelled"],
            expired=reached["expired"],
            launch_to_submitted_ms=percentiles(sniped),
        )


DELIVERY_BUCKET = f'{DELIVERY}_bucket{{le="'


def http_client(headers: dict[str, str]) -> aiohttp.ClientSession:
    """Keep-alive connections, ``CONNECTIONS`` at most, JSON bodies. aiohttp never sends a
    POST twice (only idempotent requests are retried on a kept-alive connection the server
    closed), and it keeps up where httpx does not: with 6,000 requests waiting for 32
    connections httpx's pool took minutes of CPU."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONNECTIONS),
        headers={"content-type": "application/json", **headers},
        timeout=aiohttp.ClientTimeout(total=30), cookie_jar=aiohttp.DummyCookieJar())


def amounts(count: int = SIZES) -> list[str]:
    """``count`` different amounts of SOL, from 0.01 to 10 (spread evenly on a log scale, so
    small orders are as common as large ones), in a fixed order that mixes them: a stride
    prime to the count visits every size once."""
    sizes = [f"{0.01 * 1000 ** (n / (count - 1)):.6f}" for n in range(count)]
    stride = next(step for step in range(count // 3 + 1, count) if math.gcd(step, count) == 1)
    return [sizes[n * stride % count] for n in range(count)]


def order_bodies(options: Options, mint: str) -> list[dict[str, object]]:
    """What the run submits, by ``--type``, in turn: market and limit orders in ``SIZES``
    sizes; snipers all alike (a launch's snipers share their terms)."""
    if options.order_type == "sniper":
        return [{"type": "sniper", "tokenIn": "SOL", "tokenOut": mint,
                 "amount": SNIPER_AMOUNT, "slippage": 0.05, "ttlSeconds": 3600}]
    kind: dict[str, object] = {}
    if options.order_type == "limit":
        kind = {"type": "limit", "ttlSeconds": 3600,
                "limitPrice": RESTING if options.resting else MARKETABLE}
    return [{**ORDER, "amount": amount, **kind} for amount in amounts()]


def postgres_per_order(result: Result, written: PgCounters, orders: int) -> None:
    if orders:
        result.postgres_transactions_per_order = round(written.transactions / orders, 3)
        result.postgres_rows_written_per_order = round(written.rows_written / orders, 3)


class Lifetime:
    """PostgreSQL's counters before a spawned system starts and after it has stopped."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.clients = asyncio.run(clients(database_url))
        self.before = asyncio.run(pg_counters(database_url))
        self.after: PgCounters | None = None

    def ended(self) -> None:
        self.after = asyncio.run(read_once_gone(self.database_url, self.clients))


@contextmanager
def spawned(options: Options) -> Iterator[tuple[System, Settings, Lifetime]]:
    from services.cli.embedded import free_port
    from services.cli.up import servers

    root = Path(tempfile.mkdtemp(prefix="oee-bench-"))
    root.chmod(0o755)
    with servers(root) as env:
        namespace = f"bench-{secrets.token_hex(3)}"
        env.update({"PORT": str(free_port()), "OEE_NAMESPACE": namespace,
                    "OEE_LOG_LEVEL": "WARNING",
                    # Keys stay on, as in production; the limits are lifted for the load.
                    "OEE_AUTH": "required", "OEE_RATE_LIMIT_PER_MIN": "10000000",
                    "OEE_MAX_OPEN_ORDERS": "10000000", "OEE_MAX_WS_PER_ACCOUNT": "1000000"})
        options.api_key = asyncio.run(create_key(env["DATABASE_URL"], namespace))
        if options.quote_latency_ms is not None:
            env["OEE_QUOTE_LATENCY_MS"] = options.quote_latency_ms
        if options.execution_latency_ms is not None:
            env["OEE_EXECUTION_LATENCY_MS"] = options.execution_latency_ms
        env.update(options.env)
        logs = root / "logs"
        logs.mkdir()
        system = System(env, logs)
        lifetime = Lifetime(env["DATABASE_URL"])
        system.start_all({"executor": options.executors})
        try:
            system.wait_ready()
            yield system, load(env), lifetime
            system.stop()
            lifetime.ended()
        finally:
            system.stop()
            forget(load(env))


def run(options: Options, url: str | None) -> int:
    result = measure(options, url)
    if options.as_json:
        print(msgspec.json.encode(result).decode())
    else:
        print(render(result))
    return 0


def measure(options: Options, url: str | None) -> Result:
    """One run: against the system at ``url`` (or $PORT's), or one ``--spawn`` starts."""
    if not (options.orders or options.duration_s):
        options.orders = 200

    if options.order_type == "sniper":
        # Every sniper waits at once for the one launch.
        options.in_flight, options.rate, options.duration_s = options.orders, 0.0, 0.0

    def go(base_url: str, settings: Settings, gateway_pid: int | None = None,
           pids: dict[str, list[int]] | None = None) -> tuple[Result, int]:
        """The run's result, and how many orders the warm-up had accepted."""
        ws_url = base_url.replace("http", "ws", 1)
        if options.warmup:
            # A sniper run warms up on market orders: a launch is the thing it measures.
            warmup = msgspec.structs.replace(
                options, orders=options.warmup, duration_s=0, rate=0, as_json=True,
                in_flight=options.warmup, orders_out=None,
                order_type="market" if options.order_type == "sniper" else options.order_type)
            warmed = asyncio.run(Bench(base_url, ws_url, settings, warmup).run()).accepted
        else:
            warmed = 0
        with collections_paused():
            measured = asyncio.run(Bench(base_url, ws_url, settings, options, gateway_pid,
                                         pids).run())
        return measured, warmed

    if options.spawn:
        with spawned(options) as (system, settings, lifetime):
            pids = {service: [p.pid for p in processes]
                    for service, processes in system.processes.items()}
            result, warmed = go(system.url, settings, pids["gateway"][0], pids)
        if lifetime.after is not None:
            postgres_per_order(result, grown_by(lifetime.before, lifetime.after),
                               result.accepted + warmed)
    else:
        settings = load()
        options.api_key = options.api_key or os.environ.get("OEE_API_KEY")
        result, _ = go(url or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}", settings)
    return result
