"""Every parameter a client sends the gateway, of each kind (query, path, header, body,
WebSocket message), is checked before anything reaches Redis or PostgreSQL: NUL bytes,
over-long strings, text that was bad UTF-8 (as Starlette decodes it), numbers out of range
and made-up cursors each get a refusal naming the field and the rule.

The last tests send them through the real route table, with parts that fail the test as
soon as anything would reach a store."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from services.gateway.app import create_app
from services.gateway.idempotency import is_valid_key
from services.gateway.queries import instant, is_order_id, page_asked
from services.gateway.session import position
from services.gateway.validation import Invalid, order_from, quote_request, submit_message
from shared.accounts import Account, parse_key
from shared.config import Settings
from shared.positions import Positions, StreamId

ORDER_ID = "01a21435-0000-7000-8000-000000000000"
OPERATOR = Account("ops", "operator")
TRADER = Account("alice", "trader")
# What a client may smuggle into text: a NUL byte, a very long string, and what bad UTF-8
# becomes once decoded (U+FFFD in a URL, Latin-1 in a header). A lone surrogate cannot
# arrive: JSON that escapes one is refused whole, and a WebSocket text frame is UTF-8.
HOSTILE_TEXT = ["\x00", "a\x00b", "x" * 100_000, "\ufffd(", "Ã("]
BAD_NUMBERS = ["-1", "0", "501", "1e3", "9" * 5000, "1.5", "", "\x00", "NaN", "inf"]


def refused(call: Any, *args: Any) -> Invalid:
    with pytest.raises(Invalid) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_text_in_every_query_parameter_of_a_page_is_refused(text: str) -> None:
    for name, rule in (("status", "status"), ("before", "cursor"), ("limit", "range")):
        invalid = refused(page_asked, {name: text}, OPERATOR)
        assert (invalid.field, invalid.rule) == (name, rule)
    invalid = refused(page_asked, {"account": text}, OPERATOR)
    assert (invalid.field, invalid.rule) == ("account", "account")
    # A trader may name only itself: any other account is refused before its form.
    invalid = refused(page_asked, {"account": text}, TRADER)
    assert (invalid.field, invalid.rule) == ("account", "operator_only")


@pytest.mark.parametrize("limit", BAD_NUMBERS)
def test_a_page_size_out_of_range_is_refused(limit: str) -> None:
    invalid = refused(page_asked, {"limit": limit}, OPERATOR)
    assert (invalid.field, invalid.rule) == ("limit", "range")


@pytest.mark.parametrize("cursor", [
    ORDER_ID[:-1], ORDER_ID + "0", ORDER_ID.replace("-", ""), "{" + ORDER_ID + "}",
    "urn:uuid:" + ORDER_ID, "-" * 10_000 + ORDER_ID.replace("-", ""), "not-a-cursor",
])
def test_a_cursor_that_no_page_gave_is_refused(cursor: str) -> None:
    invalid = refused(page_asked, {"before": cursor}, OPERATOR)
    assert (invalid.field, invalid.rule) == ("before", "cursor")


def test_a_good_page_query_is_taken_as_asked() -> None:
    asked = {"status": "open", "limit": "500", "before": ORDER_ID.upper(), "account": "bob"}
    page = page_asked(asked, OPERATOR)
    assert (page.status, page.limit, page.before, page.account) == (
        "open", 500, ORDER_ID, "bob")
    assert page_asked({}, TRADER).account == "alice"
    assert page_asked({}, OPERATOR).account is None


@pytest.mark.parametrize("text", [*HOSTILE_TEXT, ORDER_ID.replace("-", ""), ORDER_ID + " "])
def test_only_an_order_id_in_its_text_form_names_an_order(text: str) -> None:
    assert not is_order_id(text)
    assert is_order_id(ORDER_ID)


@pytest.mark.parametrize("text", [*HOSTILE_TEXT, "2026-11-27T10:00:00", "yesterday"])
def test_as_of_must_be_a_time_with_its_offset(text: str) -> None:
    invalid = refused(instant, text)
    assert (invalid.field, invalid.rule) == ("asOf", "datetime")


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_text_in_a_quote_is_refused(text: str) -> None:
    query = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
    for field in ("tokenIn", "tokenOut", "amount", "slippage"):
        invalid = refused(quote_request, {**query, field: text})
        assert invalid.field == field
        assert len(invalid.message) < 1000  # a long text is not echoed whole


@pytest.mark.parametrize("amount", ["1e999999999", "-1", "0", "1e-999999999", "NaN"])
def test_a_quote_of_an_amount_out_of_range_is_refused(amount: str) -> None:
    query = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": amount}
    assert refused(quote_request, query).field == "amount"


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_text_in_a_header_is_never_a_key(text: str) -> None:
    assert not is_valid_key(text) or text == "Ã("  # Latin-1 is not printable ASCII
    assert parse_key(text) is None


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_text_in_a_body_or_message_is_refused(text: str) -> None:
    order = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5", "slippage": 0.01}
    for field in ("tokenIn", "tokenOut", "amount", "slippage", "type", "expiresAt"):
        body = json.dumps({**order, field: text})
        assert refused(order_from, body, ORDER_ID).field == field
        assert refused(submit_message, body, ORDER_ID).field == field
    invalid = refused(submit_message, json.dumps({**order, "idempotencyKey": 7}), ORDER_ID)
    assert invalid.field == "idempotencyKey"


@pytest.mark.parametrize("raw", [b'{"tokenIn": "\xc3\x28"}', b"\xff\xfe",
                                 b'{"tokenIn": "\\udcff"}'])
def test_a_body_of_bad_utf8_or_raw_control_bytes_is_malformed_json(raw: bytes) -> None:
    invalid = refused(order_from, raw, ORDER_ID)
    assert (invalid.field, invalid.rule) == ("body", "json")


@pytest.mark.parametrize("after", [
    *HOSTILE_TEXT, "-1", "1-2-3", f"{2**63}-0", f"0-{2**63}", "9" * 5000,
    Positions((StreamId(2**63, 0), StreamId(2**63, 1))).token(),
])
def test_a_position_the_gateway_did_not_hand_out_is_refused(after: str) -> None:
    invalid = refused(position, after, 2)
    assert (invalid.field, invalid.rule) == ("after", "position")


def test_a_position_the_gateway_handed_out_is_taken() -> None:
    handed = Positions((StreamId(1_700_000_000_000, 3), StreamId(1_700_000_000_001, 0)))
    assert position(handed.token(), 2) == handed


# --- through the route table -------------------------------------------------------------


class Untouchable:
    """Redis or PostgreSQL: any use fails the test."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"{self.name}.{attribute} reached with bad input")


