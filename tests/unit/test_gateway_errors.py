"""services/gateway/errors.py: each kind of error answered once, by type, over HTTP and
WebSocket alike: a refusal its 4xx (1008), a dependency down 503 (1011), a bug 500 (1011)
with an error id that the log line, with its traceback, carries too."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import cast

import psycopg
import pytest
from psycopg_pool import PoolTimeout
from redis import exceptions as redis_errors
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.gateway.errors import HANDLERS, guarded, refusal
from services.gateway.guard import MessageGuard
from services.gateway.parts import Parts
from services.gateway.session import stream_to
from services.gateway.validation import Invalid


def app_raising(problem: Exception) -> TestClient:
    async def endpoint(request: Request) -> Response:
        raise problem

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        raise problem

    async def streaming(ws: WebSocket) -> None:
        """Raises while statuses are sent, in the task that sends them."""
        await ws.accept()

        async def statuses() -> None:
            raise problem

        parts = SimpleNamespace(going_away=asyncio.Event(), subscriptions={})
        await stream_to(cast(Parts, parts), ws, statuses(), MessageGuard())

    app = Starlette(routes=[Route("/", endpoint), WebSocketRoute("/ws", guarded(socket)),
                            WebSocketRoute("/streaming", guarded(streaming))],
                    exception_handlers=HANDLERS)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(params=["/ws", "/streaming"])
def path(request: pytest.FixtureRequest) -> str:
    """Raised by the endpoint itself, or while it streams statuses."""
    return str(request.param)


def closed(client: TestClient, path: str) -> tuple[list[object], int, str]:
    """What the WebSocket sent before it closed, its close code and reason."""
    sent: list[object] = []
    with client.websocket_connect(path) as ws, pytest.raises(WebSocketDisconnect) as end:
        while True:
            sent.append(ws.receive_json())
    return sent, end.value.code, end.value.reason


@pytest.mark.parametrize(("problem", "status", "rule"), [
    (Invalid("limit", "range", "limit must be from 1 to 500"), 400, "range"),
    (refusal(409, "orderId", "not_open", "not open"), 409, "not_open"),
    (refusal(429, "x-api-key", "rate_limited", "slow down", {"Retry-After": "3"}), 429,
     "rate_limited"),
])
def test_a_refusal_is_its_status_and_error_body(problem: Exception, status: int,
                                                rule: str, path: str) -> None:
    client = app_raising(problem)
    response = client.get("/")
    assert response.status_code == status
    assert response.json()["error"]["rule"] == rule
    assert set(response.json()["error"]) == {"field", "rule", "message"}
    if status == 429:
        assert response.headers["retry-after"] == "3"
    sent, code, reason = closed(client, path)
    assert (sent, code) == ([response.json()], 1008)
    assert reason.endswith(rule)


DOWN: list[Callable[[], Exception]] = [
    lambda: redis_errors.ConnectionError("Connection refused"),
    lambda: redis_errors.TimeoutError("Timeout reading"),
    lambda: redis_errors.BusyLoadingError("loading"),
    lambda: redis_errors.ClusterDownError("CLUSTERDOWN"),
    lambda: redis_errors.MasterDownError("MASTERDOWN"),
    lambda: redis_errors.TryAgainError("TRYAGAIN"),
    lambda: redis_errors.SlotNotCoveredError("slot"),
    lambda: psycopg.OperationalError("connection refused"),
    lambda: PoolTimeout("couldn't get a connection after 2.00 sec"),
]


@pytest.mark.parametrize("make", DOWN)
def test_a_dependency_down_is_503_by_its_type(make: Callable[[], Exception],
                                              path: str) -> None:
    client = app_raising(make())
    response = client.get("/")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert (error["field"], error["rule"]) == ("service", "unavailable")
    sent, code, _ = closed(client, path)
    assert (sent, code) == ([response.json()], 1011)


@pytest.mark.parametrize("make", [
    lambda: RuntimeError("a bug"),
    lambda: KeyError("order_id"),
    # Not an outage: Redis answered, and refused what the engine sent it.
    lambda: redis_errors.ResponseError("WRONGTYPE"),
    lambda: psycopg.errors.UndefinedTable("no table"),
])
def test_a_bug_is_500_with_the_error_id_of_its_log_line(
    make: Callable[[], Exception], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    client = app_raising(make())
    with caplog.at_level(logging.ERROR, logger="oee.gateway"):
        response = client.get("/")
    assert response.status_code == 500
    error = response.json()["error"]
    assert (error["field"], error["rule"]) == ("service", "internal")
    [record] = [r for r in caplog.records if r.name == "oee.gateway"]
    assert error["errorId"] in record.getMessage() and error["errorId"] in error["message"]
    assert record.exc_info is not None  # the traceback goes with it

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="oee.gateway"):
        sent, code, reason = closed(client, path)
    assert (sent, code) == ([], 1011)
    [record] = [r for r in caplog.records if r.name == "oee.gateway"]
    error_id = reason.rsplit(" ", 1)[-1]
    assert len(error_id) == 16 and error_id in record.getMessage()
    assert record.exc_info is not None
    assert error_id != error["errorId"]
