"""Each order as one trace across the services (OpenTelemetry), or nothing at all.

The gateway starts an order's trace as it accepts the order (``accepting``). Every event
made inside a traced span carries that span's W3C context in its optional ``traceparent``
field (``made``), and the service that acts on the event continues the trace from there
(``Consumer.span``, ``following``): the context travels inside the events, through Redis,
to whichever process takes them. The spans:

* ``accept`` (gateway), the order's root;
* ``route`` (router), with a ``quote`` per venue inside it (``took``);
* ``build`` (executor), then each attempt's ``submit`` and the landed one's ``confirm``;
* ``persist`` (persister), as it records the event that ends the order;
* ``open`` and ``fire`` (trigger), where a waiting order is watched and where it fires.

Whether a process traces is decided once, at its start (``start``, from ``OEE_TRACING``).
Off, the default, every function here returns at once: OpenTelemetry's tracing is never
imported, no span is made and no event carries a context. On, the gateway draws once per
order whether it is traced (``OEE_TRACE_SAMPLE_RATIO``); downstream, an event without a
context starts nothing, so an order left out costs next to nothing past that draw, and a
traced one is traced whole.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import msgspec

from shared.config import Settings
from shared.events import Event, OrderRequested, Routed

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.util.types import AttributeValue

    from shared.groups import GroupUpkeep
    from shared.reading import Entry

E = TypeVar("E", bound=Event)
Step = AbstractContextManager[object]

# What a span's place holds while nothing is traced: one object, never a new one.
_UNTRACED: Step = contextlib.nullcontext()

# The OpenTelemetry scope the spans are made in.
SCOPE = "oee"

# The on path, once ``start`` found tracing on; None while it is off.
active: Tracing | None = None


def start(settings: Settings, service: str) -> None:
    """Trace in this process as ``settings`` say; once, before the service starts."""
    global active
    if settings.tracing != "off" and active is None:
        active = Tracing(provider(settings, service), settings.trace_sample_ratio)


def accepting(order: OrderRequested) -> Step:
    """The root span of a new order's trace, current while the gateway accepts it; or
    nothing, for an order the sample leaves out."""
    return _UNTRACED if active is None else active.accepting(order)


def following(name: str, cause: Event) -> Step:
    """A span current while a step that ``cause`` leads to runs, in the trace ``cause``
    carries; nothing for an event without one."""
    if active is None or not isinstance(cause.traceparent, str):
        return _UNTRACED
    return active.following(name, cause)


def took(name: str, key: str, value: str, start_ns: int, end_ns: int) -> None:
    """A child of the current span, if any is traced, that ran from ``start_ns`` to
    ``end_ns`` (epoch nanoseconds): a venue's quote inside ``route``, recorded once the venue
    has answered, as the two venues' quotes overlap."""
    if active is not None:
        active.took(name, key, value, start_ns, end_ns)


def made(events: list[E]) -> list[E]:
    """``events``, each carrying the current span's context, so the services that act on
    them continue its trace: as they are when no span is traced."""
    return events if active is None else active.made(events)


class Consumer:
    """A consumer group's spans. Each continues the trace of the event it consumes, with
    OpenTelemetry's messaging attributes: which stream, which group, which entry."""

    def __init__(self, store: GroupUpkeep, group: str) -> None:
        self.store, self.group = store, group

    def span(self, name: str, entry: Entry, order: OrderRequested | None = None) -> Step:
        """Current while one entry's step runs."""
        if active is None or not isinstance(entry.event.traceparent, str):
            return _UNTRACED
        return active.consumed(name, entry, self, order)

    def endings(self, name: str, entries: Sequence[Entry]) -> Step:
        """One for each traced order a batch handled as a whole ends (the persister
        records a batch in one transaction), from the batch's start to its end. Only the
        end: a span for each of an order's events would cost the persister about as much
        again as all the order's other spans together."""
        return _UNTRACED if active is None else active.ended(name, entries, self)

    @cached_property
    def streams(self) -> list[str]:
        """Per partition, the stream this group reads."""
        return self.store.group_streams(self.group)


