"""Limit and sniper order bodies: what is accepted, and every refusal by field and rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.gateway.validation import Invalid, order_from, parse, validate
from shared.events import OrderRequested, encode
from shared.tokens import WSOL_MINT
from shared.waiting import execution_bound, own_bound

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
# A well-formed mint that no pool has (yet).
NEW_MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


def body(**fields: Any) -> str:
    return json.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "2", "slippage": 0.01,
                       **fields})


def accepted(raw: str) -> OrderRequested:
    return validate(parse(raw), "o-1", NOW)


def refused(raw: str) -> tuple[str, str]:
    with pytest.raises(Invalid) as caught:
        validate(parse(raw), "o-1", NOW)
    assert caught.value.message
    return caught.value.field, caught.value.rule


def test_a_limit_order_keeps_its_price_and_deadline() -> None:
    order = accepted(body(type="limit", limitPrice="160.50",
                          expiresAt="2026-11-28T12:00:00+01:00"))
    assert order.order_type == "limit" and order.move == "OrderRequested:waiting"
    assert order.limit_price == "160.5"
    assert order.expires_at == datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    ttl = accepted(body(type="limit", limitPrice=160, ttlSeconds=90))
    assert ttl.expires_at == NOW + timedelta(seconds=90)


def test_a_limit_order_without_a_deadline_waits_until_cancelled() -> None:
    order = accepted(body(type="limit", limitPrice=160))
    assert "expiresAt" not in json.loads(encode(order))


@pytest.mark.parametrize(("fields", "field", "rule"), [
    ({"type": "limit"}, "limitPrice", "required"),
    ({"type": "limit", "limitPrice": 0}, "limitPrice", "positive"),
    ({"type": "limit", "limitPrice": -3}, "limitPrice", "positive"),
    ({"type": "limit", "limitPrice": "NaN"}, "limitPrice", "finite"),
    ({"type": "limit", "limitPrice": "1e40"}, "limitPrice", "range"),
    ({"type": "limit", "limitPrice": "cheap"}, "limitPrice", "type"),
    ({"type": "limit", "limitPrice": 1, "expiresAt": "tomorrow"}, "expiresAt", "datetime"),
    ({"type": "limit", "limitPrice": 1, "expiresAt": "2026-11-28T12:00:00"},
     "expiresAt", "datetime"),
    ({"type": "limit", "limitPrice": 1, "expiresAt": "2026-11-27T11:00:00Z"},
     "expiresAt", "past"),
    ({"type": "limit", "limitPrice": 1, "expiresAt": "2027-01-27T11:00:00Z"},
     "expiresAt", "max"),
    ({"type": "limit", "limitPrice": 1, "ttlSeconds": 0}, "ttlSeconds", "range"),
    ({"type": "limit", "limitPrice": 1, "ttlSeconds": 31 * 86400}, "ttlSeconds", "range"),
    ({"type": "limit", "limitPrice": 1, "ttlSeconds": 60,
      "expiresAt": "2026-11-28T12:00:00Z"}, "expiresAt", "exclusive"),
    ({"type": "limit", "limitPrice": 1, "maxPrice": 2}, "maxPrice", "unknown_field"),
    ({"limitPrice": 1}, "limitPrice", "unknown_field"),
    ({"ttlSeconds": 60}, "ttlSeconds", "unknown_field"),
    ({"type": "sniper", "limitPrice": 1}, "limitPrice", "unknown_field"),
    ({"type": "sniper", "maxPrice": 0}, "maxPrice", "positive"),
    ({"type": "limit", "limitPrice": 1, "tokenOut": NEW_MINT}, "tokenOut", "unknown_token"),
    ({"tokenOut": NEW_MINT}, "tokenOut", "unknown_token"),
    ({"type": "sniper", "tokenOut": "NOTAMINT"}, "tokenOut", "mint"),
    ({"type": "sniper", "tokenOut": "0OIl" * 11}, "tokenOut", "mint"),
    ({"type": "sniper", "tokenOut": WSOL_MINT}, "tokenOut", "distinct_tokens"),
    ({"type": "sniper", "tokenIn": NEW_MINT, "tokenOut": "USDC"}, "tokenIn", "unknown_token"),
])
def test_waiting_order_refusals_name_the_field_and_the_rule(
        fields: dict[str, Any], field: str, rule: str) -> None:
    assert refused(body(**fields)) == (field, rule)


def test_a_sniper_may_wait_for_a_mint_no_pool_has_yet() -> None:
    order = accepted(body(type="sniper", tokenOut=NEW_MINT, maxPrice="0.002", ttlSeconds=600))
    assert order.order_type == "sniper" and order.token_out == NEW_MINT
    assert order.max_price == "0.002" and order.expires_at == NOW + timedelta(seconds=600)
    # A listed token is named by its symbol, as for any order.
    assert accepted(body(type="sniper", tokenOut="bonk")).token_out == "BONK"


def test_market_orders_read_as_before() -> None:
    order = order_from(body(), "o-1")
    assert order.order_type == "market" and order.move == "OrderRequested"
    assert not order.is_waiting


def test_the_bound_is_the_larger_of_the_limit_and_the_quote_less_slippage() -> None:
    order = accepted(body(type="limit", limitPrice="150.25"))
    # 2 SOL x 150.25 USDC = 300.5 USDC, in USDC base units.
    assert own_bound(order) == 300_500_000
    assert execution_bound(order, 290_000_000) == 300_500_000
    assert execution_bound(order, 310_000_000) == 310_000_000
    sniper = accepted(body(type="sniper", tokenOut="USDC", maxPrice="0.008"))
    # At most 0.008 SOL per USDC: 2 SOL buys at least 250 USDC.
    assert own_bound(sniper) == 250_000_000
    unknown = accepted(body(type="sniper", tokenOut=NEW_MINT, maxPrice="0.008"))
    assert own_bound(unknown) == 0
