"""services/gateway/server.py: the server's own loop, between requests."""

from __future__ import annotations

import asyncio
import signal
from types import SimpleNamespace
from typing import cast

import uvicorn

from services.gateway.parts import Parts
from services.gateway.server import Server


async def test_the_server_loop_wakes_once_a_second_and_at_once_when_told_to_exit() -> None:
    parts = cast(Parts, SimpleNamespace(going_away=asyncio.Event()))
    server = Server(uvicorn.Config(app=None), parts)
    ticks: list[int] = []

    async def on_tick(counter: int) -> bool:
        ticks.append(counter)
        return server.should_exit

    server.on_tick = on_tick  # type: ignore[method-assign]
    looping = asyncio.create_task(server.main_loop())
    # A span of the loop's life, not a wait for something to happen: uvicorn's own loop
    # ticks 15 times in it.
    await asyncio.wait([looping], timeout=1.5)
    assert not looping.done()
    # Each tick renews the Date header (uvicorn renews it on every tenth of its own).
    assert ticks == [0, 10]

    parts.going_away.set()  # subscribers gone: the next signal exits
    server.handle_exit(signal.SIGTERM, None)
    await asyncio.wait_for(looping, 0.5)
    assert ticks == [0, 10, 20] and server.should_exit
