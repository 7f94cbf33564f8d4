"""The OpenAPI document, generated from the same Structs that parse and render the API.

OpenAPI cannot describe a WebSocket, so the protocol on ``/orders/execute`` is told in that
path's description, and every message it carries is a component schema beside the HTTP ones.
"""

from __future__ import annotations

from typing import Any

import msgspec

from services.gateway.auth import AuthMessage
from services.gateway.validation import ErrorBody, OrderBody, SubmitMessage
from services.gateway.views import Accepted, OrderView, QuoteView, StatusMessage, TokenView
from shared.events import AnyEvent
from shared.launches import PoolLaunched
from shared.lifecycle import STATUSES

KEY_SCHEME = "ApiKey"
# The decimal text an amount or a slippage may be written as ("0.5", "1e-3").
DECIMAL_TEXT = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"


class OrderPage(msgspec.Struct):
    orders: list[OrderView]
    # The `before` of the next page; null on the last one.
    next: str | None


class EventList(msgspec.Struct, rename="camel"):
    order_id: str
    events: list[AnyEvent]


class TokenList(msgspec.Struct):
    tokens: list[TokenView]


class CancelAnswer(msgspec.Struct, rename="camel"):
    order_id: str
    status: str


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    # "ok", or "unavailable: <why>", per dependency.
    checks: dict[str, str]


SCHEMAS = (OrderBody, SubmitMessage, AuthMessage, Accepted, StatusMessage, ErrorBody, OrderView,
           OrderPage, EventList, QuoteView, Health, Readiness, TokenList, CancelAnswer,
           PoolLaunched)

