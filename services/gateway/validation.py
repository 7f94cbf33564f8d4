"""Turning a client's order body into an OrderRequested, or a clear refusal. No I/O here.

Every refusal names the field and the rule it broke, so a client can fix its request
without reading our code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, localcontext
from typing import Annotated

import msgspec

from shared.events import OrderRequested
from shared.tokens import TOKENS, Token, find

ORDER_TYPES = ("market",)
MAX_SLIPPAGE = Decimal("0.5")
# Solana token amounts are u64 base units.
MAX_BASE_UNITS = 2**64 - 1


class ErrorDetail(msgspec.Struct):
    field: Annotated[str, msgspec.Meta(description="The field, header or parameter at fault")]
    rule: Annotated[str, msgspec.Meta(description="The rule it broke, stable for programs")]
    message: Annotated[str, msgspec.Meta(description="For people; may change")]


class ErrorBody(msgspec.Struct):
    """Every refusal, over HTTP and WebSocket alike."""

    error: ErrorDetail


class Invalid(Exception):
    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field, self.rule, self.message = field, rule, message

    def as_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"field": self.field, "rule": self.rule, "message": self.message}}


class OrderBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """The wire shape of an order; amounts may be JSON numbers or decimal strings."""

    token_in: Annotated[str, msgspec.Meta(
        description="Symbol (any case) or mint address", examples=["SOL"])]
    token_out: Annotated[str, msgspec.Meta(
        description="Symbol (any case) or mint address", examples=["USDC"])]
    amount: Annotated[Decimal, msgspec.Meta(
        description="tokenIn amount in decimal token units (0.5 SOL, not lamports)",
        examples=[0.5])]
    slippage: Annotated[Decimal, msgspec.Meta(
        description="Tolerated shortfall from the quote, a fraction in (0, 0.5]",
        examples=[0.01])]
    type: Annotated[str, msgspec.Meta(description="Order type; only market is built")] = "market"


_decoder = msgspec.json.Decoder(OrderBody)
_FIELD = re.compile(r"`\$\.([A-Za-z_]+)")
_NAMED = re.compile(r"field `([^`]+)`")


def _explain(error: msgspec.ValidationError) -> Invalid:
    text = str(error)
    if "missing required field" in text:
        field = _NAMED.search(text)
        name = field.group(1) if field else "body"
        return Invalid(name, "required", f"{name} is required")
    if "unknown field" in text:
        field = _NAMED.search(text)
        name = field.group(1) if field else "body"
        return Invalid(name, "unknown_field", f"{name} is not a field of an order")
    field = _FIELD.search(text)
    if field is None:
        return Invalid("body", "object", "the body must be a JSON object with the order's fields")
    return Invalid(field.group(1), "type", text.split(" - at ")[0])


def parse(body: bytes | str) -> OrderBody:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as error:
        raise _explain(error) from None
    except msgspec.DecodeError as error:
        raise Invalid("body", "json", f"the body is not valid JSON: {error}") from None


def _token(field: str, name: str) -> Token:
    token = find(name)
    if token is None:
        known = ", ".join(t.symbol for t in TOKENS)
        raise Invalid(field, "unknown_token", f"unknown token {name!r}; known tokens: {known}")
    return token


def decimal_places(amount: Decimal) -> int:
    """Places after the point, ignoring trailing zeros; exact for any exponent (unlike
    ``normalize``, which rounds to the context's precision)."""
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    significant = "".join(map(str, digits)).rstrip("0")
    return max(0, -(exponent + len(digits) - len(significant)))


def _base_units(amount: Decimal, token: Token) -> int:
    if not amount.is_finite():
        raise Invalid("amount", "finite", "amount must be a finite number")
    if amount <= 0:
        raise Invalid("amount", "positive", "amount must be greater than 0")
    if decimal_places(amount) > token.decimals:
        raise Invalid(
            "amount",
            "decimals",
            f"{token.symbol} has {token.decimals} decimals; amount {amount} has more",
        )
    # u64 base units have at most 20 digits: anything longer is refused before any arithmetic.
    units = MAX_BASE_UNITS + 1
    if amount.adjusted() + token.decimals < 20:
        with localcontext(prec=60):
            units = token.to_base_units(amount)
    if units > MAX_BASE_UNITS:
        raise Invalid("amount", "max", f"amount is larger than a {token.symbol} account holds")
    return units


def validate(body: OrderBody, order_id: str) -> OrderRequested:
    if body.type not in ORDER_TYPES:
        raise Invalid(
            "type",
            "order_type",
            f"order type {body.type!r} is not supported; supported types: "
            + ", ".join(ORDER_TYPES),
        )
    token_in = _token("tokenIn", body.token_in)
    token_out = _token("tokenOut", body.token_out)
    if token_in == token_out:
        raise Invalid("tokenOut", "distinct_tokens", "tokenIn and tokenOut must differ")
    amount_in = _base_units(body.amount, token_in)
    # Checked as the float the engine computes with, so a tiny value cannot become 0.
    if not (body.slippage.is_finite() and 0 < float(body.slippage) <= MAX_SLIPPAGE):
        raise Invalid("slippage", "range", f"slippage must be in (0, {MAX_SLIPPAGE}], a fraction")
    return OrderRequested(
        order_id=order_id,
        seq=1,
        token_in=token_in.symbol,
        token_out=token_out.symbol,
        amount_in=amount_in,
        amount=format(token_in.to_decimal(amount_in).normalize(), "f"),
        slippage=float(body.slippage),
        order_type="market",
    )


def order_from(body: bytes | str, order_id: str) -> OrderRequested:
    return validate(parse(body), order_id)


def quote_request(params: Mapping[str, str]) -> OrderRequested:
    """GET /quote's query, checked by the same rules as an order; slippage defaults to 1%."""
    fields = {"slippage": "0.01", **params}
    try:
        body = msgspec.convert(fields, OrderBody)
    except msgspec.ValidationError as error:
        raise _explain(error) from None
    return validate(body, order_id="quote")


class SubmitMessage(OrderBody, forbid_unknown_fields=True, rename="camel"):
    """An order sent over WebSocket: the POST body, plus the Idempotency-Key header's
    value, since a WebSocket message has no headers."""

    idempotency_key: str | None = None


_submit_decoder = msgspec.json.Decoder(SubmitMessage)


def submit_message(text: bytes | str, order_id: str) -> tuple[OrderRequested, str | None]:
    """The order in a WebSocket submit message, and its idempotency key if any."""
    try:
        message = _submit_decoder.decode(text)
    except msgspec.ValidationError as error:
        raise _explain(error) from None
    except msgspec.DecodeError as error:
        raise Invalid("body", "json", f"the message is not valid JSON: {error}") from None
    return validate(message, order_id), message.idempotency_key
