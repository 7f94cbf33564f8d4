"""The gateway: HTTP and WebSocket in, OrderRequested onto the stream, statuses out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import msgspec
import uvicorn
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from services.gateway.metrics import Metrics
from services.gateway.openapi import document
from services.gateway.queries import ReadModel
from services.gateway.subscriptions import Tail, UnknownOrder, follow
from services.gateway.validation import Invalid, order_from, quote_request
from services.gateway.views import (
    order_view,
    order_view_from_row,
    quote_view,
    status_message,
)
from shared.config import Settings
from shared.events import AnyEvent, OrderRequested, to_builtins
from shared.market import Market
from shared.order import fold
from shared.process import hold_many_objects
from shared.routing import NoRoute, decide
from shared.stream import EventStore

log = logging.getLogger("oee.gateway")

MAX_BODY_BYTES = 16 * 1024
FIRST_MESSAGE_TIMEOUT_S = 30.0
POLICY_VIOLATION = 1008
_encoder = msgspec.json.Encoder()


def new_order_id() -> str:
    """A UUIDv7: ids sort by creation time, which pages GET /orders for free."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))


def is_order_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(content), status_code, headers, "application/json")


def error(status_code: int, field: str, rule: str, message: str) -> Response:
    return json(Invalid(field, rule, message).as_json(), status_code)


