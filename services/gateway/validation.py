"""Turning a client's order body into an OrderRequested, or a clear refusal. No I/O here.

Every refusal names the field and the rule it broke, so a client can fix its request
without reading our code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Annotated

import msgspec
from msgspec import UNSET

from shared.events import ORDER_TYPES, OrderRequested
from shared.tokens import Token, find, is_mint, listed

MAX_SLIPPAGE = Decimal("0.5")
# A waiting order waits at most this long.
MAX_WAIT = timedelta(days=30)
# Solana token amounts are u64 base units.
MAX_BASE_UNITS = 2**64 - 1
# A price's decimal exponent: from 1e-30 to below 1e31.
PRICE_EXPONENTS = (-30, 30)


class ErrorDetail(msgspec.Struct, omit_defaults=True, rename="camel"):
    field: Annotated[str, msgspec.Meta(description="The field, header or parameter at fault")]
    rule: Annotated[str, msgspec.Meta(description="The rule it broke, stable for programs")]
    message: Annotated[str, msgspec.Meta(description="For people; may change")]
    error_id: Annotated[str | None, msgspec.Meta(
        description="Rule `internal` only: the id the gateway's log names the fault by")] = None


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
    type: Annotated[str, msgspec.Meta(
        description="market (default), limit or sniper")] = "market"
    limit_price: Annotated[Decimal | None, msgspec.Meta(
        description="limit orders (required): the least tokenOut per tokenIn, net of fees",
        examples=[160])] = None
    max_price: Annotated[Decimal | None, msgspec.Meta(
        description="sniper orders (optional): the most tokenIn per tokenOut")] = None
    expires_at: Annotated[str | None, msgspec.Meta(
        description="waiting orders: RFC 3339 deadline with an offset, at most 30 days "
        "ahead")] = None
    # A float too: JSON has one kind of number, and 3600.0 is the integer 3600 to JSON
    # Schema, as the document describes it.
    ttl_seconds: Annotated[int | float | None, msgspec.Meta(
        description="waiting orders: whole seconds until the deadline (instead of expiresAt)",
        examples=[3600])] = None


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


def shown(text: str, most: int = 64) -> str:
    """A client's text, quoted for a message: cut short, so a refusal stays small."""
    return repr(text) if len(text) <= most else repr(text[:most]) + "..."


def _token(field: str, name: str) -> Token:
    token = find(name)
    if token is None:
        known = ", ".join(t.symbol for t in listed())
        raise Invalid(field, "unknown_token", f"unknown token {shown(name)}; known tokens: {known}")
    return token


def _positive_price(field: str, price: Decimal) -> str:
    if not price.is_finite():
        raise Invalid(field, "finite", f"{field} must be a finite number")
    if price <= 0:
        raise Invalid(field, "positive", f"{field} must be greater than 0")
    low, high = PRICE_EXPONENTS
    if not low <= price.adjusted() <= high:
        raise Invalid(field, "range", f"{field} must be between 1e{low} and 1e{high}")
    return format(price.normalize(), "f")


def _deadline(body: OrderBody, now: datetime) -> datetime | None:
    """A waiting order's deadline, from expiresAt or ttlSeconds; None: it waits until
    cancelled."""
    if body.expires_at is not None and body.ttl_seconds is not None:
        raise Invalid("expiresAt", "exclusive", "give expiresAt or ttlSeconds, not both")
    if body.ttl_seconds is not None:
        if isinstance(body.ttl_seconds, float) and not body.ttl_seconds.is_integer():
            raise Invalid("ttlSeconds", "type", "ttlSeconds must be a whole number of seconds")
        if not 1 <= body.ttl_seconds <= MAX_WAIT.total_seconds():
            raise Invalid("ttlSeconds", "range",
                          f"ttlSeconds must be from 1 to {int(MAX_WAIT.total_seconds())}")
        return now + timedelta(seconds=body.ttl_seconds)
    if body.expires_at is None:
        return None
    try:
        deadline = datetime.fromisoformat(body.expires_at.replace("z", "Z"))
    except ValueError:
        deadline = None
    if deadline is None or deadline.tzinfo is None or "T" not in body.expires_at.upper():
        raise Invalid("expiresAt", "datetime", "expiresAt must be an RFC 3339 time with an "
                      "offset, like 2026-12-01T00:00:00Z")
    deadline = deadline.astimezone(UTC)
    if deadline <= now:
        raise Invalid("expiresAt", "past", "expiresAt must be in the future")
    if deadline > now + MAX_WAIT:
        raise Invalid("expiresAt", "max", "expiresAt must be at most 30 days ahead")
    return deadline


