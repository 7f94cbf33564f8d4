"""The OpenAPI document, generated from the same Structs that parse and render the API."""

from __future__ import annotations

from typing import Any

import msgspec

from services.gateway.validation import OrderBody
from services.gateway.views import OrderView, QuoteView, StatusMessage
from shared.events import AnyEvent


class ErrorDetail(msgspec.Struct):
    field: str
    rule: str
    message: str


class ErrorBody(msgspec.Struct):
    error: ErrorDetail


class Accepted(msgspec.Struct, rename="camel"):
    order_id: str
    status: str
    stream: str


class OrderPage(msgspec.Struct):
    orders: list[OrderView]
    next: str | None


class EventList(msgspec.Struct, rename="camel"):
    order_id: str
    events: list[AnyEvent]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def document() -> dict[str, Any]:
    types = (OrderBody, Accepted, ErrorBody, OrderView, OrderPage, EventList, StatusMessage,
             QuoteView)
    template = "#/components/schemas/{name}"
    _, components = msgspec.json.schema_components(types, ref_template=template)
    order_id = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Order execution engine", "version": "0.1.0"},
        "paths": {
            "/orders/execute": {
                "post": {
                    "summary": "Submit a market order; stream it over WebSocket on the same path "
                    "(GET with ?orderId=, or send the order as the first message).",
                    "requestBody": {"content": {"application/json": {"schema": _ref("OrderBody")}}},
                    "responses": {
                        "202": _json("Accepted", "accepted; statuses are StatusMessage"),
                        "400": _json("ErrorBody", "invalid order"),
                        "413": _json("ErrorBody", "body too large"),
                        "503": _json("ErrorBody", "event stream unavailable"),
                    },
                }
            },
            "/quote": {
                "get": {
                    "summary": "The route the engine would take now, without executing",
                    "parameters": [
                        {"name": n, "in": "query", "required": n != "slippage",
                         "schema": {"type": "string"}}
                        for n in ("tokenIn", "tokenOut", "amount", "slippage")
                    ],
                    "responses": {"200": _json("QuoteView", "the route"),
                                  "400": _json("ErrorBody", "invalid query"),
                                  "422": _json("ErrorBody", "no route for this trade")},
                }
            },
            "/orders": {
                "get": {
                    "summary": "Orders, newest first",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                        {"name": "before", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": _json("OrderPage", "a page of orders")},
                }
            },
            "/orders/{order_id}": {
                "get": {
                    "parameters": [order_id],
                    "responses": {"200": _json("OrderView", "the order"),
                                  "404": _json("ErrorBody", "unknown order")},
                }
            },
            "/orders/{order_id}/events": {
                "get": {
                    "parameters": [order_id],
                    "responses": {"200": _json("EventList", "the audit trail, oldest first"),
                                  "404": _json("ErrorBody", "unknown order")},
                }
            },
        },
        "components": {"schemas": components},
    }
