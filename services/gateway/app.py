"""The gateway's route table: every route, with what the OpenAPI document says of it declared
beside it. HTTP and WebSocket in, ``OrderRequested`` onto the stream, statuses out."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

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
from services.gateway.errors import HANDLERS, guarded, handled
from services.gateway.idempotency import HEADER_KEY_TEXT
from services.gateway.openapi import (
    RATE_LIMIT,
    RATE_LIMIT_POLICY,
    REPLAYED,
    RETRY_AFTER,
    Answer,
    Documented,
    Endpoint,
    Operation,
    error,
    header,
    query,
    serve_document,
    unavailable,
)
from services.gateway.parts import KeyedHandler, Parts, keyed
from services.gateway.schemas import INSTANT
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


def api(path: str, **methods: tuple[KeyedHandler, Operation]) -> Documented:
    """A path whose every method needs a key."""
    return Documented(path, {method: (keyed(handler), operation)
                             for method, (handler, operation) in methods.items()})


def public(path: str, endpoint: Endpoint, operation: Operation) -> Documented:
    """A page anyone may GET: probes, metrics, the API's description and its pages."""
    return Documented(path, {"get": (endpoint, operation)}, public=True)


def page(description: str) -> Answer:
    return Answer(description, {"type": "string"}, media_type="text/html")


TEXT = {"type": "string"}
ORDER_ID = {"name": "order_id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": queries.ORDER_ID_TEXT},
            "description": "An orderId; another account's order is 404 like an unknown one"}
# Where the new order's id goes in the operations that follow a submit.
FOLLOW = {"order_id": "$response.body#/orderId"}
SUBMIT_ANSWER_HEADERS = {
    "Location": header("The order's URL", {"type": "string"}, required=True),
    "RateLimit": RATE_LIMIT, "RateLimit-Policy": RATE_LIMIT_POLICY,
    "Idempotent-Replayed": REPLAYED,
}
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.01}
UNLISTED_MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"

