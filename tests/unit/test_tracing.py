"""shared/tracing.py: an order's trace carried in its events; nothing at all while off.

The on path is checked with the SDK's in-memory exporter; the whole path through real
processes and OTLP/HTTP is tests/e2e/test_tracing.py's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shared import tracing
from shared.events import Event, decode, encode
from shared.positions import StreamId
from shared.reading import Entry
from tests.unit import builders

ROOT = Path(__file__).resolve().parents[2]
TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


class Streams:
    """What a consumer's spans ask of the store: the stream each partition's group reads."""

    def group_streams(self, name: str) -> list[str]:
        return [f"oee:{{p{p}}}:queue:{name}" for p in range(4)]


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, every order traced, the spans kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "active", tracing.Tracing(provider, 1.0))
    yield exporter
    provider.shutdown()


def carried(event: Event) -> str:
    assert isinstance(event.traceparent, str), event
    return event.traceparent


def parts(traceparent: str) -> tuple[str, str]:
    """The trace id and the span id of a W3C traceparent."""
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and int(flags, 16) & 1, "a context that is not sampled"
    return trace_id, span_id


def entry(event: Event, partition: int = 2) -> Entry:
    return Entry(StreamId.parse(b"1700000000000-7"), event, partition)


def only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def test_the_gateway_starts_the_trace_and_the_request_carries_it(
    spans: InMemorySpanExporter,
) -> None:
    order = builders.requested()
    with tracing.accepting(order):
        [stamped] = tracing.made([order])
    accept = only(spans, "accept")
    assert accept.parent is None and accept.kind is SpanKind.PRODUCER
    assert parts(carried(stamped)) == (f"{accept.context.trace_id:032x}",
                                       f"{accept.context.span_id:016x}")
    assert dict(accept.attributes or {}) == {
        "order.id": "o-1", "order.type": "market", "messaging.system": "redis"}
    # Only the context is new: the order is the same fact, and reads back with it.
    assert msgspec.structs.replace(stamped, traceparent=order.traceparent) == order
    assert decode(encode(stamped)) == stamped


def test_a_consumed_event_continues_its_trace_with_the_messaging_attributes(
    spans: InMemorySpanExporter,
) -> None:
    order = builders.requested(traceparent=TRACEPARENT)
    traced = tracing.Consumer(Streams(), "router")  # type: ignore[arg-type]
    with traced.span("route", entry(order)):
        [routed] = tracing.made([builders.routed(dex="meteora")])
    route = only(spans, "route")
    assert route.kind is SpanKind.CONSUMER
    assert route.parent is not None and route.parent.is_remote
    assert (f"{route.parent.trace_id:032x}", f"{route.parent.span_id:016x}") == (TRACE, PARENT)
    assert dict(route.attributes or {}) == {
        "order.id": "o-1", "order.type": "market", "route.dex": "meteora",
        "messaging.system": "redis", "messaging.destination.name": "oee:{p2}:queue:router",
        "messaging.consumer.group.name": "router", "messaging.message.id": "1700000000000-7"}
    assert parts(carried(routed)) == (TRACE, f"{route.context.span_id:016x}")


def test_a_step_follows_its_cause_and_a_venue_quotes_inside_it(
    spans: InMemorySpanExporter,
) -> None:
    routed = builders.routed(traceparent=TRACEPARENT)
    with tracing.following("submit", routed):
        tracing.took("quote", "quote.dex", "raydium", 1_700_000_000_000_000_000,
                     1_700_000_000_200_000_000)
    submit, quote = only(spans, "submit"), only(spans, "quote")
    assert (quote.start_time, quote.end_time) == (1_700_000_000_000_000_000,
                                                  1_700_000_000_200_000_000)
    assert submit.parent is not None and f"{submit.parent.span_id:016x}" == PARENT
    assert quote.parent is not None and quote.parent.span_id == submit.context.span_id
    assert dict(submit.attributes or {}) == {
        "order.id": "o-1", "route.dex": routed.dex}
    assert dict(quote.attributes or {}) == {"quote.dex": "raydium"}


@pytest.mark.parametrize("traceparent", [None, "00-not-a-context-01",
                                         f"00-{'0' * 32}-{PARENT}-01"])
def test_an_event_without_a_valid_context_starts_nothing(
    spans: InMemorySpanExporter, traceparent: str | None,
) -> None:
    """Only the gateway starts traces: an untraced order stays untraced downstream, and
    what it makes carries nothing."""
    carried = {} if traceparent is None else {"traceparent": traceparent}
    routed, confirmed = builders.routed(**carried), builders.confirmed(**carried)
    traced = tracing.Consumer(Streams(), "executor")  # type: ignore[arg-type]
    events: list[Event] = [builders.built()]
    with traced.span("build", entry(routed)), tracing.following("submit", routed):
        tracing.took("quote", "quote.dex", "raydium", 1, 2)
        assert tracing.made(events) is events
    with traced.endings("persist", [entry(confirmed)]):
        pass
    assert spans.get_finished_spans() == ()


def test_a_batch_gets_a_span_for_each_traced_order_it_ends_and_each_says_it_failed(
    spans: InMemorySpanExporter,
) -> None:
    batch = [entry(builders.confirmed(traceparent=TRACEPARENT)), entry(builders.failed("o-2")),
             entry(builders.routed("o-3", traceparent=f"00-{TRACE}-{'2' * 16}-01")),
             entry(builders.failed("o-4", traceparent=f"00-{TRACE}-{'1' * 16}-01"), 0)]
    traced = tracing.Consumer(Streams(), "persister")  # type: ignore[arg-type]
    with pytest.raises(ConnectionError), traced.endings("persist", batch):
        raise ConnectionError("PostgreSQL went away")
    persisted = spans.get_finished_spans()
    assert sorted(f"{s.parent.span_id:016x}" for s in persisted if s.parent) == [
        "1" * 16, PARENT]
    assert {s.name for s in persisted} == {"persist"}
    assert all(s.status.status_code is StatusCode.ERROR for s in persisted)
    assert [s.attributes["messaging.destination.name"] for s in persisted  # type: ignore[index]
            ] == ["oee:{p2}:queue:persister", "oee:{p0}:queue:persister"]


def test_a_sample_of_none_traces_no_order(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "active", tracing.Tracing(provider, 0.0))
    orders = [builders.requested(f"o-{n}") for n in range(50)]
    for order in orders:
        with tracing.accepting(order):
            assert tracing.made([order]) == [order]
    assert exporter.get_finished_spans() == ()


def test_a_sample_traces_about_its_share_of_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    on = tracing.Tracing(provider, 0.1)
    on._draw.seed(7)
    monkeypatch.setattr(tracing, "active", on)
    stamped = 0
    for n in range(2000):
        order = builders.requested(f"o-{n}")
        with tracing.accepting(order):
            stamped += isinstance(tracing.made([order])[0].traceparent, str)
    assert 150 <= stamped <= 250
    assert len(exporter.get_finished_spans()) == stamped


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env={
        "PATH": os.environ["PATH"], "PYTHONPATH": path, **env},
        capture_output=True, text=True, timeout=60, check=True)


def test_off_loads_no_tracing_code_and_writes_no_context() -> None:
    """The default: every service as its process imports it, started off, and each step's
    call made; none of OpenTelemetry's tracing is imported, and no event carries a context.
    (redis-py imports OpenTelemetry's metrics API wherever it is installed, to find its own
    metrics disabled: that is redis-py's, with or without tracing.)"""
    result = run_python("""
        import sys
        TRACING_SDK = ("opentelemetry.sdk.trace", "opentelemetry.exporter",
                       "opentelemetry.trace.propagation.tracecontext")
        import services.executor.service, services.gateway.submit, services.persister.service
        import services.router.service, services.trigger.service
        from shared import tracing
        from shared.config import load
        from shared.events import encode
        from shared.positions import StreamId
        from shared.reading import Entry
        from shared.stream import EventStore
        from tests.unit import builders

        def entry(event):
            return Entry(StreamId.parse(b"1-1"), event, 0)

        tracing.start(load(), "gateway")
        order = builders.requested()
        traced = tracing.Consumer(EventStore.__new__(EventStore), "router")
        events = [order]
        with tracing.accepting(order), traced.span("route", entry(order)):
            with tracing.following("fire", order), traced.endings("persist", [entry(order)]):
                tracing.took("quote", "quote.dex", "x", 1, 2)
                assert tracing.made(events) is events
        assert tracing.active is None
        print(sorted(m for m in sys.modules if m.startswith(TRACING_SDK)))
        print(encode(events[0]).decode())
    """)
    loaded, written = result.stdout.splitlines()
    assert loaded == "[]"
    assert "traceparent" not in json.loads(written)


def test_console_prints_each_span_as_a_json_line_named_for_its_service() -> None:
    result = run_python("""
        from shared import tracing
        from shared.config import load
        from tests.unit import builders

        tracing.start(load(), "gateway")
        order = builders.requested()
        with tracing.accepting(order):
            [stamped] = tracing.made([order])
        print(stamped.traceparent)
    """, OEE_TRACING="console", OEE_CONSUMER="gateway-a")
    # The span is written by the exporter's thread, flushed as the process exits.
    [traceparent] = [line for line in result.stdout.splitlines() if line.startswith("00-")]
    [accept] = [json.loads(line) for line in result.stdout.splitlines() if line[:1] == "{"]
    assert accept["name"] == "accept"
    assert accept["resource"]["attributes"]["service.name"] == "oee-gateway"
    assert accept["resource"]["attributes"]["service.instance.id"] == "gateway-a"
    trace_id, span_id = parts(traceparent)
    assert accept["context"] == {"trace_id": f"0x{trace_id}", "span_id": f"0x{span_id}",
                                 "trace_state": "[]"}


def test_compose_traces_every_service_to_jaeger_once_turned_on() -> None:
    from tests.unit import facts
    from tests.unit.test_deploy import compose

    services = compose()["services"]
    jaeger = services["jaeger"]
    assert jaeger["profiles"] == ["observability"] and "4318:4318" in jaeger["ports"]
    for name in facts.services_of_oee_up():
        environment = services[name]["environment"]
        assert environment["OEE_TRACING"] == "${OEE_TRACING:-off}", name
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
