"""services/gateway/app.py ``Gateway``: POST /orders/execute goes straight to its endpoint,
and is answered exactly as through Starlette's middleware and route matching."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from services.gateway.app import Gateway
from tests.unit.test_gateway_input import client_of

ORDER = b'{"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.01}'


def through_starlette(app: Gateway) -> Any:
    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        await Starlette.__call__(app, scope, receive, send)
    return asgi


def both_ways(**request: Any) -> tuple[Any, Any]:
    straight = client_of()
    app = straight.app
    assert isinstance(app, Gateway)
    if request.pop("keyless", False):
        async def nobody(key: str | None) -> None:
            return None
        app.state.parts.auth.account = nobody
    stacked = TestClient(through_starlette(app), raise_server_exceptions=False)
    return (straight.post("/orders/execute", **request),
            stacked.post("/orders/execute", **request))


def headers_of(response: Any) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name != "date"}


@pytest.mark.parametrize("request_", [
    {"content": b"{"},
    {"content": b'{"tokenIn": "SOL", "extra": 1}'},
    {"content": ORDER.replace(b"0.5", b"-1")},
    {"content": b"x" * 20_000},
    {"content": ORDER, "headers": {"Idempotency-Key": "a\x00b"}},
    {"content": ORDER, "keyless": True},
], ids=["json", "unknown_field", "positive", "size", "idempotency_key", "unauthorized"])
def test_a_refused_submit_is_answered_as_through_starlette(request_: dict[str, Any]) -> None:
    straight, stacked = both_ways(**request_)
    assert 400 <= straight.status_code < 500
    assert straight.status_code == stacked.status_code
    assert headers_of(straight) == headers_of(stacked)
    assert straight.content == stacked.content


def test_a_bug_behind_a_submit_is_a_500_as_through_starlette() -> None:
    # The stores of these parts fail the test's way when reached: a valid order reaches them.
    straight, stacked = both_ways(content=ORDER)
    assert straight.status_code == stacked.status_code == 500
    for answer in (straight, stacked):
        error = answer.json()["error"]
        assert error["rule"] == "internal" and len(error["errorId"]) == 16


def test_a_submit_does_not_pass_through_starlettes_layers() -> None:
    client = client_of()
    reached: list[str] = []

    async def stack(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(f"{scope['method']} {scope['path']}")
        await Response(status_code=418)(scope, receive, send)

    client.app.middleware_stack = stack  # type: ignore[attr-defined]
    assert client.post("/orders/execute", content=b"{").status_code == 400
    assert client.get("/orders/execute").status_code == 418
    assert client.get("/healthz").status_code == 418
    assert reached == ["GET /orders/execute", "GET /healthz"]
