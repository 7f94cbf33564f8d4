"""What the gateway answers when a request does not succeed, mapped once through Starlette's
``exception_handlers``, for HTTP and WebSocket alike. Handlers raise; these answer.

* ``Invalid`` (400) and ``Refusal`` (any 4xx with its rule): the client has something to
  fix. Over a WebSocket: the error message, then a close with 1008 and the rule as reason.
* A dependency that does not answer, recognised by type (``UNAVAILABLE``): 503 with
  ``Retry-After``; over a WebSocket, the error message, then 1011.
* Anything else is the engine's fault: 500 (or 1011), with an error id that the log line,
  with its traceback, carries too. Nothing a client sends may end here: that is a bug.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import psycopg
from redis import exceptions as redis_errors
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from services.gateway.validation import Invalid, shown
from services.gateway.views import json
from shared.metrics import HTTP_ERRORS, ORDERS_REJECTED

log = logging.getLogger("oee.gateway")

POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
# A close frame's reason is at most 123 bytes.
_REASON_BYTES = 123
_encoder = msgspec.json.Encoder()
# A status code's series, looked up once per code rather than once per answer.
_answered_with = functools.cache(HTTP_ERRORS.labels)

# Redis or PostgreSQL does not answer, or cannot serve right now (a cluster mid-failover).
# psycopg's OperationalError covers the pool's PoolTimeout and a connection lost mid-query.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ClusterError,
    redis_errors.TryAgainError, redis_errors.ReadOnlyError,
    redis_errors.RedisClusterUnreachableError, redis_errors.SlotNotCoveredError,
)
POSTGRES_UNAVAILABLE: tuple[type[Exception], ...] = (psycopg.OperationalError,)
UNAVAILABLE = REDIS_UNAVAILABLE + POSTGRES_UNAVAILABLE


class Refusal(Exception):
    """A request the gateway will not carry out, with the status and error that say why."""

    def __init__(self, status_code: int, invalid: Invalid,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(invalid.message)
        self.status_code, self.invalid, self.headers = status_code, invalid, headers or {}


def refusal(status_code: int, field: str, rule: str, message: str,
            headers: dict[str, str] | None = None) -> Refusal:
    return Refusal(status_code, Invalid(field, rule, message), headers)


def unknown_order(order_id: str, at: str | None = None) -> Refusal:
    when = f" at {at}" if at is not None else ""
    return refusal(404, "orderId", "unknown_order", f"no order {shown(order_id)}{when}")


def unavailable(problem: Exception) -> Refusal:
    what = "the event stream" if isinstance(problem, REDIS_UNAVAILABLE) else "order storage"
    return refusal(503, "service", "unavailable", f"{what} is unavailable; try again shortly",
                   {"Retry-After": "1"})


def as_refusal(problem: Exception) -> Refusal:
    if isinstance(problem, Refusal):
        return problem
    if isinstance(problem, Invalid):
        return Refusal(400, problem)
    return unavailable(problem)


# What the exception handlers answer as a refusal (4xx) or an outage (503).
ANSWERED: tuple[type[Exception], ...] = (Invalid, Refusal, *UNAVAILABLE)


async def refused(conn: HTTPConnection, problem: Exception) -> Response | None:
    """Invalid, Refusal or a dependency down: the error body, or its WebSocket close."""
    answer = as_refusal(problem)
    if answer.status_code == 503:
        log.warning("%s unavailable: %r", conn.url.path, problem)
    if isinstance(conn, WebSocket):
        code = INTERNAL_ERROR if answer.status_code >= 500 else POLICY_VIOLATION
        await refuse(conn, answer.invalid, code)
        return None
    _answered_with(answer.status_code).inc()
    return json(answer.invalid.as_json(), answer.status_code, answer.headers)


def bug(problem: BaseException, where: str) -> str:
    """Logs an unexpected exception with its traceback under a new error id; the id."""
    error_id = secrets.token_hex(8)
    log.error("unexpected error %s in %s", error_id, where, exc_info=problem)
    return error_id


async def server_error(request: Request, problem: Exception) -> Response:
    error_id = bug(problem, f"{request.method} {request.url.path}")
    _answered_with(500).inc()
    return json({"error": {
        "field": "service", "rule": "internal", "errorId": error_id,
        "message": f"an unexpected error in the engine; its logs name it {error_id}",
    }}, 500)


async def websocket_bug(ws: WebSocket, problem: BaseException) -> None:
    """The WebSocket's 500: logged with an error id, then a close with 1011."""
    error_id = bug(problem, f"WebSocket {ws.url.path}")
    await close(ws, INTERNAL_ERROR, f"unexpected error {error_id}")


async def answer(ws: WebSocket, problem: Exception) -> None:
    """What the handlers answer for ``problem`` over a WebSocket, for a task of the
    endpoint's own, whose exceptions do not reach them: the refusal, or the 1011 of a bug."""
    if isinstance(problem, ANSWERED):
        await refused(ws, problem)
    else:
        await websocket_bug(ws, problem)


async def refuse(ws: WebSocket, invalid: Invalid, code: int = POLICY_VIOLATION) -> None:
    ORDERS_REJECTED.labels(invalid.rule).inc()
    if ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, ConnectionError):
            await ws.send_text(_encoder.encode(invalid.as_json()).decode())
    await close(ws, code, f"{invalid.field}: {invalid.rule}")


async def close(ws: WebSocket, code: int, reason: str = "") -> None:
    if ws.application_state == WebSocketState.CONNECTED:
        reason = reason.encode()[:_REASON_BYTES].decode(errors="ignore")
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, ConnectionError):
            await ws.close(code, reason)


def guarded(endpoint: Callable[[WebSocket], Awaitable[None]],
            ) -> Callable[[WebSocket], Awaitable[None]]:
    """A WebSocket endpoint whose unexpected exceptions close it with 1011 and a logged
    error id: the WebSocket's 500 (Starlette's last-resort handler serves HTTP only)."""
    async def endpoint_closing_on_a_bug(ws: WebSocket) -> None:
        try:
            await endpoint(ws)
        except ANSWERED:
            raise  # the exception handlers answer these
        except Exception as problem:
            await websocket_bug(ws, problem)
    return endpoint_closing_on_a_bug


async def method_not_allowed(request: Request, problem: Exception) -> Response:
    """Starlette's 405, with the path's methods in ``Allow``, as the API's error body."""
    headers = dict(getattr(problem, "headers", None) or {})
    allowed = headers.get("Allow", "")
    return json(Invalid("method", "method", f"{shown(request.method)} is not a method of "
                        f"{request.url.path}; it has {allowed}").as_json(), 405, headers)


# For Starlette(exception_handlers=...): Exception is Starlette's last resort, for HTTP.
HANDLERS: dict[Any, Any] = {**dict.fromkeys(ANSWERED, refused), 405: method_not_allowed,
                            Exception: server_error}


async def handled(request: Request, problem: Exception) -> Response:
    """What ``HANDLERS`` answer for ``problem`` raised by a request's endpoint, as
    Starlette looks them up: by the nearest class the exception is an instance of."""
    handler = next(HANDLERS[kind] for kind in type(problem).__mro__ if kind in HANDLERS)
    response: Response = await handler(request, problem)
    return response
