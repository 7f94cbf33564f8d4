"""What the gateway accepts, as the JSON Schemas of the OpenAPI document: built from the
validator's own limits (``validation``) and from the tokens this process knows, so that a
request the document allows is one the gateway takes, and one it forbids is refused.

Some rules span fields: a token's decimals bound its amount, and an order's two tokens
differ. They are told as one ``anyOf`` branch per token. Others move with the clock (a
deadline at most 30 days ahead): those schemas are made for the day they are served on.
Where a rule cannot be written exactly as a pattern, the document allows a subset of what
the gateway takes (said where it is), never more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, get_args

from services.gateway.validation import (
    MAX_BASE_UNITS,
    MAX_SLIPPAGE,
    MAX_WAIT,
    PRICE_EXPONENTS,
    QUOTE_FIELDS,
)
from shared.launches import QUOTES
from shared.route import Dex
from shared.tokens import TOKENS, Token

Schema = dict[str, Any]

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_CLASS = "[1-9A-HJ-NP-Za-km-z]"
MINT_BYTES = 32
# The RFC 3339 time of day and offset, as the gateway's parsers read them: no leap second.
_TIME = (r"[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
         r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])")
# A year the gateway can represent (1 to 9999), then month and day.
_DATE = (r"([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])-"
         r"(0[1-9]|[12][0-9]|3[01])")
INSTANT = {"type": "string", "format": "date-time", "pattern": f"^{_DATE}{_TIME}$"}
# A deadline's offset moves its instant by up to a day: the days allowed keep that far
# from both ends of the window, so a deadline the document allows is always in it.
_DEADLINE_MARGIN = timedelta(days=2)


def mint_pattern() -> str:
    """Base58 text of a 32-byte key. The exact set (which numbers fit in 32 bytes) has no
    short pattern; this one allows the keys without leading zero bytes whose first digit
    alone settles that they fit: 43 or 44 digits, as nearly every Solana key is written."""
    hi = 2 ** (8 * MINT_BYTES)
    lo = 2 ** (8 * (MINT_BYTES - 1))
    longest = max(n for n in range(60) if 58 ** (n - 1) < hi)
    # The longest text fits when (first digit + 1) * 58^(n-1) <= 2^256; one digit shorter,
    # it is 32 bytes long (no fewer) when first digit * 58^(n-2) >= 2^248.
    top = hi // 58 ** (longest - 1) - 1
    bottom = -(-lo // 58 ** (longest - 2))
    first_long, first_short = BASE58[1:top + 1], BASE58[bottom:]
    return (f"^({_chars(first_long)}{_BASE58_CLASS}{{{longest - 1}}}|"
            f"{_chars(first_short)}{_BASE58_CLASS}{{{longest - 2}}})$")


def _chars(alphabet: str) -> str:
    """A character class for the characters of ``alphabet``, in runs."""
    runs: list[str] = []
    start = previous = alphabet[0]
    for char in alphabet[1:] + "\0":
        if ord(char) != ord(previous) + 1:
            runs.append(start if start == previous else f"{start}-{previous}")
            start = char
        previous = char
    return "[" + "".join(runs) + "]"


def any_case(text: str) -> str:
    """A pattern matching ``text`` in any case."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in text)


def naming(tokens: Iterable[Token]) -> Schema:
    """The ways an order names ``tokens``: each by its symbol, as listed or in lower case,
    or by its mint. The gateway takes a symbol in any case; the document lists the two
    spellings clients use, since a pattern of every case, intersected with the choices of
    the other fields, grows past what schema tools can expand."""
    return {"type": "string", "enum": list(dict.fromkeys(
        name for t in tokens for name in (t.symbol, t.symbol.lower(), t.mint)))}