ROUTES: list[BaseRoute] = [
    api("/orders/execute", post=(submit.execute, Operation(
        id="submitOrder",
        summary="Submit a market, limit or sniper order",
        description="Answers at once with the orderId; execution goes on in the background "
        "and is followed over the WebSocket on this same path.\n\n" + session.PROTOCOL,
        parameters=({
            "name": "Idempotency-Key", "in": "header", "required": False,
            "description": "Repeat a submit safely: the same key (per account) with the same "
            "body answers the first request's status and body again, with "
            "`Idempotent-Replayed: true`; a different body is 422 `idempotency_mismatch`; a "
            "repeat while the first is still in flight is 409 `in_flight`. 1 to 255 "
            "printable ASCII characters.",
            "schema": {"type": "string", "pattern": HEADER_KEY_TEXT},
        },),
        body=OrderBody,
        examples={
            "market": ORDER,
            # A limit no seeded market meets: it stays open until cancelled or expired.
            "limit": {**ORDER, "type": "limit", "limitPrice": "1000000", "ttlSeconds": 3600},
            "sniper": {"type": "sniper", "tokenIn": "SOL", "tokenOut": UNLISTED_MINT,
                       "amount": "0.1", "slippage": 0.05, "ttlSeconds": 3600},
        },
        responses={
            202: Answer("accepted: follow it on the WebSocket named in `stream`", Accepted,
                        SUBMIT_ANSWER_HEADERS, links={
                            "getOrder": {"operationId": "getOrder", "parameters": FOLLOW},
                            "cancelOrder": {"operationId": "cancelOrder",
                                            "parameters": FOLLOW},
                            "getOrderEvents": {"operationId": "getOrderEvents",
                                               "parameters": FOLLOW},
                        }),
            400: error("an invalid order (`json`, `object`, `required`, `unknown_field`, "
                       "`type`, `unknown_token`, `distinct_tokens`, `positive`, `finite`, "
                       "`decimals`, `max`, `range`, `order_type`, `mint`, `datetime`, `past`, "
                       "`exclusive`) or Idempotency-Key (`idempotency_key`)"),
            409: error("rule `in_flight`: the first request with this Idempotency-Key is still "
                       "being answered", {"Retry-After": RETRY_AFTER}),
            413: error("rule `size`: the body is over 16 KiB"),
            422: error("rule `idempotency_mismatch`: this Idempotency-Key was used with "
                       "another body"),
            429: error("rule `rate_limited` (the account's submits per minute are spent) or "
                       "`open_orders` (the account has too many unfinished orders)",
                       {"Retry-After": RETRY_AFTER, "RateLimit": RATE_LIMIT,
                        "RateLimit-Policy": RATE_LIMIT_POLICY}),
            503: unavailable("the event stream"),
        },
    ))),
    WebSocketRoute("/orders/execute", guarded(session.execute)),
    WebSocketRoute("/orders/stream", guarded(session.stream)),
    api("/orders", get=(queries.list_orders, Operation(
        id="listOrders",
        summary="Orders, newest first",
        description="The key's own orders; an operator key sees every account's.",
        parameters=(
            query("status", {"type": "string", "enum": list(STATUSES)}, "Only this status"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": queries.MAX_PAGE,
                            "default": 50}, "Page size"),
            query("before", {"type": "string", "pattern": queries.ORDER_ID_TEXT},
                  "The `next` of the previous page"),
            query("account", {"type": "string", "pattern": queries.ACCOUNT_TEXT},
                  "Operator keys only: one account's orders"),
        ),
        responses={
            200: Answer("a page of orders", OrderPage),
            400: error("a parameter out of its range (`status`, `range`, `cursor`, "
                       "`operator_only`, `account`)"),
            503: unavailable("order storage"),
        },
    ))),
    api("/quote", get=(queries.quote, Operation(
        id="quote",
        summary="The route the engine would take now, executing nothing",
        description="The query names a trade as an order's body would: "
        "`?tokenIn=SOL&tokenOut=USDC&amount=0.5&slippage=0.01`.",
        parameters=({"name": "trade", "in": "query", "required": True, "style": "form",
                     "explode": True, "schema": {"$ref": "#/components/schemas/QuoteQuery"},
                     "description": "tokenIn, tokenOut, amount and (0.01 when absent) "
                     "slippage, as in an order"},),
        responses={
            200: Answer("the route", QuoteView),
            400: error("a query that would be an invalid order"),
            422: error("rule `no_route`: no pool path for this trade"),
        },
    ))),
    api("/orders/{order_id}", get=(queries.get_order, Operation(
        id="getOrder",
        summary="An order's current state, or its state at a past instant",
        parameters=(
            ORDER_ID,
            query("asOf", INSTANT,
                  "RFC 3339 instant: the order as it stood then, from its events up to it"),
        ),
        responses={
            200: Answer("the order", OrderView),
            400: error("asOf is not an RFC 3339 date-time"),
            404: error("rule `unknown_order`"),
            503: unavailable("order storage"),
        },
    )), delete=(cancel.cancel, Operation(
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
    ))),
    api("/tokens", get=(queries.tokens, Operation(
        id="listTokens",
        summary="Every token: the seed's and those launched since",
        responses={200: Answer("the tokens", TokenList), 503: unavailable("the event stream")},
    ))),
    launches.ROUTE,
    api("/admin/pools", post=(admin.launch_pool, Operation(
        id="launchPool",
        summary="Launch a token and its first pool (operator keys only)",
        description="Appends `PoolLaunched` to the market's stream; every process learns "
        "the token and pool from it, and the snipers waiting for the mint fire.",
        body=admin.LaunchRequest,
        examples={"launch": {"mint": UNLISTED_MINT, "symbol": "NEW", "decimals": 6,
                             "venue": "raydium", "price": "0.001", "liquidity": "500"}},
        responses={
            201: Answer("launched", PoolLaunched),
            400: error("an invalid launch (`json`, `type`, `launch` naming the field)"),
            403: error("rule `operator_only`"),
            409: error("rule `launch`: the mint or the symbol is listed already"),
            422: error("rule `launch`, field `liquidity`: at this price, the liquidity "
                       "leaves a side of the pool without one base unit"),
            413: error("rule `size`: the body is over 16 KiB"),
            503: unavailable("the event stream"),
        },
    ))),
    api("/orders/{order_id}/events", get=(queries.get_events, Operation(
        id="getOrderEvents",
        summary="An order's audit trail: every event, oldest first",
        parameters=(ORDER_ID,),
        responses={
            200: Answer("the events", EventList),
            404: error("rule `unknown_order`"),
            503: unavailable("order storage"),
        },
    ))),
    public("/healthz", probes.healthz, Operation(
        summary="200 while the gateway is up", responses={200: Answer("up", Health)})),
    public("/readyz", probes.readyz, Operation(
        summary="200 only while Redis and PostgreSQL answer",
        responses={200: Answer("ready", Readiness),
                   503: Answer("which dependency is down", Readiness)})),
    public("/metrics", probes.metrics, Operation(
        summary="Prometheus text",
        responses={200: Answer("the metrics", TEXT, media_type="text/plain")})),
    public("/openapi.json", serve_document, Operation(
        summary="This document",
        responses={200: Answer("OpenAPI 3.1", {"type": "object"})})),
    public("/docs", docs.page, Operation(
        summary="Interactive API docs (Swagger UI, served offline)",
        responses={200: page("the page")})),
    *docs.files(),
    public("/", dashboard.page, Operation(
        summary="The dashboard: submit orders and watch them, in a browser",
        responses={200: page("the page")})),
    *dashboard.files(),
]


SUBMIT = "/orders/execute"


class Gateway(Starlette):
    """The route table, with a short way for the one request every order makes: POST
    /orders/execute goes straight to its route's endpoint, and what it raises is answered
    by the same handlers. Starlette's middleware and route matching cost that request 15-33
    µs of the gateway's CPU on 2026-12-07 (``python -m bench.overheads``:
    ``submitThroughStarlette`` against ``submitStraight``); every other request takes them."""

    def __init__(self, parts: Parts) -> None:
        super().__init__(routes=ROUTES, exception_handlers=HANDLERS, lifespan=parts.lifespan)
        self.state.parts = parts
        [route] = [r for r in ROUTES if isinstance(r, Route) and r.path == SUBMIT]
        self.submit = route.endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != SUBMIT
                or scope.get("root_path")):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        request = Request(scope, receive, send)
        try:
            response = await self.submit(request)
        except Exception as problem:
            response = await handled(request, problem)
        await response(scope, receive, send)


def create_app(settings: Settings, parts: Parts | None = None) -> Gateway:
    return Gateway(parts or Parts(settings))