def _only_for(body: OrderBody) -> None:
    """Fields that belong to other order types are refused by name."""
    owners = {"limitPrice": ("limit", body.limit_price), "maxPrice": ("sniper", body.max_price),
              "expiresAt": ("waiting", body.expires_at),
              "ttlSeconds": ("waiting", body.ttl_seconds)}
    for field, (kind, value) in owners.items():
        if value is None:
            continue
        if kind == body.type or (kind == "waiting" and body.type != "market"):
            continue
        allowed = "limit and sniper orders" if kind == "waiting" else f"{kind} orders"
        raise Invalid(field, "unknown_field", f"{field} is a field of {allowed} only")


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


def validate(body: OrderBody, order_id: str, now: datetime | None = None) -> OrderRequested:
    if body.type not in ORDER_TYPES:
        raise Invalid(
            "type",
            "order_type",
            f"order type {body.type!r} is not supported; supported types: "
            + ", ".join(ORDER_TYPES),
        )
    _only_for(body)
    token_in = _token("tokenIn", body.token_in)
    # Only a sniper may name a token no pool has yet: by its mint, to buy at its launch.
    unlisted = find(body.token_out) is None and body.type == "sniper"
    if unlisted and not is_mint(body.token_out):
        raise Invalid("tokenOut", "mint", f"{shown(body.token_out)} is neither a listed token nor "
                      "a base58 public key (32 bytes), as a sniper's tokenOut must be")
    token_out = None if unlisted else _token("tokenOut", body.token_out)
    if token_in == token_out or token_in.mint == body.token_out:
        raise Invalid("tokenOut", "distinct_tokens", "tokenIn and tokenOut must differ")
    amount_in = _base_units(body.amount, token_in)
    # Checked as the float the engine computes with, so a tiny value cannot become 0.
    if not (body.slippage.is_finite() and 0 < float(body.slippage) <= MAX_SLIPPAGE):
        raise Invalid("slippage", "range", f"slippage must be in (0, {MAX_SLIPPAGE}], a fraction")
    order = OrderRequested(
        order_id=order_id,
        seq=1,
        token_in=token_in.symbol,
        token_out=token_out.symbol if token_out else body.token_out,
        amount_in=amount_in,
        amount=format(token_in.to_decimal(amount_in).normalize(), "f"),
        slippage=float(body.slippage),
        order_type="market",
    )
    if body.type == "market":
        return order
    if body.type == "limit" and body.limit_price is None:
        raise Invalid("limitPrice", "required", "limitPrice is required for a limit order")
    deadline = _deadline(body, now or datetime.now(UTC))
    return msgspec.structs.replace(
        order,
        order_type="limit" if body.type == "limit" else "sniper",
        limit_price=(_positive_price("limitPrice", body.limit_price)
                     if body.limit_price is not None else UNSET),
        max_price=(_positive_price("maxPrice", body.max_price)
                   if body.max_price is not None else UNSET),
        expires_at=deadline if deadline is not None else UNSET,
    )


def names_unknown_token(body: OrderBody) -> bool:
    """Whether the order names a token this process does not know (yet)."""
    return find(body.token_in) is None or find(body.token_out) is None


def order_from(body: bytes | str, order_id: str) -> OrderRequested:
    return validate(parse(body), order_id)


# A quote names a trade as a market order does.
QUOTE_FIELDS = ("tokenIn", "tokenOut", "amount", "slippage")


def quote_request(params: Mapping[str, str]) -> OrderRequested:
    """GET /quote's query, checked by the same rules as an order; slippage defaults to 1%."""
    for name in params:
        if name not in QUOTE_FIELDS:
            raise Invalid(name[:64], "unknown_field", f"{shown(name)} is not a parameter of a "
                          "quote; it takes " + ", ".join(QUOTE_FIELDS))
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
