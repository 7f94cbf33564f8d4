"""The OpenAPI document is generated from the route table: every HTTP route the app serves
is documented, and every documented operation is served. And it is exact: what it allows,
the validator takes; what it forbids, the validator refuses."""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import base58
import jsonschema_rs
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from services.gateway.admin import LaunchRequest, launch_of
from services.gateway.app import ROUTES, create_app
from services.gateway.openapi import document
from services.gateway.queries import MAX_PAGE, ORDER_ID_TEXT
from services.gateway.schemas import COMMON, FIELDS, NULL, mint_pattern
from services.gateway.validation import Invalid, parse, quote_request, validate
from shared import market, tokens
from shared.config import Settings
from shared.events import ORDER_TYPES
from shared.launches import BadLaunch, EmptyPool, PoolLaunched, apply, check
from shared.lifecycle import STATUSES
from shared.market import Market
from shared.tokens import TOKENS, get, is_mint


def app() -> Starlette:
    parts: Any = SimpleNamespace(lifespan=None)  # no route below reaches a part
    return create_app(Settings(), parts)


def served(routes: list[Any]) -> set[tuple[str, str]]:
    """(path, method) of every HTTP route meant for the document (HEAD comes with GET)."""
    return {(r.path, m.lower()) for r in routes if isinstance(r, Route) and r.include_in_schema
            for m in r.methods or () if m != "HEAD"}


def test_every_route_is_documented_and_every_documented_operation_is_served() -> None:
    routes = app().routes
    documented = {(path, method) for path, item in document(routes)["paths"].items()
                  for method in item}
    assert documented == served(routes)
    assert ("/orders/{order_id}", "delete") in documented and ("/", "get") in documented


def test_a_route_added_without_its_operation_is_caught() -> None:
    async def endpoint(request: Any) -> Any:
        raise AssertionError

    routes = [*app().routes, Route("/new", endpoint, methods=["GET"])]
    documented = {(p, m) for p, item in document(routes)["paths"].items() for m in item}
    assert served(routes) - documented == {("/new", "get")}


def test_the_served_document_is_the_route_tables() -> None:
    application = app()
    response = TestClient(application).get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == document(application.routes)


def test_keyed_operations_say_so_and_public_ones_need_no_key() -> None:
    paths = document(app().routes)["paths"]
    public = {p for p, item in paths.items() for op in item.values() if op.get("security") == []}
    assert public == {"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"}
    for path, item in paths.items():
        for op in item.values():
            assert "500" in op["responses"], path
            if path not in public:
                assert {"401", "503"} <= set(op["responses"]), path


# --- the document says exactly what the gateway accepts -------------------------------

TODAY = date(2026, 12, 6)
DOC = document(ROUTES, tokens=TOKENS, today=TODAY)
SCHEMAS = DOC["components"]["schemas"]
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.01}
IN_A_WEEK = "2026-12-13T00:00:00Z"


def valid(component: str, instance: Any) -> bool:
    schema = {"$ref": f"#/components/schemas/{component}", "components": DOC["components"]}
    return bool(jsonschema_rs.validator_for(schema).is_valid(instance))


def test_an_order_is_one_of_three_types_discriminated_by_type() -> None:
    body = SCHEMAS["OrderBody"]
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in body["oneOf"]] == [
        "MarketOrder", "LimitOrder", "SniperOrder"]
    assert body["discriminator"]["propertyName"] == "type"
    assert set(body["discriminator"]["mapping"]) == set(ORDER_TYPES)


