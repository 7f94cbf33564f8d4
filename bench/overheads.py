"""What the machinery costs per order, apart from any order's own work: the measurements
behind the executor's overhead figures in ``docs/performance.md``. Not a test (it only
measures):

    python -m bench.overheads

with REDIS_URL set (a single Redis, over TCP or a Unix socket). It prints one JSON document,
CPU microseconds of this process (user and system):

* ``workerPerEntry``: 10,000 entries through a ``Worker`` whose handler does nothing but
  yield once, handed over one at a time (as the executor takes orders) and 100 at a time;
* ``pipelinePerCommand``: 100 HGETALLs of 600-byte hashes in one round trip, through
  redis-py's pipeline and through ``pipelined``;
* ``roundTrip``: one PING waited for, 5,000 times one after another: on a blocking socket
  and through a bare protocol on the event loop (what the machine and the loop cost, with
  no client), through redis-py's client (``ping()``), through ``pipelined`` on a connection
  of its own from the pool, and through ``pipelined`` on the connection every task shares;
* ``submit``: POST /orders/execute through the gateway's app (auth off, the limits out of
  the way), its answer waited for, 1,000 times a round, 10 rounds: straight to its endpoint
  (``submitStraight``, as the gateway serves it) and through Starlette's middleware and
  route matching (``submitThroughStarlette``), the rounds of each way in turn; each way's
  median round. Real Redis calls: the difference is the layers'.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvloop
from starlette.applications import Starlette

from bench.events import order
from services.gateway.app import create_app
from shared.config import Settings
from shared.events import OrderRequested
from shared.redis_client import Client, connect, pipelined
from shared.stream import Entry, EventStore
from shared.worker import Worker, WorkerSettings

ENTRIES = 10_000
BATCHES = 200
ROUND_TRIPS = 5_000
SUBMITS = 1_000
SUBMIT_ROUNDS = 10
SUBMIT_BODY = b'{"tokenIn":"SOL","tokenOut":"USDC","amount":0.5,"slippage":0.01}'


async def worker_per_entry(redis_url: str, chunk_size: int, concurrency: int) -> float:
    settings = Settings(redis_url=redis_url, namespace=f"overheads-{secrets.token_hex(3)}")
    store = EventStore(settings)
    try:
        events = [order(str(uuid.uuid4())) for _ in range(ENTRIES)]
        for start in range(0, ENTRIES, 500):
            await store.append(events[start : start + 500])
        handled = 0
        finished = asyncio.Event()

        async def handle(entries: Sequence[Entry]) -> None:
            nonlocal handled
            await asyncio.sleep(0)
            handled += len(entries)
            if handled >= ENTRIES:
                finished.set()

        worker_settings = WorkerSettings(
            group="router", consumer="overheads", types=(OrderRequested,), batch_size=100,
            chunk_size=chunk_size, concurrency=concurrency)
        stop = asyncio.Event()
        started = time.process_time()
        running = asyncio.create_task(Worker(store, worker_settings, handle).run(stop))
        await finished.wait()
        used = time.process_time() - started
        stop.set()
        await running
        return round(used / ENTRIES * 1e6, 1)
    finally:
        await forget(store)


async def pipeline_per_command(redis_url: str) -> dict[str, float]:
    store = EventStore(Settings(redis_url=redis_url,
                                namespace=f"overheads-{secrets.token_hex(3)}"))
    redis = store.redis
    keys = [f"{store.settings.namespace}:hash:{n}" for n in range(100)]
    try:
        await pipelined(redis, [("HSET", key, "1", "x" * 300, "2", "y" * 300)
                                for key in keys])
        started = time.process_time()
        for _ in range(BATCHES):
            async with redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                await pipe.execute()
        redis_py = time.process_time() - started
        started = time.process_time()
        for _ in range(BATCHES):
            await pipelined(redis, [("HGETALL", key) for key in keys])
        ours = time.process_time() - started
        per_command = BATCHES * len(keys) / 1e6
        return {"redisPyPipeline": round(redis_py / per_command, 1),
                "pipelined": round(ours / per_command, 1)}
    finally:
        await forget(store)


PING = b"*1\r\n$4\r\nPING\r\n"


class _Pinging(asyncio.Protocol):
    """A bare protocol on the event loop: what a round trip costs below any client."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.answer: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(data)

    async def ping(self) -> bytes:
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(PING)
        return await self.answer