def client_of(account: Account = OPERATOR) -> TestClient:
    async def authenticated(key: str | None) -> Account:
        return account

    async def fresh() -> None:
        return None

    async def now() -> Positions:
        return Positions.origin(1)

    untouchable = Untouchable("a store")

    def history_for(_: Account) -> Any:
        raise AssertionError("an order's history read with bad input")

    parts: Any = SimpleNamespace(
        settings=Settings(), auth=SimpleNamespace(account=authenticated, required=True),
        read_model=untouchable, store=untouchable, limits=untouchable,
        idempotency=untouchable, history_for=history_for,
        launches=SimpleNamespace(fresh=fresh), sockets=Counter(),
        tail=SimpleNamespace(now=now), lifespan=None,
    )
    parts.store = SimpleNamespace(partitions=[0])
    return TestClient(create_app(Settings(), parts), raise_server_exceptions=False)


NUL = "%00x"
LONG = "a" * 5000
BAD_UTF8 = "%C3%28"


@pytest.mark.parametrize("path", [
    f"/orders?account={NUL}", f"/orders?account={LONG}", f"/orders?account={BAD_UTF8}",
    f"/orders?status={NUL}", f"/orders?limit={NUL}", f"/orders?limit={'9' * 5000}",
    f"/orders?before={NUL}", f"/orders?before={'-' * 5000}",
    f"/orders/{ORDER_ID}?asOf={NUL}", f"/orders/{ORDER_ID}?asOf={LONG}",
    f"/quote?tokenIn={NUL}&tokenOut=USDC&amount=1",
    f"/quote?tokenIn=SOL&tokenOut=USDC&amount={NUL}",
    "/quote?tokenIn=SOL&tokenOut=USDC&amount=1e999999999",
])
def test_bad_query_parameters_are_400_before_any_store(path: str) -> None:
    response = client_of().get(path)
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) == {"field", "rule", "message"}


