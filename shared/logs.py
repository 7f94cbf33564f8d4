"""Log lines that say what they are about.

Plain text for people by default; with ``OEE_LOG_FORMAT=json`` each record is one JSON
object on one line, for log pipelines to index without parsing prose. A line names its
process (service and consumer) and, while an order's work is being done, the order and the
event being handled, taken from a context variable: each asyncio task has its own copy,
so concurrent orders in one process never lend each other their ids.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType

from shared.events import Event

# JSON field names, as the API spells ids.
ORDER_ID = "orderId"
EVENT_ID = "eventId"

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "oee_log_context", default=_EMPTY
)


def current() -> Mapping[str, str]:
    """The ids the current task's log lines carry."""
    return _context.get()


def _fields(order_id: str | None, event_id: str | None) -> dict[str, str]:
    fields = {ORDER_ID: order_id, EVENT_ID: event_id}
    return {name: value for name, value in fields.items() if value}


def bind(*, order_id: str | None = None, event_id: str | None = None) -> None:
    """Tag every later line of the current task (and of tasks it starts) with these ids.
    A task's context dies with it, so a task handling one order needs no undo."""
    _context.set(MappingProxyType({**_context.get(), **_fields(order_id, event_id)}))


@contextlib.contextmanager
def log_context(*, order_id: str | None = None, event_id: str | None = None) -> Iterator[None]:
    """Tag the lines logged inside the block with these ids."""
    token = _context.set(MappingProxyType({**_context.get(), **_fields(order_id, event_id)}))
    try:
        yield
    finally:
        _context.reset(token)


def bind_events(events: Sequence[Event]) -> None:
    """Tag the current task with what it handles: the order and event of a lone event; the
    order of events that share one. A batch spanning orders gets no ids: its handler names
    each order in its own lines."""
    if len(events) == 1:
        bind(order_id=events[0].order_id, event_id=events[0].id)
    elif events and all(e.order_id == events[0].order_id for e in events):
        bind(order_id=events[0].order_id)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, RFC 3339), level, service, consumer, logger,
    the context's ``orderId``/``eventId``, the message, and the traceback if any."""

    def __init__(self, service: str, consumer: str) -> None:
        super().__init__()
        self.service, self.consumer = service, consumer

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "service": self.service,
            "consumer": self.consumer,
            "logger": record.name,
            **_context.get(),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a message argument that JSON cannot hold still yields a line.
        return json.dumps(line, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"


def formatter(log_format: str, service: str, consumer: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(service, consumer)
    return logging.Formatter(TEXT_FORMAT)