class Tracing:
    """What the functions above do while tracing is on. The SDK is imported only here,
    once something is traced.

    The span a step runs in is current through this module's own context variable, not
    through OpenTelemetry's context: each span is made with its parent named, so an
    untraced step asks one variable whether it is inside a traced one, and a traced step
    pays for no context of OpenTelemetry's attached and detached around it."""

    def __init__(self, provider: TracerProvider, sample_ratio: float) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer = provider.get_tracer(SCOPE)
        self.sample_ratio = sample_ratio
        self.propagator = TraceContextTextMapPropagator()
        # The sample is drawn apart from the seeded draws of the market and the chain.
        self._draw = random.Random()

    def accepting(self, order: OrderRequested) -> Step:
        # Drawn here rather than by the SDK's ratio sampler: an order left out then makes
        # no span, not even a non-recording one.
        if self.sample_ratio < 1 and self._draw.random() >= self.sample_ratio:
            return _UNTRACED
        from opentelemetry.trace import SpanKind

        return self._step("accept", None, SpanKind.PRODUCER,
                          {**_about(order, order), "messaging.system": "redis"})

    def following(self, name: str, cause: Event) -> Step:
        from opentelemetry.trace import SpanKind

        parent = self.context_of(cause)
        if parent is None:
            return _UNTRACED
        return self._step(name, parent, SpanKind.INTERNAL, _about(cause, None))

    def took(self, name: str, key: str, value: str, start_ns: int, end_ns: int) -> None:
        outer = _current.get()
        if outer is None:
            return
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind

        self.tracer.start_span(name, trace.set_span_in_context(outer.span), SpanKind.INTERNAL,
                               {key: value}, start_time=start_ns).end(end_time=end_ns)

    def made(self, events: list[E]) -> list[E]:
        step = _current.get()
        if step is None or not events:
            return events
        for event in events:
            if isinstance(event, Routed):  # and Rerouted: the route it took
                step.span.set_attribute("route.dex", event.dex)
        traceparent = step.traceparent(self.propagator)
        return [msgspec.structs.replace(event, traceparent=traceparent) for event in events]

    def consumed(self, name: str, entry: Entry, consumer: Consumer,
                 order: OrderRequested | None) -> Step:
        from opentelemetry.trace import SpanKind

        parent = self.context_of(entry.event)
        if parent is None:
            return _UNTRACED
        return self._step(name, parent, SpanKind.CONSUMER, _consumed(entry, consumer, order))

    @contextlib.contextmanager
    def ended(self, name: str, entries: Sequence[Entry], consumer: Consumer) -> Iterator[None]:
        from opentelemetry.trace import SpanKind

        steps = [self._step(name, parent, SpanKind.CONSUMER, _consumed(entry, consumer, None))
                 for entry in entries if entry.event.is_terminal
                 and (parent := self.context_of(entry.event)) is not None]
        try:
            yield
        except BaseException as error:
            for step in steps:
                step.failed(error)
            raise
        finally:
            for step in steps:
                step.span.end()

    def context_of(self, event: Event) -> Context | None:
        """The trace context ``event`` carries; None if it carries none that is valid (a
        span is never made a root by accident: only the gateway starts traces)."""
        from opentelemetry import trace

        if not isinstance(event.traceparent, str):
            return None
        context = self.propagator.extract({"traceparent": event.traceparent})
        if not trace.get_current_span(context).get_span_context().is_valid:
            return None
        return context

    def _step(self, name: str, parent: Context | None, kind: SpanKind,
              attributes: dict[str, AttributeValue]) -> _Traced:
        from opentelemetry.context import Context

        # An empty context, not the current one: a root is a root.
        return _Traced(self.tracer.start_span(
            name, Context() if parent is None else parent, kind, attributes))


class _Traced:
    """A span, current while its step runs (``with``), then ended; and its context as a
    ``traceparent``, made once, for what it makes."""

    __slots__ = ("_token", "_traceparent", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._traceparent = ""

    def __enter__(self) -> _Traced:
        self._token = _current.set(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _current.reset(self._token)
        if error is not None:
            self.failed(error)
        self.span.end()

    def failed(self, error: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.span.record_exception(error)
        self.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

    def traceparent(self, propagator: TraceContextTextMapPropagator) -> str:
        if not self._traceparent:
            from opentelemetry import trace

            carrier: dict[str, str] = {}
            propagator.inject(carrier, trace.set_span_in_context(self.span))
            self._traceparent = carrier["traceparent"]
        return self._traceparent


# The step of ours current in this task, if any is traced.
_current: ContextVar[_Traced | None] = ContextVar("oee_traced_step", default=None)


def provider(settings: Settings, service: str) -> TracerProvider:
    """The SDK's tracer provider for this process: its spans batched in the background and
    sent as ``settings`` say, and flushed when the process exits."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    resource = Resource.create({
        "service.name": settings.service_name or f"oee-{service}",
        "service.instance.id": settings.consumer_name(service),
    })
    # Whether an order is traced is the gateway's draw, and only a traced order's events
    # carry a context: a sampler of each process's own (OTEL_TRACES_SAMPLER) would cut
    # traces apart.
    traced = TracerProvider(resource=resource, sampler=ALWAYS_ON)
    exporter: SpanExporter
    if settings.tracing == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{settings.otlp_url.rstrip('/')}/v1/traces")
    else:
        def one_line(span: ReadableSpan) -> str:
            return f"{span.to_json(indent=None)}\n"

        exporter = ConsoleSpanExporter(formatter=one_line)
    traced.add_span_processor(BatchSpanProcessor(exporter))
    return traced


def _about(event: Event, order: OrderRequested | None) -> dict[str, AttributeValue]:
    """An order's attributes, as far as the event and the order at hand say them."""
    if order is None and isinstance(event, OrderRequested):
        order = event
    attributes: dict[str, AttributeValue] = {"order.id": event.order_id}
    if order is not None:
        attributes["order.type"] = order.order_type
    if isinstance(event, Routed):
        attributes["route.dex"] = event.dex
    return attributes


def _consumed(entry: Entry, consumer: Consumer,
              order: OrderRequested | None) -> dict[str, AttributeValue]:
    # Only what the span's kind and the trace do not say already: an attribute costs a span
    # about 7 µs, made and sent (the stream names the partition; a consumer span processes).
    return {
        **_about(entry.event, order),
        "messaging.system": "redis",
        "messaging.destination.name": consumer.streams[entry.partition],
        "messaging.consumer.group.name": consumer.group,
        "messaging.message.id": str(entry.id),
    }