WEBSOCKET = """\
**WebSocket** on the same path (browsers can only upgrade a GET). The whole protocol, with
examples: docs/websocket.md.

1. Authenticate: the handshake header `x-api-key`, or (browsers, which cannot set it) a
   first text message `AuthMessage` `{"type":"auth","apiKey":"..."}`.
2. Then either
   - `?orderId=ID` in the URL: the server streams that order's `StatusMessage`s, or
   - send one text message, a `SubmitMessage` (this POST's body, optionally with
     `"idempotencyKey"`): the server streams the new order's `StatusMessage`s; the first,
     `pending` with `seq` 1, carries the new `orderId`.
3. Every status of the order arrives exactly once, in order, ending with the terminal one
   (`confirmed` or `failed`; a limit or sniper order may also end `cancelled` or
   `expired`, and shows `open` while it waits); then the server closes with **1000**.
   A gateway that shuts down closes with **1001**: reconnect with `?orderId=` for the
   whole history again.
4. A refusal is one text message, an `ErrorBody`, then a close with **1008** (**1011** for
   rule `unavailable`: retry). Rules: `unauthorized`, `too_many_connections` (per account,
   per gateway process), `timeout` (no first message in time), `binary` (a binary frame),
   `size` (a message over 16 KiB), `flood` (more than 20 messages/s sustained, bursts of
   40), `json`, every order rule of this POST (`required`, `type`, `unknown_token`, ...),
   the submit refusals of this POST (`idempotency_key`, `in_flight`,
   `idempotency_mismatch`, `rate_limited`, `open_orders`), and `unknown_order`.
5. While streaming, a binary, oversized or flooding client message is refused as above;
   other text messages are ignored.

**WebSocket `/orders/stream`**: every status of every order the account may see (an
operator's: every account's), live, each exactly once and in order per order. Authenticate
as above; each `StatusMessage` then also carries `position`. Reconnect with
`?after=<the last position seen>` to get what was missed, then the live statuses, without a
gap (rule `position` for a malformed one).
"""


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _header(description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


RATE_LIMIT = _header(
    'The submit quota left, as the IETF RateLimit header draft: `"submits";r=<remaining>;'
    "t=<seconds until the next submit is allowed>`",
    {"type": "string", "pattern": r'^"submits";r=[0-9]+;t=[0-9]+$'},
)
RATE_LIMIT_POLICY = _header(
    'The submit quota, as the IETF RateLimit header draft: `"submits";q=<submits>;'
    "w=<window in seconds>`",
    {"type": "string", "pattern": r'^"submits";q=[0-9]+;w=[0-9]+$'},
)
RETRY_AFTER = _header("Seconds to wait before trying again",
                      {"type": "integer", "minimum": 0}, required=True)
REPLAYED = _header("Present on the stored answer to a repeated Idempotency-Key",
                   {"type": "string", "enum": ["true"]})


def _response(description: str, schema: str | None = None,
              headers: dict[str, Any] | None = None,
              media_type: str = "application/json") -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if schema is not None:
        response["content"] = {media_type: {"schema": _ref(schema)}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _response(description, "ErrorBody", headers)


UNAUTHORIZED = _error(
    "rule `unauthorized`: the x-api-key header is missing, unknown or revoked",
    {"WWW-Authenticate": _header("Always `ApiKey`", {"type": "string", "const": "ApiKey"},
                                 required=True)},
)


def _unavailable(what: str) -> dict[str, Any]:
    return _error(f"rule `unavailable`, field `service`: {what} is down; retry",
                  {"Retry-After": RETRY_AFTER})


def _query(name: str, schema: dict[str, Any], description: str,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


ORDER_ID = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "An orderId; another account's order is 404 like an unknown one"}
PUBLIC: list[dict[str, list[str]]] = []  # an empty requirement list: no key needed


def _submit() -> dict[str, Any]:
    ask = {"Location": _header("The order's URL", {"type": "string"}, required=True),
           "RateLimit": RATE_LIMIT, "RateLimit-Policy": RATE_LIMIT_POLICY}
    return {
        "summary": "Submit a market, limit or sniper order",
        "description": "Answers at once with the orderId; execution goes on in the background "
        "and is followed over the WebSocket on this same path.\n\n" + WEBSOCKET,
        "operationId": "submitOrder",
        "parameters": [{
            "name": "Idempotency-Key", "in": "header", "required": False,
            "description": "Repeat a submit safely: the same key (per account) with the same "
            "body answers the first request's status and body again, with "
            "`Idempotent-Replayed: true`; a different body is 422 `idempotency_mismatch`; a "
            "repeat while the first is still in flight is 409 `in_flight`.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                       "pattern": "^[\\x20-\\x7e]+$"},
        }],
        "requestBody": {
            "required": True,
            "content": {"application/json": {
                "schema": _ref("OrderBody"),
                "example": {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5,
                            "slippage": 0.01},
            }},
        },
        "responses": {
            "202": _response("accepted: follow it on the WebSocket named in `stream`",
                             "Accepted", {**ask, "Idempotent-Replayed": REPLAYED}),
            "400": _error("an invalid order (`json`, `object`, `required`, `unknown_field`, "
                          "`type`, `unknown_token`, `distinct_tokens`, `positive`, `finite`, "
                          "`decimals`, `max`, `range`, `order_type`, `mint`, `datetime`, "
                          "`past`, `exclusive`) or Idempotency-Key "
                          "(`idempotency_key`)"),
            "401": UNAUTHORIZED,
            "409": _error("rule `in_flight`: the first request with this Idempotency-Key is "
                          "still being answered"),
            "413": _error("rule `size`: the body is over 16 KiB"),
            "422": _error("rule `idempotency_mismatch`: this Idempotency-Key was used with "
                          "another body"),
            "429": _error("rule `rate_limited` (the account's submits per minute are spent) or "
                          "`open_orders` (the account has too many unfinished orders)",
                          {"Retry-After": RETRY_AFTER, "RateLimit": RATE_LIMIT,
                           "RateLimit-Policy": RATE_LIMIT_POLICY}),
            "503": _unavailable("the event stream"),
        },
    }


def _list_orders() -> dict[str, Any]:
    return {
        "summary": "Orders, newest first",
        "description": "The key's own orders; an operator key sees every account's.",
        "operationId": "listOrders",
        "parameters": [
            _query("status", {"type": "string", "enum": list(STATUSES)}, "Only this status"),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                   "Page size"),
            _query("before", {"type": "string", "format": "uuid"},
                   "The `next` of the previous page"),
            _query("account", {"type": "string"},
                   "Operator keys only: one account's orders"),
        ],
        "responses": {
            "200": _response("a page of orders", "OrderPage"),
            "400": _error("a parameter out of its range"),
            "401": UNAUTHORIZED,
            "503": _unavailable("order storage"),
        },
    }


def _get_order() -> dict[str, Any]:
    return {
        "summary": "An order's current state, or its state at a past instant",
        "operationId": "getOrder",
        "parameters": [
            ORDER_ID,
            _query("asOf", {"type": "string", "format": "date-time"},
                   "RFC 3339 instant: the order as it stood then, from its events up to it"),
        ],
        "responses": {
            "200": _response("the order", "OrderView"),
            "400": _error("asOf is not an RFC 3339 date-time"),
            "401": UNAUTHORIZED,
            "404": _error("rule `unknown_order`"),
            "503": _unavailable("order storage"),
        },
    }


def _get_events() -> dict[str, Any]:
    return {
        "summary": "An order's audit trail: every event, oldest first",
        "operationId": "getOrderEvents",
        "parameters": [ORDER_ID],
        "responses": {
            "200": _response("the events", "EventList"),
            "401": UNAUTHORIZED,
            "404": _error("rule `unknown_order`"),
            "503": _unavailable("order storage"),
        },
    }


def _cancel() -> dict[str, Any]:
    return {
        "summary": "Cancel an open (limit or sniper) order",
        "description": "An order that is `open` (or still `pending` before it opens) ends "
        "`cancelled`. Once its trigger fired and routing started, or once it ended, the "
        "answer is 409. A cancel racing the trigger: exactly one of the two wins.",
        "operationId": "cancelOrder",
        "parameters": [ORDER_ID],
        "responses": {
            "202": _response("cancelled (also when it was cancelled already)", "CancelAnswer"),
            "401": UNAUTHORIZED,
            "404": _error("rule `unknown_order`"),
            "409": _error("rule `not_open`: routing started, or the order ended"),
            "503": _unavailable("the event stream"),
        },
    }


def _tokens() -> dict[str, Any]:
    return {
        "summary": "Every token: the seed's and those launched since",
        "operationId": "listTokens",
        "responses": {
            "200": _response("the tokens", "TokenList"),
            "401": UNAUTHORIZED,
            "503": _unavailable("the event stream"),
        },
    }


def _launch() -> dict[str, Any]:
    return {
        "summary": "Launch a token and its first pool (operator keys only)",
        "description": "Appends `PoolLaunched` to the market's stream; every process learns "
        "the token and pool from it, and the snipers waiting for the mint fire. `price` is "
        "quote tokens per token, `liquidity` the quote tokens on each side.",
        "operationId": "launchPool",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref("PoolLaunched"),
            "example": {"mint": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
                        "symbol": "NEW", "decimals": 6, "venue": "raydium",
                        "price": "0.001", "liquidity": "500"},
        }}},
        "responses": {
            "201": _response("launched", "PoolLaunched"),
            "400": _error("an invalid launch (`json`, `type`, `launch` naming the field)"),
            "401": UNAUTHORIZED,
            "403": _error("rule `operator_only`"),
            "503": _unavailable("the event stream"),
        },
    }