async def round_trip(redis_url: str) -> dict[str, float]:
    redis = connect(redis_url, cluster=False)
    assert isinstance(redis, Client), "a single Redis, over TCP or a Unix socket"
    address = redis.multiplexed.address
    loop = asyncio.get_running_loop()
    if isinstance(address, str):
        blocking = socket.socket(socket.AF_UNIX)
        blocking.connect(address)
        transport, bare = await loop.create_unix_connection(_Pinging, address)
    else:
        blocking = socket.create_connection(address)
        blocking.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport, bare = await loop.create_connection(_Pinging, *address)

    async def ping_blocking() -> bytes:
        blocking.sendall(PING)
        return blocking.recv(64)

    ways: dict[str, Callable[[], Awaitable[Any]]] = {
        # The machine's share: a blocking socket, then the event loop's, with no client.
        "socketBlocking": ping_blocking,
        "bareProtocol": bare.ping,
        "redisPyClient": redis.ping,
        "pipelinedOwnConnection": lambda: pipelined(redis, [("PING",)], own_connection=True),
        "pipelinedShared": lambda: pipelined(redis, [("PING",)]),
    }
    try:
        used = {}
        for name, way in ways.items():
            await way()  # connected first
            started = time.process_time()
            for _ in range(ROUND_TRIPS):
                await way()
            used[name] = round((time.process_time() - started) / ROUND_TRIPS * 1e6, 1)
        return used
    finally:
        blocking.close()
        transport.close()
        await redis.aclose()


async def submit(redis_url: str) -> dict[str, float]:
    settings = Settings(redis_url=redis_url, namespace=f"overheads-{secrets.token_hex(3)}",
                        auth="off", rate_limit_per_min=10**7, max_open_orders=10**7)
    app = create_app(settings)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/orders/execute",
             "raw_path": b"/orders/execute", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(SUBMIT_BODY)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": SUBMIT_BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    ways: dict[str, Callable[..., Awaitable[None]]] = {
        "submitStraight": app.__call__,
        "submitThroughStarlette": lambda *call: Starlette.__call__(app, *call),
    }
    rounds: dict[str, list[float]] = {name: [] for name in ways}
    try:
        await ways["submitStraight"](dict(scope), receive, send)  # connected first
        for _ in range(SUBMIT_ROUNDS):
            for name, way in ways.items():
                started = time.process_time()
                for _ in range(SUBMITS):
                    await way(dict(scope), receive, send)
                rounds[name].append((time.process_time() - started) / SUBMITS * 1e6)
        assert statuses == {202}, statuses
        return {name: round(statistics.median(used), 1) for name, used in rounds.items()}
    finally:
        await forget(app.state.parts.store)


async def forget(store: EventStore) -> None:
    """Every key of the measure's namespace."""
    keys = await store.redis.keys(f"{store.settings.namespace}*")
    if keys:
        await store.redis.delete(*keys)
    await store.close()


async def measure(redis_url: str) -> dict[str, object]:
    return {
        "workerPerEntry": {
            "oneAtATime": await worker_per_entry(redis_url, 1, 1000),
            "hundredAtATime": await worker_per_entry(redis_url, 100, 10),
        },
        "pipelinePerCommand": await pipeline_per_command(redis_url),
        "roundTrip": await round_trip(redis_url),
        "submit": await submit(redis_url),
    }


def main() -> None:
    print(json.dumps(uvloop.run(measure(os.environ["REDIS_URL"])), indent=1))


if __name__ == "__main__":
    main()
