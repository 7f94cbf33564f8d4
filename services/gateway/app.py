"""The gateway's route table: every route, with what the OpenAPI document says of it declared
beside it. HTTP and WebSocket in, ``OrderRequested`` onto the stream, statuses out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, WebSocketRoute

from services.gateway import (
    admin,
    cancel,
    dashboard,
    docs,
    launches,
    probes,
    queries,
    session,
    submit,
)
from services.gateway.errors import HANDLERS, guarded
from services.gateway.openapi import (
    DECIMAL_TEXT,
    ORDER_ID,
    RATE_LIMIT,
    RATE_LIMIT_POLICY,
    REPLAYED,
    RETRY_AFTER,
    Answer,
    Documented,
    Operation,
    error,
    header,
    query,
    serve_document,
    unavailable,
)
from services.gateway.parts import KeyedHandler, Parts, keyed
from services.gateway.validation import OrderBody
from services.gateway.views import (
    Accepted,
    CancelAnswer,
    EventList,
    Health,
    OrderPage,
    OrderView,
    QuoteView,
    Readiness,
    TokenList,
)
from shared.config import Settings
from shared.launches import PoolLaunched
from shared.lifecycle import STATUSES


def api(method: str, path: str, handler: KeyedHandler, operation: Operation) -> Documented:
    """A route that needs a key."""
    return Documented(method, path, keyed(handler), operation)


def public(method: str, path: str, endpoint: Callable[[Request], Awaitable[Response]],
           operation: Operation) -> Documented:
    """A route anyone may call: probes, metrics, the API's description and its pages."""
    return Documented(method, path, endpoint, operation, public=True)


def page(description: str) -> Answer:
    return Answer(description, {"type": "string"}, media_type="text/html")


TEXT = {"type": "string"}
DECIMAL = {"type": "string", "pattern": DECIMAL_TEXT}
SUBMIT_ANSWER_HEADERS = {
    "Location": header("The order's URL", {"type": "string"}, required=True),
    "RateLimit": RATE_LIMIT, "RateLimit-Policy": RATE_LIMIT_POLICY,
    "Idempotent-Replayed": REPLAYED,
}

