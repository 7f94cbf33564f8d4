"""services/gateway/validation.py: an order body becomes an OrderRequested or a refusal
that names the field and the rule."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.validation import (
    ErrorBody,
    Invalid,
    order_from,
    parse,
    submit_message,
    validate,
)
from shared.events import OrderRequested
from shared.tokens import TOKENS, get

ORDER_ID = "order-1"
_DROP = object()


def body(**overrides: Any) -> str:
    fields: dict[str, Any] = {
        "tokenIn": "SOL",
        "tokenOut": "USDC",
        "amount": 0.5,
        "slippage": 0.01,
    }
    fields.update(overrides)
    return json.dumps({k: v for k, v in fields.items() if v is not _DROP})


def refusal(raw: str | bytes) -> Invalid:
    with pytest.raises(Invalid) as caught:
        order_from(raw, ORDER_ID)
    return caught.value


# --- accepted orders ---------------------------------------------------------------------


def test_valid_sol_to_usdc_order() -> None:
    order = order_from(body(), ORDER_ID)
    assert isinstance(order, OrderRequested)
    assert order.order_id == ORDER_ID
    assert order.seq == 1
    assert order.token_in == "SOL"
    assert order.token_out == "USDC"
    assert order.amount_in == 500_000_000
    assert order.amount == "0.5"
    assert isinstance(order.slippage, float)
    assert order.slippage == 0.01
    assert order.order_type == "market"
    assert order.status == "pending"


def test_bytes_body_is_accepted() -> None:
    assert order_from(body().encode(), ORDER_ID).amount_in == 500_000_000


def test_explicit_market_type_is_accepted() -> None:
    assert order_from(body(type="market"), ORDER_ID).order_type == "market"


def test_lower_case_symbols_are_normalised() -> None:
    order = order_from(body(tokenIn="sol", tokenOut="usdc"), ORDER_ID)
    assert (order.token_in, order.token_out) == ("SOL", "USDC")


def test_mixed_case_symbol_is_normalised() -> None:
    assert order_from(body(tokenOut="UsDt"), ORDER_ID).token_out == "USDT"


def test_token_by_mint_address() -> None:
    order = order_from(
        body(tokenIn=get("SOL").mint, tokenOut=get("USDC").mint), ORDER_ID
    )
    assert (order.token_in, order.token_out) == ("SOL", "USDC")


def test_amount_as_decimal_string() -> None:
    order = order_from(body(amount="0.5"), ORDER_ID)
    assert order.amount_in == 500_000_000
    assert order.amount == "0.5"


def test_amount_as_json_number_is_exact() -> None:
    # 0.1 has no exact binary float; the JSON text must be read as a decimal.
    assert order_from(body(amount=0.1), ORDER_ID).amount_in == 100_000_000


def test_integer_amount() -> None:
    order = order_from(body(amount=2), ORDER_ID)
    assert order.amount_in == 2_000_000_000
    assert order.amount == "2"


def test_amount_text_is_normalised_for_audit() -> None:
    assert order_from(body(amount="0.50000"), ORDER_ID).amount == "0.5"
    assert order_from(body(amount="1E+2"), ORDER_ID).amount == "100"


def test_slippage_as_string() -> None:
    assert order_from(body(slippage="0.02"), ORDER_ID).slippage == 0.02


def test_parse_then_validate_is_order_from() -> None:
    parsed = parse(body())
    assert parsed.token_in == "SOL"
    assert parsed.amount == Decimal("0.5")
    assert parsed.type == "market"
    direct = order_from(body(), ORDER_ID)
    via = validate(parsed, ORDER_ID)
    assert (via.token_in, via.token_out, via.amount_in, via.slippage, via.id) == (
        direct.token_in,
        direct.token_out,
        direct.amount_in,
        direct.slippage,
        direct.id,
    )


# --- refusals: the body itself -------------------------------------------------------------


@pytest.mark.parametrize("raw", ["{", "", "not json", '{"tokenIn": "SOL",}', b"\xff\xfe"])
def test_malformed_json(raw: str | bytes) -> None:
    error = refusal(raw)
    assert (error.field, error.rule) == ("body", "json")


@pytest.mark.parametrize("raw", ["[]", '"x"', "42", "null", "true"])
def test_json_that_is_not_an_object(raw: str) -> None:
    error = refusal(raw)
    assert error.field == "body"
    assert error.rule == "object"


@pytest.mark.parametrize("field", ["tokenIn", "tokenOut", "amount", "slippage"])
def test_missing_field(field: str) -> None:
    error = refusal(body(**{field: _DROP}))
    assert (error.field, error.rule) == (field, "required")
    assert field in error.message


def test_unknown_field() -> None:
    error = refusal(body(side="buy"))
    assert (error.field, error.rule) == ("side", "unknown_field")
    assert "side" in error.message


def test_snake_case_field_name_is_unknown() -> None:
    raw = json.dumps({"token_in": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.01})
    error = refusal(raw)
    assert error.rule in {"unknown_field", "required"}
    assert error.field in {"token_in", "tokenIn"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", [1]),
        ("amount", {"value": 1}),
        ("amount", True),
        ("amount", None),
        ("slippage", [0.01]),
        ("tokenIn", 5),
        ("tokenOut", None),
        ("type", 1),
    ],
)
def test_wrong_type(field: str, value: object) -> None:
    error = refusal(body(**{field: value}))
    assert (error.field, error.rule) == (field, "type")


def test_non_numeric_amount_string_is_a_type_error() -> None:
    error = refusal(body(amount="half"))
    assert (error.field, error.rule) == ("amount", "type")


# --- refusals: tokens ----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["tokenIn", "tokenOut"])
def test_unknown_token(field: str) -> None:
    error = refusal(body(**{field: "DOGE"}))
    assert (error.field, error.rule) == (field, "unknown_token")
    assert "DOGE" in error.message
    # The message lists what is known.
    assert all(t.symbol in error.message for t in TOKENS)


def test_empty_token_is_unknown() -> None:
    error = refusal(body(tokenIn=""))
    assert (error.field, error.rule) == ("tokenIn", "unknown_token")


def test_lower_cased_mint_address_is_unknown() -> None:
    error = refusal(body(tokenOut=get("USDC").mint.lower()))
    assert (error.field, error.rule) == ("tokenOut", "unknown_token")


@pytest.mark.parametrize(
    ("token_in", "token_out"),
    [("SOL", "SOL"), ("usdc", "USDC"), ("SOL", get("SOL").mint)],
)
def test_same_token_in_and_out(token_in: str, token_out: str) -> None:
    error = refusal(body(tokenIn=token_in, tokenOut=token_out))
    assert (error.field, error.rule) == ("tokenOut", "distinct_tokens")


# --- refusals: amount ----------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, 0.0, "0", "-0", -1, -0.5, "-0.000001"])
def test_amount_not_positive(amount: object) -> None:
    error = refusal(body(amount=amount))
    assert (error.field, error.rule) == ("amount", "positive")


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "inf", "sNaN"])
def test_amount_not_finite(amount: str) -> None:
    error = refusal(body(amount=amount))
    assert (error.field, error.rule) == ("amount", "finite")


def test_too_many_decimals_for_usdc() -> None:
    error = refusal(body(tokenIn="USDC", tokenOut="SOL", amount=0.0000001))
    assert (error.field, error.rule) == ("amount", "decimals")
    assert "USDC" in error.message
    assert "6" in error.message


def test_smallest_usdc_unit_is_fine() -> None:
    order = order_from(body(tokenIn="USDC", tokenOut="SOL", amount=0.000001), ORDER_ID)
    assert order.amount_in == 1


def test_trailing_zeros_do_not_count_as_decimals() -> None:
    order = order_from(body(tokenIn="USDC", tokenOut="SOL", amount="1.500000000000"), ORDER_ID)
    assert order.amount_in == 1_500_000


def test_too_many_decimals_for_sol() -> None:
    error = refusal(body(amount="0.0000000001"))
    assert (error.field, error.rule) == ("amount", "decimals")
    assert order_from(body(amount="0.000000001"), ORDER_ID).amount_in == 1


def test_largest_u64_amount_is_accepted() -> None:
    order = order_from(body(amount="18446744073.709551615"), ORDER_ID)
    assert order.amount_in == 2**64 - 1


def test_amount_beyond_u64_base_units() -> None:
    error = refusal(body(amount="18446744073.709551616"))
    assert (error.field, error.rule) == ("amount", "max")


def test_huge_amount_is_max() -> None:
    error = refusal(body(amount=1e30))
    assert (error.field, error.rule) == ("amount", "max")


@pytest.mark.parametrize(
    "amount", ["1.0000000000000000000000000001", "0.99999999999999999999999999999"]
)
def test_amount_beyond_decimal_precision_is_refused(amount: str) -> None:
    error = refusal(body(amount=amount))
    assert (error.field, error.rule) == ("amount", "decimals")


def test_underflowing_amount_is_refused() -> None:
    error = refusal(body(amount="1e-999999999"))
    assert (error.field, error.rule) == ("amount", "decimals")


@pytest.mark.parametrize("raw_amount", ['"1e999999999"', "1e999999999"])
def test_overflowing_amount_is_refused(raw_amount: str) -> None:
    raw = '{"tokenIn":"SOL","tokenOut":"USDC","amount":' + raw_amount + ',"slippage":0.01}'
    error = refusal(raw)
    assert (error.field, error.rule) == ("amount", "max")


# --- refusals: slippage and type -----------------------------------------------------------


@pytest.mark.parametrize("slippage", [0, "0", -0.01, 0.51, "0.5000001", 1, "NaN", "Infinity"])
def test_slippage_out_of_range(slippage: object) -> None:
    error = refusal(body(slippage=slippage))
    assert (error.field, error.rule) == ("slippage", "range")


@pytest.mark.parametrize("slippage", [0.5, "0.5", 0.0001, 0.01])
def test_slippage_in_range(slippage: object) -> None:
    assert order_from(body(slippage=slippage), ORDER_ID).slippage == float(str(slippage))


def test_accepted_slippage_is_positive_as_stored() -> None:
    try:
        order = order_from(body(slippage="1e-999999999"), ORDER_ID)
    except Invalid as error:
        assert (error.field, error.rule) == ("slippage", "range")
    else:
        assert 0 < order.slippage <= 0.5


@pytest.mark.parametrize("order_type", ["stop", "twap", "MARKET", "LIMIT", ""])
def test_order_types_that_are_not_built(order_type: str) -> None:
    error = refusal(body(type=order_type))
    assert (error.field, error.rule) == ("type", "order_type")
    assert all(kind in error.message for kind in ("market", "limit", "sniper"))


def test_order_type_is_checked_before_tokens() -> None:
    error = refusal(body(type="stop", tokenIn="DOGE"))
    assert error.field == "type"


# --- the error's wire shape ----------------------------------------------------------------


def test_invalid_as_json_shape() -> None:
    error = refusal(body(tokenIn="DOGE"))
    shaped = error.as_json()
    assert list(shaped) == ["error"]
    assert set(shaped["error"]) == {"field", "rule", "message"}
    assert shaped["error"]["field"] == "tokenIn"
    assert shaped["error"]["rule"] == "unknown_token"
    assert shaped["error"]["message"] == error.message == str(error)
    json.dumps(shaped)  # serialisable as is


def test_invalid_constructed_directly() -> None:
    assert Invalid("amount", "positive", "m").as_json() == {
        "error": {"field": "amount", "rule": "positive", "message": "m"}
    }


# --- properties ----------------------------------------------------------------------------


@st.composite
def token_amounts(draw: st.DrawFn) -> tuple[str, int, str]:
    token = draw(st.sampled_from(TOKENS))
    units = draw(st.integers(min_value=1, max_value=2**64 - 1))
    text = format(token.to_decimal(units), "f")
    other = next(t for t in TOKENS if t != token)
    return token.symbol, units, json.dumps({
        "tokenIn": token.symbol, "tokenOut": other.symbol, "amount": text, "slippage": 0.01,
    })


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(token_amounts())
def test_amounts_within_token_decimals_convert_exactly(case: tuple[str, int, str]) -> None:
    symbol, units, raw = case
    order = order_from(raw, ORDER_ID)
    assert order.token_in == symbol
    assert order.amount_in == units
    assert get(symbol).to_base_units(Decimal(order.amount)) == units


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.sampled_from(TOKENS),
    st.integers(min_value=1, max_value=10**12),
    st.integers(min_value=1, max_value=4),
)
def test_one_decimal_too_many_is_always_refused(token: Any, units: int, extra: int) -> None:
    # units / 10**(decimals + extra) with a non-zero last digit has too many decimals.
    digits = units * 10 + 7
    amount = Decimal(digits).scaleb(-(token.decimals + extra))
    other = next(t for t in TOKENS if t != token)
    raw = json.dumps({
        "tokenIn": token.symbol, "tokenOut": other.symbol, "amount": str(amount),
        "slippage": 0.01,
    })
    error = refusal(raw)
    assert (error.field, error.rule) == ("amount", "decimals")


# --- the wire shapes the API document describes ------------------------------------------


def test_every_refusal_is_the_documented_error_body() -> None:
    error = refusal(body(amount="-1"))
    rendered = msgspec.convert(error.as_json(), ErrorBody)
    assert (rendered.error.field, rendered.error.rule) == ("amount", "positive")


def test_a_websocket_submit_carries_its_idempotency_key() -> None:
    order, key = submit_message(body(idempotencyKey="buy-1"), ORDER_ID)
    assert (order.amount_in, key) == (500_000_000, "buy-1")
    assert submit_message(body(), ORDER_ID)[1] is None


def test_an_http_body_has_no_idempotency_key_field() -> None:
    error = refusal(body(idempotencyKey="buy-1"))
    assert (error.field, error.rule) == ("idempotencyKey", "unknown_field")
