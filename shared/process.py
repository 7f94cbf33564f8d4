"""Running one service as a process: logging, the event loop, and a graceful stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from types import TracebackType

from shared.config import LogFormat, Settings, load
from shared.logs import formatter as make_formatter
from shared.metrics import serve_metrics

Main = Callable[[Settings, asyncio.Event], Awaitable[None]]


def setup_logging(level: str, log_format: LogFormat | None = None,
                  service: str | None = None) -> None:
    """Every record of the process to stderr, as ``log_format`` says (default: as
    ``OEE_LOG_FORMAT`` says); ``service`` defaults to the ``oee`` sub-command."""
    # Here, not at the top: every `oee` command imports this module, most need no Redis.
    from shared.worker import consumer_name

    service = service or _command()
    log_format = log_format or load().log_format
    formatter = make_formatter(log_format, service, consumer_name(service))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if log_format == "json":
        # What would otherwise reach stderr as prose: warnings, uncaught exceptions, and
        # uvicorn's own loggers, which it configures itself when its server starts.
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        _uvicorn_formats_as(formatter)


def _command() -> str:
    """The ``oee`` sub-command this process runs: ``oee gateway`` is the gateway."""
    words = [word for word in sys.argv[1:] if not word.startswith("-")]
    return words[0] if words else "oee"


def _log_uncaught(kind: type[BaseException], value: BaseException,
                  trace: TracebackType | None) -> None:
    logging.getLogger("oee").critical("uncaught %s", kind.__name__,
                                      exc_info=(kind, value, trace))


def _uvicorn_formats_as(formatter: logging.Formatter) -> None:
    try:
        from uvicorn.config import LOGGING_CONFIG
    except ImportError:  # pragma: no cover - a worker process without the gateway's server
        return

    def ours() -> logging.Formatter:
        return formatter

    for name in LOGGING_CONFIG["formatters"]:
        LOGGING_CONFIG["formatters"][name] = {"()": ours}


def hold_many_objects(young: int = 100_000, middle: int = 20) -> None:
    """GC settings for a process holding thousands of live connections or orders. Python's
    full collections scan every live object: with 2,000 WebSocket connections they stalled
    the gateway for 100-300 ms each, delaying every status in flight (an executor with
    thousands of orders in flight stalls alike). Objects alive at start are frozen out of
    the scans, and collections run less often: by default the young generation is collected
    after 100,000 allocations, not 700, as a burst of a thousand orders in flight makes
    millions (a launch's 1,000 snipers reached Submitted 40 ms sooner at p99 than with
    10,000, as soon as with no collection at all). ``young`` and ``middle``: the first two
    thresholds, for a process whose objects mostly outlive a young collection (the
    gateway's). Only garbage in cycles waits for a collection; everything else is freed
    the moment it is dropped."""
    gc.freeze()
    gc.set_threshold(young, middle, 100)


def run(main: Main) -> None:
    """Run ``main`` until it returns; SIGTERM or SIGINT sets its stop event, so it can
    stop reading, finish or hand back what it holds, and close its connections."""
    settings = load()
    setup_logging(settings.log_level, settings.log_format)
    hold_many_objects()
    serve_metrics(settings.metrics_port, settings.host)

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
