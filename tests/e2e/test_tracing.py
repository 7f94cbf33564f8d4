"""OEE_TRACING=otlp with every service as its own process: one order is one trace, with a
span from each service that acts on it, each parented on the step it follows. The spans
arrive over OTLP/HTTP at a receiver inside the test, decoded from the protobuf
``ExportTraceServiceRequest`` the SDK's exporter sends."""

from __future__ import annotations

import gzip
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgspec
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench.harness import System, system
from tests.helpers import eventually, submit, watch

pytestmark = pytest.mark.e2e


class Span(msgspec.Struct, frozen=True):
    service: str
    name: str
    trace_id: str
    span_id: str
    parent: str
    attributes: dict[str, str]


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver on a free port of this machine, keeping what it gets."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Export)
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def keep(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value
                       for a in resource_spans.resource.attributes}["service.name"]
            for scope_spans in resource_spans.scope_spans:
                received += [Span(
                    service, span.name, span.trace_id.hex(), span.span_id.hex(),
                    span.parent_span_id.hex(),
                    {a.key: a.value.string_value for a in span.attributes},
                ) for span in scope_spans.spans]
        with self.lock:
            self.spans += received

    def trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [span for span in self.spans if span.trace_id == trace_id]


class _Export(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert self.path == "/v1/traces", self.path
        self.server.keep(ExportTraceServiceRequest.FromString(body))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line per export on the test's output says nothing


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join()
    server.server_close()  # shutdown stops the loop; the listening socket stays open


@pytest.fixture(scope="module")
def namespace() -> str:
    return f"e2e-trace-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str, namespace: str, receiver: Receiver,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with system(redis_url, database_url, namespace, tmp_path_factory.mktemp("logs"),
                OEE_TRACING="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
                # Spans go out every 100 ms rather than every 5 s.
                OTEL_BSP_SCHEDULE_DELAY="100") as started:
        yield started


async def traced(client: httpx.AsyncClient, running: System, receiver: Receiver,
                 body: dict[str, Any], names: list[str]) -> tuple[dict[str, Span], list[Span]]:
    """Submits ``body``, follows it to ``confirmed``, and waits for its trace to hold a span
    of each of ``names``: those spans by name (each name once but the quotes), and every
    span of the trace."""
    order_id = await submit(client, body)
    messages, _ = await watch(running, order_id)
    assert messages[-1]["status"] == "confirmed", messages
    events = (await client.get(f"/orders/{order_id}/events")).json()["events"]
    # Every event the order has carries its one trace, from the gateway's request on.
    contexts = {event["type"]: event["traceparent"].split("-") for event in events}
    assert {trace_id for _, trace_id, _, _ in contexts.values()} == {
        contexts["OrderRequested"][1]}
    trace_id = contexts["OrderRequested"][1]

    async def whole() -> list[Span] | None:
        spans = receiver.trace(trace_id)
        got = [span.name for span in spans]
        return spans if all(name in got for name in names) else None

    spans = await eventually(whole, 30)
    named = {span.name: span for span in spans if span.name != "quote"}
    assert sorted(named) == sorted(n for n in names if n != "quote")
    assert len(spans) == len(named) + 2, "a step traced twice"
    # Each event carries the context of the span that made it.
    made_by = {"OrderRequested": "accept", "Routed": "route", "Built": "build",
               "Submitted": "submit", "Confirmed": "confirm", "OrderOpened": "open",
               "Triggered": "fire"}
    for kind, (_, _, span_id, _) in contexts.items():
        assert named[made_by[kind]].span_id == span_id, kind
    assert {span.attributes.get("order.id") for span in spans
            if span.name != "quote"} == {order_id}
    return named, spans


async def test_one_market_order_is_one_trace_across_the_services(
    running: System, client: httpx.AsyncClient, receiver: Receiver,
) -> None:
    names = ["accept", "route", "quote", "build", "submit", "confirm", "persist"]
    named, spans = await traced(client, running, receiver, {
        "tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.01}, names)
    accept, route, build = named["accept"], named["route"], named["build"]
    assert accept.parent == "" and accept.service == "oee-gateway"
    assert accept.attributes["order.type"] == "market"
    assert (route.parent, route.service) == (accept.span_id, "oee-router")
    assert route.attributes["route.dex"] in ("raydium", "meteora", "raydium+meteora")
    assert route.attributes["messaging.consumer.group.name"] == "router"
    assert route.attributes["messaging.system"] == "redis"
    assert route.attributes["messaging.destination.name"].endswith(":queue:router")
    quotes = [span for span in spans if span.name == "quote"]
    assert sorted(q.attributes["quote.dex"] for q in quotes) == ["meteora", "raydium"]
    assert {q.parent for q in quotes} == {route.span_id}
    assert (build.parent, build.service) == (route.span_id, "oee-executor")
    assert build.attributes["messaging.consumer.group.name"] == "executor"
    for step in ("submit", "confirm"):
        assert (named[step].parent, named[step].service) == (build.span_id, "oee-executor")
    # The persister records the order's end in the trace of the span that ended it.
    persist = named["persist"]
    assert (persist.parent, persist.service) == (named["confirm"].span_id, "oee-persister")
    assert persist.attributes["messaging.consumer.group.name"] == "persister"
    assert persist.attributes["messaging.destination.name"].endswith(":events")


async def test_a_limit_order_is_traced_where_the_trigger_fires_it(
    running: System, client: httpx.AsyncClient, receiver: Receiver,
) -> None:
    names = ["accept", "open", "fire", "route", "quote", "build", "submit", "confirm",
             "persist"]
    named, _ = await traced(client, running, receiver, {
        "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5",
        "slippage": 0.01, "limitPrice": "1"}, names)
    accept, fire = named["accept"], named["fire"]
    assert accept.attributes["order.type"] == "limit"
    for step in ("open", "fire"):
        assert (named[step].parent, named[step].service) == (accept.span_id, "oee-trigger")
    assert fire.attributes["order.type"] == "limit"
    assert named["route"].parent == fire.span_id
    assert named["build"].parent == named["route"].span_id