@pytest.mark.parametrize("order_id", [NUL, LONG, BAD_UTF8, ORDER_ID.replace("-", "")])
def test_a_path_that_names_no_order_is_404_before_any_store(order_id: str) -> None:
    client = client_of()
    for method, path in (("GET", "/orders/{}"), ("GET", "/orders/{}/events"),
                         ("DELETE", "/orders/{}")):
        response = client.request(method, path.format(order_id))
        assert response.status_code == 404, response.text
        assert response.json()["error"]["rule"] == "unknown_order"
        assert len(response.text) < 1000


@pytest.mark.parametrize("key", ["a\x00b", "x" * 300, "é"])
def test_a_bad_idempotency_key_is_400_before_any_store(key: str) -> None:
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.01}
    response = client_of().post("/orders/execute", json=body,
                                headers={"Idempotency-Key": key.encode()})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["rule"] == "idempotency_key"


@pytest.mark.parametrize("body", [
    b'{"tokenIn": "SOL\\u0000", "tokenOut": "USDC", "amount": 1, "slippage": 0.01}',
    b'{"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1\\u0000", "slippage": 0.01}',
    b'{"tokenIn": "\xc3\x28", "tokenOut": "USDC", "amount": 1, "slippage": 0.01}',
    b'{"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1e999, "slippage": 0.01}',
    b'{"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.01, '
    b'"type": "limit", "limitPrice": 1, "ttlSeconds": 99999999999999999999999}',
])
def test_a_bad_body_is_400_before_any_store(body: bytes) -> None:
    response = client_of().post("/orders/execute", content=body)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize(("path", "rule"), [
    (f"/orders/execute?orderId={NUL}", "unknown_order"),
    (f"/orders/execute?orderId={LONG}", "unknown_order"),
    (f"/orders/stream?after={NUL}", "position"),
    (f"/orders/stream?after={'9' * 5000}", "position"),
])
def test_a_bad_websocket_parameter_closes_1008_with_a_reason(path: str, rule: str) -> None:
    with client_of().websocket_connect(path, headers={"x-api-key": "k"}) as ws:
        assert ws.receive_json()["error"]["rule"] == rule
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008
    assert rule in closed.value.reason


def test_a_bad_websocket_message_closes_1008_with_a_reason() -> None:
    with client_of().websocket_connect("/orders/execute", headers={"x-api-key": "k"}) as ws:
        ws.send_text(json.dumps({"tokenIn": "SOL\x00", "tokenOut": "USDC", "amount": 1,
                                 "slippage": 0.01}))
        assert ws.receive_json()["error"]["rule"] == "unknown_token"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008 and closed.value.reason == "tokenIn: unknown_token"


def looks_counted() -> tuple[TestClient, list[None]]:
    """A client whose gateway counts its looks at the launches stream."""
    client, looks = client_of(), []

    async def fresh() -> None:
        looks.append(None)

    client.app.state.parts.launches = SimpleNamespace(fresh=fresh)  # type: ignore[attr-defined]
    return client, looks


def test_an_order_of_listed_tokens_is_checked_without_a_look_at_launches() -> None:
    client, looks = looks_counted()
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 5}
    response = client.post("/orders/execute", json=body)
    assert response.status_code == 400 and response.json()["error"]["rule"] == "range"
    assert looks == []


def test_an_order_naming_a_token_not_known_looks_at_launches_first() -> None:
    client, looks = looks_counted()
    body = {"tokenIn": "SOL", "tokenOut": "NOTLAUNCHED", "amount": 0.5, "slippage": 0.01}
    response = client.post("/orders/execute", json=body)
    assert response.status_code == 400 and response.json()["error"]["rule"] == "unknown_token"
    assert looks == [None]