@pytest.mark.parametrize(("order", "ok"), [
    (ORDER, True),  # a market order may leave its type out
    ({**ORDER, "type": "market"}, True),
    ({**ORDER, "type": "market", "limitPrice": 160}, False),
    ({**ORDER, "type": "market", "limitPrice": None}, True),  # null stands for absent
    ({**ORDER, "type": "limit"}, False),  # no limitPrice
    ({**ORDER, "type": "limit", "limitPrice": "160", "ttlSeconds": 3600}, True),
    ({**ORDER, "type": "limit", "limitPrice": 160, "expiresAt": IN_A_WEEK}, True),
    ({**ORDER, "type": "limit", "limitPrice": 160, "expiresAt": IN_A_WEEK,
      "ttlSeconds": 3600}, False),
    ({**ORDER, "type": "limit", "limitPrice": 160, "expiresAt": IN_A_WEEK,
      "ttlSeconds": None}, True),
    ({**ORDER, "type": "limit", "limitPrice": 160, "maxPrice": 1}, False),
    ({**ORDER, "type": "sniper", "tokenOut": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"},
     True),
    ({**ORDER, "type": "sniper", "limitPrice": 160}, False),
    ({**ORDER, "type": "stop"}, False),
    ({**ORDER, "slipage": 0.01}, False),
    ({**ORDER, "tokenOut": "SOL"}, False),  # the same token
    ({**ORDER, "tokenOut": "sol"}, False),
    ({**ORDER, "tokenIn": "USDC", "tokenOut": "SOL", "amount": 0.0000001}, False),
    ({**ORDER, "tokenIn": "USDC", "tokenOut": "SOL", "amount": "0.000001"}, True),
    ({**ORDER, "amount": 0}, False),
    ({**ORDER, "amount": "0.0"}, False),
    ({**ORDER, "slippage": 0.51}, False),
    ({**ORDER, "slippage": "0.5"}, True),
    ({**ORDER, "type": "limit", "limitPrice": 0}, False),
    ({**ORDER, "type": "limit", "limitPrice": "1e31"}, False),
    ({**ORDER, "type": "limit", "limitPrice": 160, "ttlSeconds": 0}, False),
    ({**ORDER, "type": "limit", "limitPrice": 160, "expiresAt": "2026-12-01T00:00:00Z"},
     False),  # in the past
    ({**ORDER, "type": "limit", "limitPrice": 160, "expiresAt": "2027-02-01T00:00:00Z"},
     False),  # more than 30 days ahead
])
def test_the_order_schema_takes_what_the_validator_takes(order: dict[str, Any], ok: bool) -> None:
    assert valid("OrderBody", order) is ok
    taken = True
    try:
        validate(parse(json.dumps(order)), "x", now=datetime(2026, 12, 6, tzinfo=UTC))
    except Invalid:
        taken = False
    assert taken is ok


def test_every_order_type_has_exactly_its_own_fields() -> None:
    for kind, fields in FIELDS.items():
        variant = SCHEMAS[f"{kind.capitalize()}Order"]
        for shape in variant.get("anyOf", [variant]):
            assert shape["additionalProperties"] is False
            own = {name for name, schema in shape["properties"].items() if schema != NULL}
            assert own - {"type"} <= {*COMMON, *fields}, kind


@pytest.mark.parametrize(("query", "ok"), [
    ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5"}, True),
    ({"tokenIn": "", "tokenOut": "USDC", "amount": "0.5"}, False),
    ({"tokenIn": "SOL", "tokenOut": "SOL", "amount": "0.5"}, False),
    ({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5", "type": "limit"}, False),
])
def test_a_quote_query_is_as_strict_as_a_quote(query: dict[str, str], ok: bool) -> None:
    assert valid("QuoteQuery", query) is ok
    taken = True
    try:
        quote_request(query)
    except Invalid:
        taken = False
    assert taken is ok


LAUNCH = {"mint": "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU", "symbol": "NEW",
          "decimals": 6, "venue": "raydium", "price": "0.001", "liquidity": "500"}


@pytest.mark.parametrize(("launch", "ok"), [
    (LAUNCH, True),
    ({**LAUNCH, "mint": ""}, False),
    ({**LAUNCH, "price": ""}, False),
    ({**LAUNCH, "liquidity": ""}, False),
    ({**LAUNCH, "symbol": "TOO-LONG-NAME"}, False),
    ({**LAUNCH, "decimals": 13}, False),
    ({**LAUNCH, "price": "1e-13"}, False),
    ({**LAUNCH, "quote": "usdc"}, True),
])
def test_a_launch_schema_takes_what_the_market_takes(launch: dict[str, Any], ok: bool) -> None:
    assert valid("LaunchRequest", launch) is ok
    taken = True
    try:
        check(PoolLaunched(**launch))
    except BadLaunch:
        taken = False
    assert taken is ok


def test_every_mint_the_document_allows_is_a_32_byte_key() -> None:
    pattern = re.compile(mint_pattern())
    assert all(pattern.fullmatch(t.mint) for t in TOKENS)

    @settings(max_examples=300, derandomize=True, database=None)
    @given(st.from_regex(pattern, fullmatch=True))
    def is_a_key(text: str) -> None:
        assert is_mint(text)

    is_a_key()


def test_parameters_carry_the_validators_limits() -> None:
    paths = DOC["paths"]
    order_id = paths["/orders/{order_id}"]["get"]["parameters"][0]["schema"]
    assert order_id["pattern"] == ORDER_ID_TEXT
    page = {p["name"]: p["schema"] for p in paths["/orders"]["get"]["parameters"]}
    assert page["limit"]["maximum"] == MAX_PAGE
    assert page["status"]["enum"] == list(STATUSES)
    key = paths["/orders/execute"]["post"]["parameters"][0]["schema"]["pattern"]
    assert re.fullmatch(key, "k" * 255) and not re.fullmatch(key, "k" * 256)
    assert not re.fullmatch(key, " k") and not re.fullmatch(key, "")


def test_the_submit_links_to_the_order_its_cancel_and_its_events() -> None:
    accepted = DOC["paths"]["/orders/execute"]["post"]["responses"]["202"]
    targets = {link["operationId"] for link in accepted["links"].values()}
    assert targets == {"getOrder", "cancelOrder", "getOrderEvents"}
    ids = {op["operationId"] for item in DOC["paths"].values() for op in item.values()
           if "operationId" in op}
    assert targets <= ids
    examples = DOC["paths"]["/orders/execute"]["post"]["requestBody"]["content"][
        "application/json"]["examples"]
    # A limit no seeded market meets stays open: what a fuzzer cancels. (The seed's prices
    # move a few percent around their reference.)
    limit = examples["limit"]["value"]
    price = get(limit["tokenIn"]).usd / get(limit["tokenOut"]).usd
    assert Decimal(limit["limitPrice"]) > 1000 * Decimal(str(price))
    for example in examples.values():
        assert valid("OrderBody", example["value"]), example


def test_every_response_a_route_gives_is_documented_with_its_body() -> None:
    for path, item in DOC["paths"].items():
        for op in item.values():
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")) and path not in ("/readyz",):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
    submit = DOC["paths"]["/orders/execute"]["post"]["responses"]
    assert {"400", "401", "409", "413", "422", "429", "500", "503"} <= set(submit)
    launch = DOC["paths"]["/admin/pools"]["post"]["responses"]
    assert {"400", "401", "403", "409", "413", "500", "503"} <= set(launch)


# --- one route per path: a 405 names every method it has ------------------------------

@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("OPTIONS", "/orders/01a21435-0000-7000-8000-000000000000", {"GET", "HEAD", "DELETE"}),
    ("PUT", "/orders", {"GET", "HEAD"}),
    ("GET", "/orders/execute", {"POST"}),  # no order is named "execute"
    ("DELETE", "/orders/execute", {"POST"}),
])
def test_a_method_a_path_lacks_is_405_naming_those_it_has(
    method: str, path: str, allowed: set[str]
) -> None:
    response = TestClient(app()).request(method, path)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == allowed
    assert response.json()["error"]["rule"] == "method"
    assert set(response.json()["error"]) == {"field", "rule", "message"}


# --- what a fuzzer draws from the document, the validator judges alike -----------------

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
FUZZED = schemathesis.openapi.from_dict(DOC)


def drawn(path: str, method: str, mode: str, where: ParameterLocation,
          examples: int = 70) -> list[Any]:
    """Cases schemathesis draws for an operation; a negative one only when what it broke
    is in ``where`` (not a missing key, which the tests of keys cover)."""
    cases: list[Any] = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(FUZZED[path][method].as_strategy(generation_mode=GenerationMode(mode)))
    def draw(case: Any) -> None:
        mutations = getattr(case.meta.phase.data, "mutations", ()) if case.meta else ()
        if mode == "positive" or (mutations and all(
                m.parameter_location == where for m in mutations)):
            cases.append(case)

    draw()
    return cases


def order_taken(body: Any) -> bool:
    try:
        raw = body if isinstance(body, bytes) else json.dumps(body, allow_nan=False)
        validate(parse(raw), "x", now=NOW)
    except (Invalid, ValueError):  # NaN is no JSON: a client cannot send it either
        return False
    return True


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_orders_the_document_allows_are_taken_and_those_it_forbids_refused(mode: str) -> None:
    cases = drawn("/orders/execute", "POST", mode, ParameterLocation.BODY)
    assert len(cases) > 8
    wrong = [c.body for c in cases if order_taken(c.body) is not (mode == "positive")]
    assert not wrong, wrong[:3]


def quote_taken(query: dict[str, Any]) -> bool | None:
    if not all(isinstance(v, str) for v in query.values()):
        return None  # a value a query string cannot carry as it is
    try:
        quote_request(query)
    except Invalid:
        return False
    return True


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_quotes_the_document_allows_are_taken_and_those_it_forbids_refused(mode: str) -> None:
    cases = drawn("/quote", "GET", mode, ParameterLocation.QUERY)
    judged = [(c.query, quote_taken(c.query or {})) for c in cases]
    judged = [(q, taken) for q, taken in judged if taken is not None]
    assert len(judged) > 8
    wrong = [q for q, taken in judged if taken is not (mode == "positive")]
    assert not wrong, wrong[:3]


@pytest.mark.parametrize("launch", [
    {**LAUNCH, "liquidity": "0.000000000001"},  # below one lamport of SOL
    {**LAUNCH, "quote": "USDC", "liquidity": "0.0000001"},  # below one USDC base unit
    {**LAUNCH, "decimals": 0, "price": "1000000", "liquidity": "1"},  # below one token
])
def test_a_launch_that_leaves_a_side_of_its_pool_empty_is_refused_as_unprocessable(
    launch: dict[str, Any]
) -> None:
    # Each field is in range, so the document allows it; the answer is 422, not 400.
    assert valid("LaunchRequest", launch)
    with pytest.raises(EmptyPool):
        check(PoolLaunched(**launch))


@pytest.fixture
def launched_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """What this test launches is known to this test alone: the process's registries of
    tokens and pools are put back afterwards."""
    for module, name in ((tokens, "_LAUNCHED"), (tokens, "_BY_NAME"), (market, "_LAUNCHED")):
        monkeypatch.setattr(module, name, dict(getattr(module, name)))


@pytest.mark.usefixtures("launched_here")
@pytest.mark.parametrize("venue", ["raydium", "meteora"])
def test_a_launch_that_holds_one_base_unit_a_side_makes_a_pool(venue: str) -> None:
    mint = base58.b58encode(secrets.token_bytes(32)).decode()
    launch = check(PoolLaunched(mint=mint, symbol=f"E{secrets.token_hex(3).upper()}",
                                decimals=9, venue=venue,  # type: ignore[arg-type]
                                price="1", liquidity="0.000000001"))
    apply(launch)
    pool = Market("edges", 0.03, 1000).pool(launch.key, 0.0)
    assert pool is not None


@pytest.mark.usefixtures("launched_here")
def test_every_launch_the_document_allows_and_the_market_takes_makes_a_pool() -> None:
    market = Market("edges", 0.03, 1000)
    made = 0
    for case in drawn("/admin/pools", "POST", "positive", ParameterLocation.BODY):
        try:
            launch = check(launch_of(msgspec.convert(case.body, LaunchRequest)))
        except BadLaunch:
            continue  # listed already, or an empty side: refused, never a pool
        apply(launch)
        assert market.pool(launch.key, 0.0) is not None, launch
        made += 1
    assert made > 5