def _quote() -> dict[str, Any]:
    text = {"type": "string"}
    decimal = {"type": "string", "pattern": DECIMAL_TEXT}
    return {
        "summary": "The route the engine would take now, executing nothing",
        "operationId": "quote",
        "parameters": [
            _query("tokenIn", text, "As in an order", required=True),
            _query("tokenOut", text, "As in an order", required=True),
            _query("amount", decimal, "As in an order", required=True),
            _query("slippage", decimal, "As in an order; 0.01 when absent"),
        ],
        "responses": {
            "200": _response("the route", "QuoteView"),
            "400": _error("a query that would be an invalid order"),
            "401": UNAUTHORIZED,
            "422": _error("rule `no_route`: no pool path for this trade"),
        },
    }


def _public(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "security": PUBLIC, "responses": responses}}


def _paths() -> dict[str, Any]:
    return {
        "/orders/execute": {"post": _submit()},
        "/orders": {"get": _list_orders()},
        "/orders/{order_id}": {"get": _get_order(), "delete": _cancel()},
        "/tokens": {"get": _tokens()},
        "/admin/pools": {"post": _launch()},
        "/orders/{order_id}/events": {"get": _get_events()},
        "/quote": {"get": _quote()},
        "/healthz": _public("200 while the gateway is up",
                            {"200": _response("up", "Health")}),
        "/readyz": _public("200 only while Redis and PostgreSQL answer", {
            "200": _response("ready", "Readiness"),
            "503": _response("which dependency is down", "Readiness"),
        }),
        "/metrics": _public("Prometheus text", {"200": {
            "description": "the metrics", "content": {"text/plain": {"schema": {"type": "string"}}},
        }}),
        "/openapi.json": _public("This document", {"200": {
            "description": "OpenAPI 3.1", "content": {"application/json": {"schema": {
                "type": "object"}}},
        }}),
        "/docs": _public("Interactive API docs (Swagger UI, served offline)", {"200": {
            "description": "the page", "content": {"text/html": {"schema": {"type": "string"}}},
        }}),
    }


def _accept_numbers(schema: Any) -> None:
    """msgspec describes a Decimal as a string, but decodes a JSON number into one as well."""
    if isinstance(schema, dict):
        if schema.get("format") == "decimal":
            del schema["format"]
            schema["type"] = ["number", "string"]
            schema["pattern"] = DECIMAL_TEXT
        for value in schema.values():
            _accept_numbers(value)
    elif isinstance(schema, list):
        for value in schema:
            _accept_numbers(value)


def document() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        SCHEMAS, ref_template="#/components/schemas/{name}"
    )
    _accept_numbers(components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Order execution engine",
            "version": "0.1.0",
            "description": "Market orders on Solana DEXes, routed, executed and streamed. "
            "Every error is an `ErrorBody` naming the field and the rule.",
        },
        "security": [{KEY_SCHEME: []}],
        "paths": _paths(),
        "components": {
            "schemas": components,
            "securitySchemes": {
                KEY_SCHEME: {"type": "apiKey", "in": "header", "name": "x-api-key",
                             "description": "Created by `oee keys create NAME [--operator]`"},
            },
        },
    }