ROUTES: list[BaseRoute] = [
    api("POST", "/orders/execute", submit.execute, Operation(
        id="submitOrder",
        summary="Submit a market, limit or sniper order",
        description="Answers at once with the orderId; execution goes on in the background "
        "and is followed over the WebSocket on this same path.\n\n" + session.PROTOCOL,
        parameters=({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "description": "Repeat a submit safely: the same key (per account) with the same "
            "body answers the first request's status and body again, with "
            "`Idempotent-Replayed: true`; a different body is 422 `idempotency_mismatch`; a "
            "repeat while the first is still in flight is 409 `in_flight`.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                       "pattern": "^[\\x20-\\x7e]+$"},
        },),
        body=OrderBody,
        example={"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.01},
        responses={
            202: Answer("accepted: follow it on the WebSocket named in `stream`", Accepted,
                        SUBMIT_ANSWER_HEADERS),
            400: error("an invalid order (`json`, `object`, `required`, `unknown_field`, "
                       "`type`, `unknown_token`, `distinct_tokens`, `positive`, `finite`, "
                       "`decimals`, `max`, `range`, `order_type`, `mint`, `datetime`, `past`, "
                       "`exclusive`) or Idempotency-Key (`idempotency_key`)"),
            409: error("rule `in_flight`: the first request with this Idempotency-Key is still "
                       "being answered"),
            413: error("rule `size`: the body is over 16 KiB"),
            422: error("rule `idempotency_mismatch`: this Idempotency-Key was used with "
                       "another body"),
            429: error("rule `rate_limited` (the account's submits per minute are spent) or "
                       "`open_orders` (the account has too many unfinished orders)",
                       {"Retry-After": RETRY_AFTER, "RateLimit": RATE_LIMIT,
                        "RateLimit-Policy": RATE_LIMIT_POLICY}),
            503: unavailable("the event stream"),
        },
    )),
    WebSocketRoute("/orders/execute", guarded(session.execute)),
    WebSocketRoute("/orders/stream", guarded(session.stream)),
    api("GET", "/orders", queries.list_orders, Operation(
        id="listOrders",
        summary="Orders, newest first",
        description="The key's own orders; an operator key sees every account's.",
        parameters=(
            query("status", {"type": "string", "enum": list(STATUSES)}, "Only this status"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": queries.MAX_PAGE,
                            "default": 50}, "Page size"),
            query("before", {"type": "string", "format": "uuid"},
                  "The `next` of the previous page"),
            query("account", {"type": "string", "maxLength": 63},
                  "Operator keys only: one account's orders"),
        ),
        responses={
            200: Answer("a page of orders", OrderPage),
            400: error("a parameter out of its range (`status`, `range`, `cursor`, "
                       "`operator_only`, `account`)"),
            503: unavailable("order storage"),
        },
    )),
    api("GET", "/quote", queries.quote, Operation(
        id="quote",
        summary="The route the engine would take now, executing nothing",
        parameters=(
            query("tokenIn", TEXT, "As in an order", required=True),
            query("tokenOut", TEXT, "As in an order", required=True),
            query("amount", DECIMAL, "As in an order", required=True),
            query("slippage", DECIMAL, "As in an order; 0.01 when absent"),
        ),
        responses={
            200: Answer("the route", QuoteView),
            400: error("a query that would be an invalid order"),
            422: error("rule `no_route`: no pool path for this trade"),
        },
    )),
    api("GET", "/orders/{order_id}", queries.get_order, Operation(
        id="getOrder",
        summary="An order's current state, or its state at a past instant",
        parameters=(
            ORDER_ID,
            query("asOf", {"type": "string", "format": "date-time"},
                  "RFC 3339 instant: the order as it stood then, from its events up to it"),
        ),
        responses={
            200: Answer("the order", OrderView),
            400: error("asOf is not an RFC 3339 date-time"),
            404: error("rule `unknown_order`"),
            503: unavailable("order storage"),
        },
    )),
    api("DELETE", "/orders/{order_id}", cancel.cancel, Operation(
        id="cancelOrder",
        summary="Cancel an open (limit or sniper) order",
        description="An order that is `open` (or still `pending` before it opens) ends "
        "`cancelled`. Once its trigger fired and routing started, or once it ended, the "
        "answer is 409. A cancel racing the trigger: exactly one of the two wins.",
        parameters=(ORDER_ID,),
        responses={
            202: Answer("cancelled (also when it was cancelled already)", CancelAnswer),
            404: error("rule `unknown_order`"),
            409: error("rule `not_open`: routing started, or the order ended"),
            503: unavailable("the event stream"),
        },
    )),
    api("GET", "/tokens", queries.tokens, Operation(
        id="listTokens",
        summary="Every token: the seed's and those launched since",
        responses={200: Answer("the tokens", TokenList), 503: unavailable("the event stream")},
    )),
    launches.ROUTE,
    api("POST", "/admin/pools", admin.launch_pool, Operation(
        id="launchPool",
        summary="Launch a token and its first pool (operator keys only)",
        description="Appends `PoolLaunched` to the market's stream; every process learns "
        "the token and pool from it, and the snipers waiting for the mint fire. `price` is "
        "quote tokens per token, `liquidity` the quote tokens on each side.",
        body=PoolLaunched,
        example={"mint": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU", "symbol": "NEW",
                 "decimals": 6, "venue": "raydium", "price": "0.001", "liquidity": "500"},
        responses={
            201: Answer("launched", PoolLaunched),
            400: error("an invalid launch (`json`, `type`, `launch` naming the field)"),
            403: error("rule `operator_only`"),
            503: unavailable("the event stream"),
        },
    )),
    api("GET", "/orders/{order_id}/events", queries.get_events, Operation(
        id="getOrderEvents",
        summary="An order's audit trail: every event, oldest first",
        parameters=(ORDER_ID,),
        responses={
            200: Answer("the events", EventList),
            404: error("rule `unknown_order`"),
            503: unavailable("order storage"),
        },
    )),
    public("GET", "/healthz", probes.healthz, Operation(
        summary="200 while the gateway is up", responses={200: Answer("up", Health)})),
    public("GET", "/readyz", probes.readyz, Operation(
        summary="200 only while Redis and PostgreSQL answer",
        responses={200: Answer("ready", Readiness),
                   503: Answer("which dependency is down", Readiness)})),
    public("GET", "/metrics", probes.metrics, Operation(
        summary="Prometheus text",
        responses={200: Answer("the metrics", TEXT, media_type="text/plain")})),
    public("GET", "/openapi.json", serve_document, Operation(
        summary="This document",
        responses={200: Answer("OpenAPI 3.1", {"type": "object"})})),
    public("GET", "/docs", docs.page, Operation(
        summary="Interactive API docs (Swagger UI, served offline)",
        responses={200: page("the page")})),
    *docs.files(),
    public("GET", "/", dashboard.page, Operation(
        summary="The dashboard: submit orders and watch them, in a browser",
        responses={200: page("the page")})),
    *dashboard.files(),
]


def create_app(settings: Settings, parts: Parts | None = None) -> Starlette:
    parts = parts or Parts(settings)
    app = Starlette(routes=ROUTES, exception_handlers=HANDLERS, lifespan=parts.lifespan)
    app.state.parts = parts
    return app
