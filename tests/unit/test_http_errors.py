"""oee_http_errors_total: every HTTP answer of the gateway's exception handlers counted once
by its status code (what the 5xx alert divides), a success and a WebSocket's close not."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from redis import exceptions as redis_errors
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.gateway.errors import HANDLERS, guarded, refusal
from services.gateway.validation import Invalid


def counted(code: int) -> float:
    return REGISTRY.get_sample_value("oee_http_errors_total", {"code": str(code)}) or 0.0


def client_of(problem: Exception | None) -> TestClient:
    async def endpoint(request: Request) -> Response:
        if problem is None:
            return PlainTextResponse("ok")
        raise problem

    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        if problem is not None:
            raise problem

    app = Starlette(routes=[Route("/", endpoint), WebSocketRoute("/ws", guarded(socket))],
                    exception_handlers=HANDLERS)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("problem", "code"), [
    (Invalid("amount", "positive", "amount must be positive"), 400),
    (refusal(429, "x-api-key", "rate_limited", "slow down", {"Retry-After": "1"}), 429),
    (redis_errors.ConnectionError("Connection refused"), 503),
    (RuntimeError("a bug"), 500),
], ids=["400", "429", "503", "500"])
def test_an_error_answer_is_counted_once_by_its_code(problem: Exception, code: int) -> None:
    client = client_of(problem)
    before = {c: counted(c) for c in (400, 429, 500, 503)}
    assert client.get("/").status_code == code
    assert {c: counted(c) - before[c] for c in before} == {
        c: 1.0 if c == code else 0.0 for c in before}
    with client.websocket_connect("/ws") as ws, pytest.raises(WebSocketDisconnect):
        while True:
            ws.receive_json()
    assert counted(code) - before[code] == 1.0


def test_a_success_is_not_counted() -> None:
    before = {c: counted(c) for c in (400, 429, 500, 503)}
    assert client_of(None).get("/").status_code == 200
    assert {c: counted(c) for c in before} == before