def unavailable(what: str) -> Response:
    return json(
        {"error": {"rule": "unavailable", "message": f"{what} is unavailable; try again shortly"}},
        503,
        {"Retry-After": "1"},
    )


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = EventStore(settings)
        self.read_model = ReadModel(settings.database_url)
        self.tail = Tail(self.store)
        self.metrics = Metrics()
        self.market = Market.from_settings(settings)
        self.openapi_document = document()
        # Set on SIGTERM: every subscription closes with 1001 before the server stops.
        self.going_away = asyncio.Event()
        self.subscriptions: set[asyncio.Task[Any]] = set()

    async def history(self, order_id: str) -> list[AnyEvent]:
        # Redis holds recent orders, consistent with the stream; PostgreSQL holds them all.
        return await self.store.history(order_id) or await self.read_model.events(order_id)

    async def accept(self, order: OrderRequested) -> None:
        await self.store.append([order])
        self.metrics.accepted += 1

    # --- HTTP -------------------------------------------------------------------------

    async def execute(self, request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                self.metrics.rejected += 1
                return error(413, "body", "size", f"the body is larger than {MAX_BODY_BYTES} bytes")
        order_id = new_order_id()
        try:
            order = order_from(bytes(body), order_id)
        except Invalid as invalid:
            self.metrics.rejected += 1
            return json(invalid.as_json(), 400)
        try:
            await self.accept(order)
        except RedisError:
            log.exception("could not append order %s", order_id)
            return unavailable("the event stream")
        path = f"/orders/execute?orderId={order_id}"
        return json(
            {"orderId": order_id, "status": "pending", "stream": path,
             "links": {"order": f"/orders/{order_id}", "events": f"/orders/{order_id}/events"}},
            202,
            {"Location": f"/orders/{order_id}"},
        )

    async def get_order(self, request: Request) -> Response:
        found = await self.events_of(request)
        if isinstance(found, Response):
            return found
        order_id, events = found
        return json(order_view(fold(order_id, events), events))

    async def get_events(self, request: Request) -> Response:
        found = await self.events_of(request)
        if isinstance(found, Response):
            return found
        order_id, events = found
        return json({"orderId": order_id, "events": [to_builtins(e) for e in events]})

    async def events_of(self, request: Request) -> tuple[str, list[AnyEvent]] | Response:
        """The order named in the path and its events, or the response that says why not."""
        order_id = request.path_params["order_id"]
        unknown = error(404, "orderId", "unknown_order", f"no order {order_id!r}")
        if not is_order_id(order_id):
            return unknown
        try:
            events = await self.history(order_id)
        except Exception:
            log.exception("could not read order %s", order_id)
            return unavailable("order storage")
        return (order_id, events) if events else unknown

    async def list_orders(self, request: Request) -> Response:
        params = request.query_params
        status = params.get("status")
        statuses = ("pending", "routing", "building", "submitted", "confirmed", "failed")
        if status is not None and status not in statuses:
            return error(400, "status", "status", "status must be one of " + ", ".join(statuses))
        try:
            limit = int(params.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 500:
            return error(400, "limit", "range", "limit must be an integer from 1 to 500")
        before = params.get("before")
        if before is not None and not is_order_id(before):
            return error(400, "before", "cursor", "before must be an order id from a page")
        try:
            rows = await self.read_model.orders(status, before, limit)
        except Exception:
            log.exception("could not list orders")
            return unavailable("order storage")
        orders = [order_view_from_row(r) for r in rows]
        next_cursor = orders[-1].order_id if len(orders) == limit else None
        return json({"orders": orders, "next": next_cursor})

    async def quote(self, request: Request) -> Response:
        try:
            order = quote_request(request.query_params)
        except Invalid as invalid:
            return json(invalid.as_json(), 400)
        at = time.time()
        try:
            decision = decide(order.token_in, order.token_out, order.amount_in, order.slippage,
                              self.market.pools_between, self.market.pool_at(at))
        except NoRoute as problem:
            return error(422, "amount", "no_route", str(problem))
        return json(quote_view(order, decision, datetime.fromtimestamp(at, UTC)))

    async def healthz(self, request: Request) -> Response:
        return json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        checks: dict[str, str] = {}
        probes = (("redis", self.store.redis.ping()), ("postgres", self.read_model.ping()))
        for name, check in probes:
            try:
                await asyncio.wait_for(check, timeout=2)
                checks[name] = "ok"
            except Exception as problem:
                checks[name] = f"unavailable: {type(problem).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return json({"status": "ready" if ready else "not ready", "checks": checks},
                    200 if ready else 503)

    async def openapi(self, request: Request) -> Response:
        return json(self.openapi_document)

    async def metrics_text(self, request: Request) -> Response:
        try:
            backlog = await self.store.backlog()
        except RedisError:
            backlog = {}  # the rest of the metrics still answer while Redis is away
        text = self.metrics.render(self.tail, backlog)
        return Response(text, media_type="text/plain; version=0.0.4")

    # --- WebSocket --------------------------------------------------------------------

    async def execute_ws(self, ws: WebSocket) -> None:
        await ws.accept()
        try:
            order_id = ws.query_params.get("orderId")
            if order_id is None:
                order_id = await self.submit_over(ws)
                if order_id is None:
                    return
            elif not is_order_id(order_id):
                await self.refuse(ws, Invalid("orderId", "unknown_order", f"no order {order_id!r}"))
                return
            await self.stream_to(ws, order_id)
        except WebSocketDisconnect:
            pass

    async def submit_over(self, ws: WebSocket) -> str | None:
        try:
            message = await asyncio.wait_for(ws.receive(), FIRST_MESSAGE_TIMEOUT_S)
        except TimeoutError:
            await self.refuse(ws, Invalid("body", "timeout", "send the order as the first message"))
            return None
        if message["type"] == "websocket.disconnect":
            return None
        body = message.get("text") or message.get("bytes") or b""
        if len(body) > MAX_BODY_BYTES:
            await self.refuse(ws, Invalid("body", "size", f"larger than {MAX_BODY_BYTES} bytes"))
            return None
        order_id = new_order_id()
        try:
            order = order_from(body, order_id)
        except Invalid as invalid:
            await self.refuse(ws, invalid)
            return None
        try:
            await self.accept(order)
        except RedisError:
            log.exception("could not append order %s", order_id)
            await ws.send_bytes(_encoder.encode({"error": {"rule": "unavailable",
                                                           "message": "try again shortly"}}))
            await ws.close(1011)
            return None
        return order_id

    async def refuse(self, ws: WebSocket, invalid: Invalid) -> None:
        self.metrics.rejected += 1
        await ws.send_text(_encoder.encode(invalid.as_json()).decode())
        await ws.close(POLICY_VIOLATION)

    async def stream_to(self, ws: WebSocket, order_id: str) -> None:
        """Statuses until the terminal one (then 1000), the client leaving, or the gateway
        going away (then 1001: the client reconnects elsewhere and gets the full history)."""
        handler = asyncio.current_task()
        assert handler is not None
        self.subscriptions.add(handler)
        try:
            await self._stream_to(ws, order_id)
        finally:
            self.subscriptions.discard(handler)

    async def _stream_to(self, ws: WebSocket, order_id: str) -> None:
        sending = asyncio.create_task(self.send_statuses(ws, order_id))
        leaving = asyncio.create_task(_until_disconnect(ws))
        going_away = asyncio.create_task(self.going_away.wait())
        self.metrics.subscribers += 1
        try:
            done, _ = await asyncio.wait(
                {sending, leaving, going_away}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self.metrics.subscribers -= 1
            for task in (sending, leaving, going_away):
                task.cancel()
            await asyncio.gather(leaving, going_away, return_exceptions=True)
        if sending not in done:
            if going_away in done:
                await _close(ws, 1001)
            return
        if sending.exception() is None:
            await _close(ws, 1000)
            return
        if isinstance(sending.exception(), WebSocketDisconnect | ConnectionError):
            return
        if isinstance(sending.exception(), UnknownOrder):
            await self.refuse(ws, Invalid("orderId", "unknown_order", f"no order {order_id!r}"))
            return
        log.error("subscription to %s failed", order_id, exc_info=sending.exception())
        await _close(ws, 1011)

    async def send_statuses(self, ws: WebSocket, order_id: str) -> None:
        async for state, event in follow(self.tail, order_id, self.history):
            message = status_message(state, event)
            if message is not None:
                await ws.send_text(_encoder.encode(message).decode())
                self.metrics.statuses_sent += 1
                self.metrics.delivery.observe(time.time() - event.at.timestamp())

    async def go_away(self, timeout_s: float = 5.0) -> None:
        """Close every subscription with 1001 and wait, briefly, until they are closed."""
        self.going_away.set()
        if self.subscriptions:
            await asyncio.wait(set(self.subscriptions), timeout=timeout_s)

    # --- lifecycle --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            await self.tail.start()
        except RedisError:
            log.warning("Redis is unavailable at start; the tail starts from the beginning")
        tail_task = asyncio.create_task(self.tail.run())
        try:
            yield
        finally:
            tail_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tail_task
            await self.read_model.close()
            await self.store.close()


async def _until_disconnect(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it leaves."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def _close(ws: WebSocket, code: int) -> None:
    if ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(code)


def create_app(settings: Settings, gateway: Gateway | None = None) -> Starlette:
    gateway = gateway or Gateway(settings)
    return Starlette(
        routes=[
            Route("/orders/execute", gateway.execute, methods=["POST"]),
            WebSocketRoute("/orders/execute", gateway.execute_ws),
            Route("/orders", gateway.list_orders, methods=["GET"]),
            Route("/quote", gateway.quote, methods=["GET"]),
            Route("/orders/{order_id}", gateway.get_order, methods=["GET"]),
            Route("/orders/{order_id}/events", gateway.get_events, methods=["GET"]),
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/readyz", gateway.readyz, methods=["GET"]),
            Route("/metrics", gateway.metrics_text, methods=["GET"]),
            Route("/openapi.json", gateway.openapi, methods=["GET"]),
        ],
        lifespan=gateway.lifespan,
    )


class _Server(uvicorn.Server):
    """Uvicorn closes open WebSockets with 1012 on shutdown; ours close with 1001 first."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.gateway.going_away.is_set():
            super().handle_exit(sig, frame)
            return

        async def go_away_then_exit() -> None:
            await self.gateway.go_away()
            super(_Server, self).handle_exit(sig, frame)

        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(lambda: loop.create_task(go_away_then_exit()))


def serve(settings: Settings) -> None:
    hold_many_objects()
    gateway = Gateway(settings)
    config = uvicorn.Config(
        create_app(settings, gateway),
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
    _Server(config, gateway).run()
