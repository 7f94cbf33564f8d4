"""The gateway's process: uvicorn, with a shutdown that lets subscribers go first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from types import FrameType

import uvicorn

from services.gateway.app import create_app
from services.gateway.parts import Parts
from services.gateway.session import go_away
from shared.config import Settings
from shared.process import hold_many_objects

log = logging.getLogger("oee.gateway")


class Server(uvicorn.Server):
    """Uvicorn closes open WebSockets with 1012 on shutdown; ours close with 1001 first."""

    def __init__(self, config: uvicorn.Config, parts: Parts) -> None:
        super().__init__(config)
        self.parts = parts
        # The loop keeps only a weak reference to a task: this one must not be collected
        # while it waits for the subscriptions to close.
        self.leaving: asyncio.Task[None] | None = None
        self.exiting = asyncio.Event()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = asyncio.get_event_loop()
        if self.parts.going_away.is_set():
            super().handle_exit(sig, frame)
            loop.call_soon_threadsafe(self.exiting.set)
            return

        async def go_away_then_exit() -> None:
            await go_away(self.parts)
            super(Server, self).handle_exit(sig, frame)
            self.exiting.set()

        def leave() -> None:
            self.leaving = loop.create_task(go_away_then_exit())

        loop.call_soon_threadsafe(leave)

    async def main_loop(self) -> None:
        """As uvicorn's, but it wakes once a second (the Date header's resolution) or when
        told to exit, where uvicorn's wakes ten times a second: that was most of an idle
        gateway's CPU."""
        ticks = 0
        while not await self.on_tick(ticks):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.exiting.wait(), 1.0)
            # uvicorn renews the Date header on every tenth tick.
            ticks += 10


def serve(settings: Settings) -> None:
    sock = listening(settings.host, settings.port)
    # A subscriber's objects live as long as its connection, so they survive the young
    # collections and fill the middle generation: with 100,000 and 20, a collection of it
    # stalled the gateway 974 ms at 10,000 subscribers, and young ones up to 96 ms. With
    # 5,000 and 5, the longest took 41 ms (``python -m bench.gcpauses``).
    hold_many_objects(young=5_000, middle=5)
    parts = Parts(settings)
    config = uvicorn.Config(
        create_app(settings, parts),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        # A line per request costs more than the request; the events are the audit trail.
        access_log=False,
        # Thousands of subscribers on one process: the sans-I/O protocol runs no task of its
        # own per connection, and compression (a zlib context per connection) buys nothing
        # on status messages of a few hundred bytes.
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
    )
    log.info("the API is bound to http://%s:%d", settings.host, settings.port)
    # Ctrl-C: uvicorn stops cleanly, then raises it again; there is nothing to add.
    with contextlib.suppress(KeyboardInterrupt):
        Server(config, parts).run(sockets=[sock])


def listening(host: str, port: int) -> socket.socket:
    """The API's socket, bound before the app starts. `oee gateway` checks the port first,
    but another process may take it in between: then this process ends here, at once, with
    one line and a non-zero code, before there is anything to shut down."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn binds: a restarted gateway need not wait for the old connections to time out.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(f"oee gateway: cannot start: port {port} on {host} (PORT) is taken: "
                         f"{error.strerror or error}") from None
    sock.set_inheritable(True)
    return sock
