"""The gateway: HTTP and WebSocket in, OrderRequested onto the stream, statuses out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
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

from services.gateway.auth import HEADER, Authenticator, key_in_message, unauthorized
from services.gateway.dashboard import dashboard_routes
from services.gateway.docs import docs_routes
from services.gateway.feed import Follower, Owners, follow_all
from services.gateway.guard import MessageGuard
from services.gateway.idempotency import (
    Answer,
    IdempotencyKeys,
    InFlight,
    Mismatch,
    Replay,
    is_valid_key,
    order_fingerprint,
)
from services.gateway.limits import Limits
from services.gateway.metrics import CONTENT_TYPE, Scrape
from services.gateway.openapi import document
from services.gateway.queries import ReadModel
from services.gateway.subscriptions import History, Tail, UnknownOrder, follow
from services.gateway.validation import Invalid, order_from, quote_request, submit_message
from services.gateway.views import (
    StatusMessage,
    order_view,
    order_view_from_row,
    quote_view,
    status_message,
    token_views,
)
from shared.accounts import Account
from shared.config import Settings
from shared.events import AnyEvent, Cancelled, OrderRequested, to_builtins
from shared.launches import BadLaunch, Launches, PoolLaunched
from shared.launches import check as check_launch
from shared.lifecycle import STATUSES
from shared.logs import bind
from shared.market import Market
from shared.metrics import (
    ORDERS_ACCEPTED,
    ORDERS_REJECTED,
    STATUSES_SENT,
    WS_DELIVERY,
    WS_SUBSCRIBERS,
)
from shared.order import fold
from shared.positions import Positions
from shared.process import hold_many_objects
from shared.routing import NoRoute, decide
from shared.stream import OPEN_ORDER_TTL_S, EventStore

log = logging.getLogger("oee.gateway")

MAX_BODY_BYTES = 16 * 1024
FIRST_MESSAGE_TIMEOUT_S = 30.0
# A browser's auth message comes as soon as its socket opens.
AUTH_TIMEOUT_S = 10.0
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


def error(status_code: int, field: str, rule: str, message: str,
          headers: dict[str, str] | None = None) -> Response:
    return json(Invalid(field, rule, message).as_json(), status_code, headers)


def unavailable(what: str) -> Refusal:
    return Refusal(503, Invalid("service", "unavailable",
                                f"{what} is unavailable; try again shortly"), {"Retry-After": "1"})


class Refusal(Exception):
    """A request the gateway will not carry out, with the status and error that say why."""

    def __init__(self, status_code: int, invalid: Invalid,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(invalid.message)
        self.status_code, self.invalid, self.headers = status_code, invalid, headers or {}

    def response(self) -> Response:
        return json(self.invalid.as_json(), self.status_code, self.headers)


class Acceptance(msgspec.Struct, frozen=True):
    order_id: str
    # The 202 answer's body: a replayed request gets these very bytes.
    body: bytes
    headers: dict[str, str]


def accepted_body(order_id: str) -> bytes:
    return _encoder.encode({
        "orderId": order_id, "status": "pending", "stream": f"/orders/execute?orderId={order_id}",
        "links": {"order": f"/orders/{order_id}", "events": f"/orders/{order_id}/events"},
    })


def owns(account: Account, events: list[AnyEvent]) -> bool:
    """Whether ``account`` may see the order of ``events``: its own, or any for operators."""
    if account.is_operator:
        return True
    return any(isinstance(e, OrderRequested) and e.account == account.name for e in events)


def instant(text: str) -> datetime:
    """An RFC 3339 time with its offset."""
    try:
        parsed: datetime = msgspec.json.decode(_encoder.encode(text), type=datetime)
    except msgspec.ValidationError:
        parsed = datetime.min
    if parsed.tzinfo is None:
        raise Invalid("asOf", "datetime", "asOf must be an RFC 3339 time with an offset, "
                      "like 2026-11-27T10:00:00Z")
    return parsed


Handler = Callable[[Request, Account], Awaitable[Response]]


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = EventStore(settings)
        self.read_model = ReadModel(settings.database_url)
        self.tail = Tail(self.store)
        self.scrape = Scrape()
        self.market = Market.from_settings(settings)
        self.launches = Launches(self.store.redis, settings.namespace)
        self.openapi_document = document()
        self.auth = Authenticator(settings.auth, settings.database_url)
        self.limits = Limits(self.store, settings.rate_limit_per_min, settings.max_open_orders,
                             OPEN_ORDER_TTL_S)
        self.idempotency = IdempotencyKeys(self.store.redis, settings.namespace,
                                           settings.idempotency_ttl_s)
        self.owners = Owners(self.history)
        # Open WebSockets per account on this process.
        self.sockets: Counter[str] = Counter()
        # Set on SIGTERM: every subscription closes with 1001 before the server stops.
        self.going_away = asyncio.Event()
        self.subscriptions: set[asyncio.Task[Any]] = set()

    async def history(self, order_id: str) -> list[AnyEvent]:
        # Redis holds recent orders, consistent with the stream; PostgreSQL holds them all.
        return await self.store.history(order_id) or await self.read_model.events(order_id)

    def history_for(self, account: Account) -> History:
        """The history of orders ``account`` may see; another account's order has none,
        exactly like an order that does not exist."""
        async def history(order_id: str) -> list[AnyEvent]:
            events = await self.history(order_id)
            return events if owns(account, events) else []
        return history

    # --- submitting -------------------------------------------------------------------

    async def submit(self, account: Account, order: OrderRequested,
                     idempotency_key: str | None) -> Acceptance:
        """Accept ``order`` once per idempotency key, within the account's limits."""
        if idempotency_key is None:
            return await self.admit(account, order)
        if not is_valid_key(idempotency_key):
            raise Refusal(400, Invalid("Idempotency-Key", "idempotency_key",
                                       "an idempotency key is 1 to 255 printable ASCII characters"))
        order_print = order_fingerprint(order)
        try:
            outcome = await self.idempotency.claim(account.name, idempotency_key, order_print)
        except RedisError:
            log.exception("could not read idempotency key")
            raise unavailable("the event stream") from None
        match outcome:
            case Replay(answer=answer):
                replayed: dict[str, Any] = msgspec.json.decode(answer.body)
                return Acceptance(replayed["orderId"], answer.body,
                                  {"Idempotent-Replayed": "true"})
            case InFlight():
                raise Refusal(409, Invalid("Idempotency-Key", "in_flight",
                                           "the first request with this key is still in flight; "
                                           "retry shortly"), {"Retry-After": "1"})
            case Mismatch():
                raise Refusal(422, Invalid("Idempotency-Key", "idempotency_mismatch",
                                           "this key was used with a different order"))
        try:
            accepted = await self.admit(account, order)
        except BaseException:
            with contextlib.suppress(RedisError):
                await self.idempotency.release(account.name, idempotency_key)
            raise
        try:
            await self.idempotency.answer(account.name, idempotency_key,
                                          Answer(202, accepted.body))
        except RedisError:
            # The order is accepted; a retry within the in-flight window still gets 409.
            log.exception("could not store the answer of idempotency key")
        return accepted

    async def admit(self, account: Account, order: OrderRequested) -> Acceptance:
        bind(order_id=order.order_id)  # this request's log lines name its order
        try:
            admission = await self.limits.admit(account.name, order.order_id)
        except RedisError:
            log.exception("could not check the limits of %s", account.name)
            raise unavailable("the event stream") from None
        if not admission.rate.allowed:
            raise Refusal(429, Invalid(
                "x-api-key", "rate_limited",
                f"more than {admission.rate.limit} orders a minute; retry in "
                f"{admission.rate.headers()['Retry-After']} s"), admission.rate.headers())
        if not admission.open_orders_ok:
            raise Refusal(429, Invalid(
                "x-api-key", "open_orders",
                f"{self.settings.max_open_orders} orders are unfinished already; submit more "
                "once some are confirmed or failed"), {"Retry-After": "1"})
        try:
            await self.store.append([order])
        except RedisError:
            log.exception("could not append order %s", order.order_id)
            with contextlib.suppress(RedisError):
                await self.limits.forget_open_order(account.name, order.order_id)
            raise unavailable("the event stream") from None
        ORDERS_ACCEPTED.inc()
        return Acceptance(order.order_id, accepted_body(order.order_id), admission.rate.headers())

    # --- HTTP -------------------------------------------------------------------------

    def authenticated(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` for requests with a valid key; 401 for the others."""
        async def endpoint(request: Request) -> Response:
            try:
                account = await self.auth.account(request.headers.get(HEADER))
            except Exception:
                log.exception("could not read the API keys")
                return unavailable("the key store").response()
            if account is None:
                return json(unauthorized().as_json(), 401, {"WWW-Authenticate": "ApiKey"})
            return await handler(request, account)
        return endpoint

    async def execute(self, request: Request, account: Account) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                ORDERS_REJECTED.labels("size").inc()
                return error(413, "body", "size", f"the body is larger than {MAX_BODY_BYTES} bytes")
        with contextlib.suppress(RedisError):
            await self.launches.fresh()  # tokens launched lately are listed
        try:
            order = order_from(bytes(body), new_order_id())
            order = msgspec.structs.replace(order, account=account.name)
            accepted = await self.submit(account, order, request.headers.get("idempotency-key"))
        except Invalid as invalid:
            ORDERS_REJECTED.labels(invalid.rule).inc()
            return json(invalid.as_json(), 400)
        except Refusal as refusal:
            ORDERS_REJECTED.labels(refusal.invalid.rule).inc()
            return refusal.response()
        headers = {"Location": f"/orders/{accepted.order_id}", **accepted.headers}
        return Response(accepted.body, 202, headers, "application/json")

    async def get_order(self, request: Request, account: Account) -> Response:
        try:
            as_of = request.query_params.get("asOf")
            at = instant(as_of) if as_of is not None else None
            order_id, events = await self.events_of(request, account)
        except Invalid as invalid:
            return json(invalid.as_json(), 400)
        except Refusal as refusal:
            return refusal.response()
        if at is not None:
            # The order as it stood then: the same fold over the events known by then.
            events = [e for e in events if e.at <= at]
            if not events:
                return error(404, "orderId", "unknown_order", f"no order {order_id!r} at {as_of}")
        return json(order_view(fold(order_id, events), events))

    async def get_events(self, request: Request, account: Account) -> Response:
        try:
            order_id, events = await self.events_of(request, account)
        except Refusal as refusal:
            return refusal.response()
        return json({"orderId": order_id, "events": [to_builtins(e) for e in events]})

    async def events_of(self, request: Request, account: Account) -> tuple[str, list[AnyEvent]]:
        """The order named in the path and its events, if ``account`` may see them."""
        order_id = request.path_params["order_id"]
        unknown = Refusal(404, Invalid("orderId", "unknown_order", f"no order {order_id!r}"))
        if not is_order_id(order_id):
            raise unknown
        try:
            events = await self.history_for(account)(order_id)
        except Exception:
            log.exception("could not read order %s", order_id)
            raise unavailable("order storage") from None
        if not events:
            raise unknown
        return order_id, events

    async def list_orders(self, request: Request, account: Account) -> Response:
        params = request.query_params
        status = params.get("status")
        if status is not None and status not in STATUSES:
            return error(400, "status", "status", "status must be one of " + ", ".join(STATUSES))
        try:
            limit = int(params.get("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 500:
            return error(400, "limit", "range", "limit must be an integer from 1 to 500")
        before = params.get("before")
        if before is not None and not is_order_id(before):
            return error(400, "before", "cursor", "before must be an order id from a page")
        owner = params.get("account")
        if not account.is_operator:
            if owner not in (None, account.name):
                return error(400, "account", "operator_only",
                             "only operator keys list other accounts' orders")
            owner = account.name
        try:
            rows = await self.read_model.orders(status, before, limit, owner)
        except Exception:
            log.exception("could not list orders")
            return unavailable("order storage").response()
        orders = [order_view_from_row(r) for r in rows]
        next_cursor = orders[-1].order_id if len(orders) == limit else None
        return json({"orders": orders, "next": next_cursor})

    async def cancel(self, request: Request, account: Account) -> Response:
        """DELETE /orders/{id}: an open order ends cancelled; once routing started, 409.
        The store decides a race with the trigger: one of the two events goes in."""
        try:
            order_id, events = await self.events_of(request, account)
            state = fold(order_id, events)
            # A lost race with OrderOpened leaves the order open: try again from there.
            for _ in range(3):
                if state.state not in ("opening", "open"):
                    break
                cancel = Cancelled(order_id=order_id, seq=state.last_seq + 1,
                                   account=account.name)
                if (await self.store.append([cancel]))[0] is not None:
                    return json({"orderId": order_id, "status": "cancelled"}, 202)
                state = fold(order_id, await self.history(order_id))
        except Refusal as refusal:
            return refusal.response()
        except RedisError:
            return unavailable("the event stream").response()
        if state.status == "cancelled":
            return json({"orderId": order_id, "status": "cancelled"}, 202)
        started = " (it was triggered and is being routed)" if state.state == "triggered" else ""
        return error(409, "orderId", "not_open", f"order {order_id} is {state.status}{started}; "
                     "only an open order can be cancelled")

    async def tokens(self, request: Request, account: Account) -> Response:
        try:
            await self.launches.catch_up()
        except RedisError:
            return unavailable("the event stream").response()
        return json({"tokens": token_views()})

    async def launch_pool(self, request: Request, account: Account) -> Response:
        """POST /admin/pools: an operator launches a token and its pool."""
        if not account.is_operator:
            return error(403, "x-api-key", "operator_only", "only operator keys launch pools")
        try:
            launch = msgspec.json.decode(await request.body(), type=PoolLaunched)
            await self.launches.catch_up()
            launch = check_launch(launch)
            await self.launches.append(launch)
        except msgspec.ValidationError as problem:
            return error(400, "body", "type", str(problem))
        except msgspec.DecodeError as problem:
            return error(400, "body", "json", f"the body is not valid JSON: {problem}")
        except BadLaunch as bad:
            return error(400, bad.field, "launch", str(bad))
        except RedisError:
            return unavailable("the event stream").response()
        return json(msgspec.to_builtins(launch), 201)

    async def quote(self, request: Request, account: Account) -> Response:
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
        return Response(self.scrape.render(self.tail.events_seen, backlog),
                        media_type=CONTENT_TYPE)

    # --- WebSocket --------------------------------------------------------------------

    async def execute_ws(self, ws: WebSocket) -> None:
        """Stream ``?orderId=``, or submit the next message and stream that order."""

        async def serve(account: Account, guard: MessageGuard) -> None:
            order_id = ws.query_params.get("orderId")
            if order_id is None:
                text = await self.next_message(ws, guard, "send the order as a message")
                order, key = submit_message(text, new_order_id())
                order = msgspec.structs.replace(order, account=account.name)
                order_id = (await self.submit(account, order, key)).order_id
            elif not is_order_id(order_id):
                raise Invalid("orderId", "unknown_order", f"no order {order_id!r}")
            await self.stream_to(ws, self.send_statuses(ws, order_id, account), guard)

        await self.websocket(ws, serve)

    async def stream_ws(self, ws: WebSocket) -> None:
        """Every status of every order the account may see, live; ``?after=POSITION``
        first resends what came after that position. Without it the stream starts where
        the log stood when the connection opened, so nothing the client does once it is
        connected can be missed while its key is being checked."""
        opened = self.tail.position

        async def serve(account: Account, guard: MessageGuard) -> None:
            after_text = ws.query_params.get("after")
            try:
                after = (opened if after_text is None
                         else Positions.parse(after_text, len(self.store.partitions)))
            except ValueError:
                raise Invalid("after", "position", "after must be the position of a status "
                              "message") from None
            follower = Follower(account, self.owners, self.history)
            feed = follow_all(self.tail, self.store, self.read_model, follower, after)
            await self.stream_to(ws, self.send_feed(ws, feed), guard)

        await self.websocket(ws, serve)

    async def websocket(self, ws: WebSocket,
                        serve: Callable[[Account, MessageGuard], Awaitable[None]]) -> None:
        """Authenticate, hold one of the account's connections, then ``serve``. Whatever
        the client breaks, it gets the error, then a policy close."""
        await ws.accept()
        guard = MessageGuard()
        try:
            account = await self.ws_account(ws, guard)
            if self.sockets[account.name] >= self.settings.max_ws_per_account:
                raise Invalid("x-api-key", "too_many_connections",
                              f"at most {self.settings.max_ws_per_account} WebSockets per "
                              "account; close one first")
            self.sockets[account.name] += 1
            try:
                await serve(account, guard)
            finally:
                self.sockets[account.name] -= 1
                if not self.sockets[account.name]:
                    del self.sockets[account.name]
        except Invalid as invalid:
            await self.refuse(ws, invalid)
        except Refusal as refusal:
            await self.refuse(ws, refusal.invalid, 1011 if refusal.status_code == 503 else None)
        except WebSocketDisconnect:
            pass

    async def ws_account(self, ws: WebSocket, guard: MessageGuard) -> Account:
        key = ws.headers.get(HEADER)
        if key is None and self.auth.required:
            key = key_in_message(
                await self.next_message(ws, guard, "authenticate first", AUTH_TIMEOUT_S))
        try:
            account = await self.auth.account(key)
        except Exception:
            log.exception("could not read the API keys")
            raise unavailable("the key store") from None
        if account is None:
            raise unauthorized()
        return account

    async def next_message(self, ws: WebSocket, guard: MessageGuard, what: str,
                           timeout_s: float = FIRST_MESSAGE_TIMEOUT_S) -> str:
        try:
            message = await asyncio.wait_for(ws.receive(), timeout_s)
        except TimeoutError:
            raise Invalid("message", "timeout", f"{what} within {timeout_s:g} s") from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        return guard.check(message)

    async def refuse(self, ws: WebSocket, invalid: Invalid, code: int | None = None) -> None:
        ORDERS_REJECTED.labels(invalid.rule).inc()
        if ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, ConnectionError):
                await ws.send_text(_encoder.encode(invalid.as_json()).decode())
        await _close(ws, code or POLICY_VIOLATION)

    async def stream_to(self, ws: WebSocket, sending: Coroutine[Any, Any, None],
                        guard: MessageGuard) -> None:
        """Run ``sending`` until it ends (then close 1000), the client leaves or breaks a
        rule, or the gateway goes away (then 1001: the client reconnects elsewhere and
        gets the full history)."""
        handler = asyncio.current_task()
        assert handler is not None
        self.subscriptions.add(handler)
        try:
            await self._stream_to(ws, sending, guard)
        finally:
            self.subscriptions.discard(handler)

    async def _stream_to(self, ws: WebSocket, sending_statuses: Coroutine[Any, Any, None],
                         guard: MessageGuard) -> None:
        sending = asyncio.create_task(sending_statuses)
        listening = asyncio.create_task(_listen(ws, guard))
        going_away = asyncio.create_task(self.going_away.wait())
        WS_SUBSCRIBERS.inc()
        try:
            done, _ = await asyncio.wait(
                {sending, listening, going_away}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            WS_SUBSCRIBERS.dec()
            for task in (sending, listening, going_away):
                task.cancel()
            await asyncio.gather(sending, listening, going_away, return_exceptions=True)
        for task in (listening, sending):
            if task in done and isinstance(problem := task.exception(), Invalid | Refusal):
                raise problem
        if sending not in done:
            if going_away in done:
                await _close(ws, 1001)
            return
        problem = sending.exception()
        if problem is None:
            await _close(ws, 1000)
        elif not isinstance(problem, WebSocketDisconnect | ConnectionError):
            log.error("a subscription failed", exc_info=problem)
            await _close(ws, 1011)

    async def send_statuses(self, ws: WebSocket, order_id: str, account: Account) -> None:
        try:
            async for state, event in follow(self.tail, order_id, self.history_for(account)):
                message = status_message(state, event)
                if message is not None:
                    await self.send_status(ws, message, event.at)
        except UnknownOrder:
            raise Invalid("orderId", "unknown_order", f"no order {order_id!r}") from None

    async def send_feed(self, ws: WebSocket, feed: AsyncIterator[StatusMessage]) -> None:
        async for message in feed:
            await self.send_status(ws, message, message.timestamp)

    async def send_status(self, ws: WebSocket, message: StatusMessage, at: datetime) -> None:
        await ws.send_text(_encoder.encode(message).decode())
        STATUSES_SENT.inc()
        WS_DELIVERY.observe(time.time() - at.timestamp())

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
            await self.auth.close()
            await self.read_model.close()
            await self.store.close()


async def _listen(ws: WebSocket, guard: MessageGuard) -> None:
    """Read what the client sends while it is streamed to, until it leaves; raises
    Invalid for a binary, oversized or flooding message."""
    while (message := await ws.receive())["type"] != "websocket.disconnect":
        guard.check(message)


async def _close(ws: WebSocket, code: int) -> None:
    if ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(code)


def create_app(settings: Settings, gateway: Gateway | None = None) -> Starlette:
    gateway = gateway or Gateway(settings)
    keyed = gateway.authenticated
    return Starlette(
        routes=[
            Route("/orders/execute", keyed(gateway.execute), methods=["POST"]),
            WebSocketRoute("/orders/execute", gateway.execute_ws),
            WebSocketRoute("/orders/stream", gateway.stream_ws),
            Route("/orders", keyed(gateway.list_orders), methods=["GET"]),
            Route("/quote", keyed(gateway.quote), methods=["GET"]),
            Route("/orders/{order_id}", keyed(gateway.get_order), methods=["GET"]),
            Route("/orders/{order_id}", keyed(gateway.cancel), methods=["DELETE"]),
            Route("/tokens", keyed(gateway.tokens), methods=["GET"]),
            Route("/admin/pools", keyed(gateway.launch_pool), methods=["POST"]),
            Route("/orders/{order_id}/events", keyed(gateway.get_events), methods=["GET"]),
            Route("/healthz", gateway.healthz, methods=["GET"]),
            Route("/readyz", gateway.readyz, methods=["GET"]),
            Route("/metrics", gateway.metrics_text, methods=["GET"]),
            Route("/openapi.json", gateway.openapi, methods=["GET"]),
            *docs_routes(),
            *dashboard_routes(),
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
