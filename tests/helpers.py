"""Waiting on what the system does, with a deadline instead of a sleep; and what a client of
the running system does: submit over HTTP, follow over WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import httpx
import websockets
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# The events tools and tests feed a service with, kept where the tools can reach them.
from bench.events import order as order
from bench.events import route_now as route_now
from bench.harness import System
from shared.config import Settings
from shared.events import AnyEvent
from shared.process import Main
from shared.stream import EventStore, Positions

T = TypeVar("T")

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.01}
# What a subscriber sees of a market order that executes at its first attempt.
HAPPY = ["pending", "routing", "building", "submitted", "confirmed"]


async def stories(
    store: EventStore, order_ids: Iterable[str], timeout_s: float = 30.0
) -> dict[str, list[AnyEvent]]:
    """Follow the log (every partition) from its start until every order has a terminal
    event; returns each order's events in log order."""
    wanted = set(order_ids)
    found: dict[str, list[AnyEvent]] = defaultdict(list)
    done: set[str] = set()
    position = Positions.origin(len(store.partitions))
    deadline = time.monotonic() + timeout_s
    while done != wanted:
        if time.monotonic() > deadline:
            missing = sorted(wanted - done)[:5]
            raise TimeoutError(f"{len(wanted - done)} orders unfinished, e.g. {missing}: "
                               f"{[[e.type for e in found[m]] for m in missing]}")
        for entry in await store.tail(position, 1000):
            position = position.advanced(entry.partition, entry.id)
            if entry.event.order_id in wanted:
                found[entry.event.order_id].append(entry.event)
                if entry.event.is_terminal:
                    done.add(entry.event.order_id)
    return dict(found)


async def eventually(check: Callable[[], Awaitable[T | None]], timeout_s: float = 30.0,
                     every_s: float = 0.05) -> T:
    """Poll ``check`` until it returns something other than None, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{check} still None after {timeout_s}s")
        await asyncio.sleep(every_s)


@contextlib.asynccontextmanager
async def running(main: Main, settings: Settings) -> AsyncIterator[asyncio.Event]:
    """A service's main loop as a task, stopped gracefully at the end."""
    stop = asyncio.Event()
    task = asyncio.create_task(main(settings, stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def submit(client: httpx.AsyncClient, body: Any = ORDER) -> str:
    """The orderId of an order the gateway accepted."""
    response = await client.post("/orders/execute", json=body)
    assert response.status_code == 202, response.text
    order_id: str = response.json()["orderId"]
    return order_id


async def watch(running: System, order_id: str, headers: dict[str, str] | None = None
                ) -> tuple[list[dict[str, Any]], int | None]:
    """Every message of a subscription, and the close code it ended with."""
    url = f"{running.ws_url}/orders/execute?orderId={order_id}"
    async with websockets.connect(url, additional_headers=headers) as ws:
        return await drain(ws), ws.close_code


async def drain(ws: websockets.ClientConnection) -> list[dict[str, Any]]:
    """Every message until the server closes, whatever the close code."""
    messages = []
    try:
        while True:
            messages.append(json.loads(await ws.recv()))
    except websockets.ConnectionClosed:
        return messages


class Outage:
    """PostgreSQL behind a TCP relay that can be cut: once cut, the connections through it
    are closed and new ones are refused, as when the server goes away."""

    def __init__(self, database_url: str) -> None:
        self.target = conninfo_to_dict(database_url)
        self.links: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Outage:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = make_conninfo(**{**self.target, "host": "127.0.0.1", "port": str(port)})
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.cut()

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in self.links:
                writer.close()
            await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Both ends are closed however the link ends: cut, refused upstream, or cancelled
        # with the test's event loop.
        up_writer: asyncio.StreamWriter | None = None
        try:
            host = str(self.target.get("host") or "127.0.0.1")
            up_reader, up_writer = await asyncio.open_connection(
                host, int(self.target.get("port") or 5432))
            if self.server is None or not self.server.is_serving():
                return  # cut while this link was being made: the cut did not see it
            self.links |= {writer, up_writer}
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self.links.discard(writer)
            writer.close()
            if up_writer is not None:
                self.links.discard(up_writer)
                up_writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
    finally:
        sink.close()
