"""The OpenAPI document, generated from the route table (each documented route declares its
``Operation`` where it is declared) and from the msgspec Structs that parse and render the
API (``msgspec.json.schema_components``).

OpenAPI cannot describe a WebSocket, so the protocol on ``/orders/execute`` is told in that
path's description, and every message it carries is a component schema beside the HTTP ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.gateway.auth import AuthMessage
from services.gateway.validation import ErrorBody, SubmitMessage
from services.gateway.views import StatusMessage

KEY_SCHEME = "ApiKey"
# The decimal text an amount or a slippage may be written as ("0.5", "1e-3").
DECIMAL_TEXT = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
# What the WebSocket carries, described beside the HTTP bodies.
MESSAGES = (SubmitMessage, AuthMessage, StatusMessage, ErrorBody)
PUBLIC: list[dict[str, list[str]]] = []  # an empty requirement list: no key needed


class Answer(msgspec.Struct, frozen=True):
    """One response an operation may give."""

    description: str
    # A msgspec type (its schema goes to the components), a schema, or None: no body.
    body: Any = None
    headers: dict[str, Any] = {}
    media_type: str = "application/json"


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    """What the document says of one route: declared beside it in the route table."""

    summary: str
    id: str | None = None
    description: str | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    # The request body's msgspec type, and an example of it.
    body: Any = None
    example: Any = None
    responses: dict[int, Answer] = {}


class Documented(Route):
    """A route of the HTTP API: one method, its Operation, and whether it needs a key."""

    def __init__(self, method: str, path: str, endpoint: Callable[..., Any],
                 operation: Operation, *, public: bool = False) -> None:
        super().__init__(path, endpoint, methods=[method])
        self.method, self.operation, self.public = method.lower(), operation, public


def header(description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


def query(name: str, schema: dict[str, Any], description: str,
          required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def error(description: str, headers: dict[str, Any] | None = None) -> Answer:
    return Answer(description, ErrorBody, headers or {})


RATE_LIMIT = header(
    'The submit quota left, as the IETF RateLimit header draft: `"submits";r=<remaining>;'
    "t=<seconds until the next submit is allowed>`",
    {"type": "string", "pattern": r'^"submits";r=[0-9]+;t=[0-9]+$'},
)
RATE_LIMIT_POLICY = header(
    'The submit quota, as the IETF RateLimit header draft: `"submits";q=<submits>;'
    "w=<window in seconds>`",
    {"type": "string", "pattern": r'^"submits";q=[0-9]+;w=[0-9]+$'},
)
RETRY_AFTER = header("Seconds to wait before trying again",
                     {"type": "integer", "minimum": 0}, required=True)
REPLAYED = header("Present on the stored answer to a repeated Idempotency-Key",
                  {"type": "string", "enum": ["true"]})
ORDER_ID = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "An orderId; another account's order is 404 like an unknown one"}
UNAUTHORIZED = error(
    "rule `unauthorized`: the x-api-key header is missing, unknown or revoked",
    {"WWW-Authenticate": header("Always `ApiKey`", {"type": "string", "const": "ApiKey"},
                                required=True)},
)
UNAVAILABLE = error("rule `unavailable`, field `service`: Redis (the event stream) or "
                    "PostgreSQL (order storage, API keys) is down; retry",
                    {"Retry-After": RETRY_AFTER})
INTERNAL = error("rule `internal`: a fault of the engine, never of the request; the body's "
                 "`errorId` is in the gateway's log with the traceback")


def unavailable(what: str) -> Answer:
    return error(f"rule `unavailable`, field `service`: {what} is down; retry",
                 {"Retry-After": RETRY_AFTER})


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    documented = [r for r in routes if isinstance(r, Documented)]
    types: set[Any] = {*MESSAGES}
    for route in documented:
        op = route.operation
        types |= {a.body for a in op.responses.values() if isinstance(a.body, type)}
        if op.body is not None:
            types.add(op.body)
    ordered = sorted(types, key=lambda t: t.__name__)
    refs, components = msgspec.json.schema_components(
        ordered, ref_template="#/components/schemas/{name}")
    schema_of = dict(zip(ordered, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in documented:
        paths.setdefault(route.path, {})[route.method] = _operation(route, schema_of)
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
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                KEY_SCHEME: {"type": "apiKey", "in": "header", "name": "x-api-key",
                             "description": "Created by `oee keys create NAME [--operator]`"},
            },
        },
    }


def _operation(route: Documented, schema_of: dict[Any, Any]) -> dict[str, Any]:
    op = route.operation
    answers = dict(op.responses)
    if route.public:
        answers.setdefault(500, INTERNAL)
    else:
        # Every keyed request asks PostgreSQL for its key (cached briefly).
        answers = {401: UNAUTHORIZED, **answers}
        answers.setdefault(503, UNAVAILABLE)
        answers.setdefault(500, INTERNAL)
    out: dict[str, Any] = {"summary": op.summary}
    if op.description is not None:
        out["description"] = op.description
    if op.id is not None:
        out["operationId"] = op.id
    if route.public:
        out["security"] = PUBLIC
    if op.parameters:
        out["parameters"] = list(op.parameters)
    if op.body is not None:
        content: dict[str, Any] = {"schema": schema_of[op.body]}
        if op.example is not None:
            content["example"] = op.example
        out["requestBody"] = {"required": True, "content": {"application/json": content}}
    out["responses"] = {str(status): _answer(answers[status], schema_of)
                        for status in sorted(answers)}
    return out


def _answer(answer: Answer, schema_of: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    if answer.body is not None:
        schema = schema_of[answer.body] if isinstance(answer.body, type) else answer.body
        out["content"] = {answer.media_type: {"schema": schema}}
    if answer.headers:
        out["headers"] = answer.headers
    return out


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


async def serve_document(request: Request) -> Response:
    """GET /openapi.json: the document of the app's own routes, made once."""
    state = request.app.state
    if getattr(state, "openapi", None) is None:
        state.openapi = msgspec.json.encode(document(request.app.routes))
    return Response(state.openapi, media_type="application/json")
