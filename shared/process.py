"""Running one service as a process: logging, the event loop, and a graceful stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from shared.config import Settings, load

Main = Callable[[Settings, asyncio.Event], Awaitable[None]]


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s",
    )


def hold_many_objects() -> None:
    """GC settings for a process holding thousands of live connections or orders. Python's
    full collections scan every live object: with 2,000 WebSocket connections they stalled
    the gateway for 100-300 ms each, delaying every status in flight (an executor with
    thousands of orders in flight stalls alike). Objects alive at start are frozen out of
    the scans, and collections run less often."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 100)


def run(main: Main) -> None:
    """Run ``main`` until it returns; SIGTERM or SIGINT sets its stop event, so it can
    stop reading, finish or hand back what it holds, and close its connections."""
    settings = load()
    setup_logging(settings.log_level)
    hold_many_objects()

    async def supervise() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await main(settings, stop)

    try:
        import uvloop

        uvloop.run(supervise())
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay runnable without
        asyncio.run(supervise())