def amount(token: Token, text_only: bool = False) -> Schema:
    """An amount of ``token`` in decimal units: above 0, with no more decimals than the
    token has, and no more base units than a u64 holds. As text, no exponent and at most
    the digits before the point that stay under that bound."""
    places = token.decimals
    whole_digits = len(str(MAX_BASE_UNITS // 10**places)) - 1
    fraction = rf"(\.[0-9]{{0,{places}}}0*)?"
    below_one = rf"|0*\.[0-9]{{0,{places - 1}}}[1-9]0*" if places else ""
    text = {"type": "string",
            "pattern": rf"^\+?(0*[1-9][0-9]{{0,{whole_digits - 1}}}{fraction}{below_one})$"}
    if text_only:
        return text
    most = _float_at_most(Decimal(MAX_BASE_UNITS).scaleb(-places))
    number = {"type": "number", "exclusiveMinimum": 0, "multipleOf": _unit(places),
              "maximum": most}
    return {"anyOf": [number, text]}


def _unit(places: int) -> int | float:
    return 1 if places == 0 else float(Decimal(1).scaleb(-places))


def _float_at_most(bound: Decimal) -> float:
    """The largest float not above ``bound``: a document's number must not promise more."""
    value = float(bound)
    while Decimal(value) > bound:
        value = float.__sub__(value, abs(value) * 2**-52)
    return value


def slippage(text_only: bool = False) -> Schema:
    """A fraction in (0, MAX_SLIPPAGE]."""
    top = str(MAX_SLIPPAGE)  # "0.5"
    assert re.fullmatch(r"0\.[1-9]", top), "the pattern below spells a one-digit bound"
    below = int(top[-1]) - 1
    text = {"type": "string", "pattern": (
        rf"^\+?0*\.(0[0-9]*[1-9][0-9]*|[1-{below}][0-9]*|{top[-1]}0*)$"
        if below >= 1 else rf"^\+?0*\.(0[0-9]*[1-9][0-9]*|{top[-1]}0*)$")}
    if text_only:
        return text
    number = {"type": "number", "exclusiveMinimum": 0, "maximum": float(MAX_SLIPPAGE)}
    return {"anyOf": [number, text]}


def price() -> Schema:
    """A limit or a cap: from 1e-30 to below 1e31 (its exponent within PRICE_EXPONENTS)."""
    low, high = PRICE_EXPONENTS
    number = {"type": "number", "minimum": float(Decimal(1).scaleb(low)),
              "exclusiveMaximum": float(Decimal(1).scaleb(high + 1))}
    text = {"type": "string", "pattern": (
        rf"^\+?(0*[1-9][0-9]{{0,{high}}}(\.[0-9]*)?|0*\.0{{0,{-low - 1}}}[1-9][0-9]*)$")}
    return {"anyOf": [number, text]}


def deadline(today: date) -> Schema:
    """An RFC 3339 time with an offset, later than now and at most MAX_WAIT ahead: the days
    written out, kept a margin inside that window (see _DEADLINE_MARGIN)."""
    first = today + _DEADLINE_MARGIN
    last = today + MAX_WAIT - _DEADLINE_MARGIN
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {"type": "string", "format": "date-time",
            "pattern": "^(" + "|".join(d.isoformat() for d in days) + f"){_TIME}$"}


def ttl() -> Schema:
    return {"type": "integer", "minimum": 1, "maximum": int(MAX_WAIT.total_seconds())}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


NULL = {"type": "null", "description": "a field of another order type: only null, as absent"}


def trades(tokens: Sequence[Token], sniper: bool = False, text_only: bool = False) -> Schema:
    """The token pair and the amount: one branch per token sold, with its own decimals, and
    any other token bought; a sniper may also buy a mint no pool has yet."""
    mints = [t.mint for t in tokens]
    branches = []
    for sold in tokens:
        others = [t for t in tokens if t != sold]
        bought = naming(others) if others else {"not": {}}
        if sniper:
            bought = {"anyOf": [bought, {"type": "string", "pattern": mint_pattern(),
                                         "not": {"enum": mints}}]}
        branches.append({"properties": {"tokenIn": naming([sold]), "tokenOut": bought,
                                        "amount": amount(sold, text_only)}})
    return {"anyOf": branches}


# Which fields each order type has, beyond the four every order has; the others must be
# absent (or null) in it.
FIELDS = {"market": (), "limit": ("limitPrice", "expiresAt", "ttlSeconds"),
          "sniper": ("maxPrice", "expiresAt", "ttlSeconds")}
REQUIRED = {"market": (), "limit": ("limitPrice",), "sniper": ()}
COMMON = ("tokenIn", "tokenOut", "amount", "slippage")
# A deadline is given one way or the other (or not at all), never both.
DEADLINES = ("expiresAt", "ttlSeconds")


def orders(today: date, described: Schema, extra: Schema | None = None) -> dict[str, Schema]:
    """One schema per order type, named by it; with ``extra`` properties (a WebSocket
    message's) in each. ``described`` is the msgspec schema of the wire Struct, whose field
    descriptions are kept.

    A waiting order is one of two shapes, by the way its deadline is given (either shape
    takes an order without one). Each shape has a single choice in it, its tokens: a
    schema that intersects two choices has no canonical form that generators can draw
    from once a few tokens are listed."""
    about = {name: {"description": field["description"]}
             for name, field in described["properties"].items()}
    values = {"tokenIn": {"type": "string"}, "tokenOut": {"type": "string"}, "amount": {},
              "slippage": slippage(), "limitPrice": price(), "maxPrice": nullable(price()),
              "expiresAt": nullable(deadline(today)), "ttlSeconds": nullable(ttl())}
    optional = sorted({name for fields in FIELDS.values() for name in fields})
    variants: dict[str, Schema] = {}
    for kind, fields in FIELDS.items():
        # A market order may leave its type out.
        kind_of = {"enum": [kind], "default": kind} if kind == "market" else {"const": kind}
        required = [*COMMON, *REQUIRED[kind]] + ([] if kind == "market" else ["type"])
        trade = "SniperTrade" if kind == "sniper" else "Trade"

        def shape(has: Sequence[str], kind_of: Schema = kind_of, required: list[str] = required,
                  trade: str = trade) -> Schema:
            properties: Schema = {"type": kind_of}
            for name in (*COMMON, *optional):
                properties[name] = ({**about[name], **values[name]}
                                    if name in COMMON or name in has else NULL)
            return {"type": "object", "properties": properties | (extra or {}),
                    "required": required, "additionalProperties": False,
                    "allOf": [{"$ref": REF.format(name=trade)}]}

        title = f"{kind.capitalize()}Order"
        if any(name in fields for name in DEADLINES):
            others = [name for name in fields if name not in DEADLINES]
            variants[kind] = {"title": title, "anyOf": [shape([*others, way])
                                                        for way in DEADLINES]}
        else:
            variants[kind] = {"title": title, **shape(fields)}
    return variants


REF = "#/components/schemas/{name}"


def union(names: dict[str, str], description: str) -> Schema:
    """``oneOf`` the components named by each ``type`` value, discriminated by it."""
    return {"description": description,
            "oneOf": [{"$ref": REF.format(name=n)} for n in names.values()],
            "discriminator": {"propertyName": "type",
                              "mapping": {k: REF.format(name=n) for k, n in names.items()}}}




def quote(tokens: Sequence[Token], described: Schema) -> Schema:
    """GET /quote's query, one object exploded into its parameters, so that its tokens and
    amount are bound together as in an order (and given as text, as a query is)."""
    values = {"tokenIn": {"type": "string"}, "tokenOut": {"type": "string"}, "amount": {},
              "slippage": {**slippage(text_only=True), "default": "0.01"}}
    return {
        "type": "object",
        "properties": {name: {"description": described["properties"][name]["description"],
                              **values[name]} for name in QUOTE_FIELDS},
        "required": [name for name in QUOTE_FIELDS if name != "slippage"],
        "additionalProperties": False,
        "allOf": [trades(tokens, text_only=True)],
    }


# shared.launches.check's limits; a test holds the two together.
LAUNCH_SYMBOL = "^[A-Za-z0-9]{1,10}$"
LAUNCH_DECIMALS = (0, 12)
LAUNCH_EXPONENTS = (-12, 12)


def launch(described: Schema) -> Schema:
    """POST /admin/pools' body: a token not listed yet, and its first pool."""
    about = described["properties"]
    low, high = LAUNCH_EXPONENTS
    amount = {"type": "string", "pattern": (
        rf"^\+?(0*[1-9][0-9]{{0,{high - 1}}}(\.[0-9]*)?|0*\.0{{0,{-low - 1}}}[1-9][0-9]*)$")}
    properties: dict[str, Schema] = {
        "mint": {"type": "string", "pattern": mint_pattern()},
        "symbol": {"type": "string", "pattern": LAUNCH_SYMBOL},
        "decimals": {"type": "integer", "minimum": LAUNCH_DECIMALS[0],
                     "maximum": LAUNCH_DECIMALS[1]},
        "venue": {"enum": list(get_args(Dex))},
        "price": amount,
        "liquidity": amount,
        "quote": {"type": "string", "default": QUOTES[0], "pattern": "^(" + "|".join(
            any_case(symbol) for symbol in QUOTES) + ")$"},
    }
    return {"description": described["description"], "type": "object",
            "required": [name for name in properties if name != "quote"],
            "properties": {name: {"description": about[name]["description"], **schema}
                           if "description" in about[name] else schema
                           for name, schema in properties.items()}}


# The tokens the document names: the seed's, then those launched last, this many in all.
# Each is named in several places of the order's schemas, which beyond a few dozen tokens
# grow past what schema tools expand (GET /tokens lists every one).
MOST_TOKENS = 20


def documented(tokens: Sequence[Token]) -> list[Token]:
    seed = [t for t in tokens if t in TOKENS]
    launched = [t for t in tokens if t not in TOKENS]
    return seed + launched[max(0, len(launched) - (MOST_TOKENS - len(seed))):]


def accepted(tokens: Sequence[Token], today: date, described: dict[str, Schema],
             ) -> dict[str, Schema]:
    """The components these schemas make, in place of the wire Structs' own (whose words
    are kept): the order types and their union, the WebSocket submit message, GET /quote's
    query, the launch of a pool, and the pairs of tokens that may trade."""
    order, message = described["OrderBody"], described["SubmitMessage"]
    tokens = documented(tokens)
    names = {kind: f"{kind.capitalize()}Order" for kind in FIELDS}
    variants = orders(today, order)
    with_key = orders(today, order, {"idempotencyKey": message["properties"]["idempotencyKey"]})
    return {
        "Trade": trades(tokens),
        "SniperTrade": trades(tokens, sniper=True),
        **{names[kind]: variant for kind, variant in variants.items()},
        "OrderBody": union(names, order["description"]),
        "SubmitMessage": {"description": message["description"],
                          "oneOf": list(with_key.values())},
        "QuoteQuery": quote(tokens, order),
        "LaunchRequest": launch(described["LaunchRequest"]),
    }
