"""The OpenAPI document, generated from the route table (each documented path declares the
``Operation`` of each of its methods where it is declared), from the msgspec Structs that
render the API (``msgspec.json.schema_components``), and from the schemas of what the
gateway accepts (``schemas``), which are made from the validator's own limits.

OpenAPI cannot describe a WebSocket, so the protocol on ``/orders/execute`` is told in that
path's description, and every message it carries is a component schema beside the HTTP ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from services.gateway import schemas
from services.gateway.auth import AuthMessage
from services.gateway.validation import ErrorBody, SubmitMessage
from services.gateway.views import StatusMessage
from shared.tokens import Token, listed

KEY_SCHEME = "ApiKey"
# What the WebSocket carries, described beside the HTTP bodies.
MESSAGES = (SubmitMessage, AuthMessage, StatusMessage, ErrorBody)
PUBLIC: list[dict[str, list[str]]] = []  # an empty requirement list: no key needed

Endpoint = Callable[[Request], Awaitable[Response]]


class Answer(msgspec.Struct, frozen=True):
    """One response an operation may give."""

    description: str
    # A msgspec type (its schema goes to the components), a component's name, a schema,
    # or None: no body.
    body: Any = None
    headers: dict[str, Any] = {}
    media_type: str = "application/json"
    # OpenAPI links: operations that take a value from this response.
    links: dict[str, Any] = {}


class Operation(msgspec.Struct, frozen=True, kw_only=True):
    """What the document says of one method of a path: declared beside it in the route
    table."""

    summary: str
    id: str | None = None
    description: str | None = None
    parameters: tuple[dict[str, Any], ...] = ()
    # The request body: a msgspec type or a component's name; and examples of it, by name.
    body: Any = None
    examples: dict[str, Any] = {}
    responses: dict[int, Answer] = {}


class Documented(Route):
    """A path of the HTTP API with every method it has, each with its Operation: one route
    per path, so that a method the path lacks is a 405 listing all those it has."""

    def __init__(self, path: str, methods: dict[str, tuple[Endpoint, Operation]], *,
                 public: bool = False) -> None:
        endpoints = {method.upper(): endpoint for method, (endpoint, _) in methods.items()}
        # One method: its endpoint itself, so a single-method path costs no dispatch.
        endpoint = (next(iter(endpoints.values())) if len(endpoints) == 1
                    else by_method(endpoints))
        super().__init__(path, endpoint, methods=list(endpoints))
        self.operations = {method.lower(): op for method, (_, op) in methods.items()}
        self.public = public

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # The path is this route's whatever the method: a method it lacks is its 405 (see
        # Route.handle), never a later route whose pattern the path also fits (GET
        # /orders/execute names no order).
        match, child_scope = super().matches(scope)
        return (Match.FULL if match is Match.PARTIAL else match), child_scope


def by_method(endpoints: dict[str, Endpoint]) -> Endpoint:
    """One endpoint for several methods (HEAD answers as GET does)."""
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)
    return endpoint


def header(description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


def query(name: str, schema: dict[str, Any], description: str,
          required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def error(description: str, headers: dict[str, Any] | None = None) -> Answer:
    return Answer(description, ErrorBody, headers or {})


def ref(name: str) -> dict[str, str]:
    return {"$ref": schemas.REF.format(name=name)}


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


def document(routes: Iterable[BaseRoute], tokens: Sequence[Token] | None = None,
             today: date | None = None) -> dict[str, Any]:
    """The document of ``routes``, for the ``tokens`` known (by default, this process's)
    on ``today`` (a deadline's schema names the days it may fall on)."""
    documented = [r for r in routes if isinstance(r, Documented)]
    types: set[Any] = {*MESSAGES}
    for route in documented:
        for op in route.operations.values():
            types |= {a.body for a in op.responses.values() if isinstance(a.body, type)}
            if isinstance(op.body, type):
                types.add(op.body)
    ordered = sorted(types, key=lambda t: t.__name__)
    refs, components = msgspec.json.schema_components(
        ordered, ref_template=schemas.REF)
    schema_of: dict[Any, Any] = dict(zip(ordered, refs, strict=True))
    # What the gateway accepts is told exactly, in place of the wire Structs' loose shapes
    # (OrderBody, SubmitMessage, LaunchRequest).
    components |= schemas.accepted(
        listed() if tokens is None else tokens, today or datetime.now(UTC).date(), components)
    paths: dict[str, dict[str, Any]] = {}
    for route in documented:
        for method, op in route.operations.items():
            paths.setdefault(route.path, {})[method] = _operation(route, op, schema_of)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Order execution engine",
            "version": "0.1.0",
            "description": "Market, limit and sniper orders on Solana DEXes, routed, executed "
            "and streamed. Every error is an `ErrorBody` naming the field and the rule.",
        },
        "security": [{KEY_SCHEME: []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                KEY_SCHEME: {"type": "apiKey", "in": "header", "name": "x-api-key",
                             "description": "Created by `oee keys create NAME [--operator]`"},
            },
        },
    }


def _operation(route: Documented, op: Operation, schema_of: dict[Any, Any]) -> dict[str, Any]:
    answers = dict(op.responses)
    if not route.public:
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
        content: dict[str, Any] = {"schema": _schema(op.body, schema_of)}
        if op.examples:
            content["examples"] = {name: {"value": value} for name, value in op.examples.items()}
        out["requestBody"] = {"required": True, "content": {"application/json": content}}
    out["responses"] = {str(status): _answer(answers[status], schema_of)
                        for status in sorted(answers)}
    return out


def _schema(body: Any, schema_of: dict[Any, Any]) -> Any:
    if isinstance(body, type):
        return schema_of[body]
    return ref(body) if isinstance(body, str) else body


def _answer(answer: Answer, schema_of: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    if answer.body is not None:
        out["content"] = {answer.media_type: {"schema": _schema(answer.body, schema_of)}}
    if answer.headers:
        out["headers"] = answer.headers
    if answer.links:
        out["links"] = answer.links
    return out


async def serve_document(request: Request) -> Response:
    """GET /openapi.json: the document of the app's own routes, for the tokens this process
    knows today; made again only when either changes."""
    state = request.app.state
    launches = getattr(getattr(state, "parts", None), "launches", None)
    if launches is not None:
        with contextlib.suppress(RedisError):  # the tokens known so far, then
            await launches.catch_up()
    made_for = (len(listed()), datetime.now(UTC).date())
    if getattr(state, "openapi_for", None) != made_for:
        state.openapi = msgspec.json.encode(document(request.app.routes))
        state.openapi_for = made_for
    return Response(state.openapi, media_type="application/json")
