"""The GET handlers: an order, its events, a page of orders, the tokens, and a quote.

Every parameter is checked here before it reaches Redis or PostgreSQL, so what a client
sends is answered with a 4xx naming the field and the rule, never with a 5xx.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.errors import refusal, unknown_order
from services.gateway.parts import parts_of
from services.gateway.validation import Invalid, quote_request
from services.gateway.views import (
    OrderPage,
    TokenList,
    json,
    order_view,
    order_view_from_row,
    quote_view,
    token_views,
)
from shared.accounts import ACCOUNT_NAME as NAME
from shared.accounts import Account, InvalidName, validate_name
from shared.events import AnyEvent, to_builtins
from shared.lifecycle import STATUSES
from shared.order import fold
from shared.routing import NoRoute, decide

MAX_PAGE = 500
# An order id as the gateway writes it: a UUID in its 36-character text form.
ORDER_ID_TEXT = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_ORDER_ID = re.compile(ORDER_ID_TEXT)
# An account's name, as accounts are named (shared.accounts); empty: every account's.
ACCOUNT_TEXT = f"^({NAME.pattern})?$"


def is_order_id(text: str) -> bool:
    return _ORDER_ID.fullmatch(text) is not None


def instant(text: str) -> datetime:
    """An RFC 3339 time with its offset."""
    try:
        parsed: datetime = msgspec.convert(text, datetime)
    except msgspec.ValidationError:
        parsed = datetime.min
    if parsed.tzinfo is None:
        raise Invalid("asOf", "datetime", "asOf must be an RFC 3339 time with an offset, "
                      "like 2026-11-27T10:00:00Z")
    return parsed


async def events_of(request: Request, account: Account) -> tuple[str, list[AnyEvent]]:
    """The order named in the path and its events, if ``account`` may see them."""
    order_id: str = request.path_params["order_id"]
    if not is_order_id(order_id):
        raise unknown_order(order_id)
    events = await parts_of(request).history_for(account)(order_id)
    if not events:
        raise unknown_order(order_id)
    return order_id, events


async def get_order(request: Request, account: Account) -> Response:
    as_of = request.query_params.get("asOf")
    at = instant(as_of) if as_of is not None else None
    order_id, events = await events_of(request, account)
    if at is not None:
        # The order as it stood then: the same fold over the events known by then.
        events = [e for e in events if e.at <= at]
        if not events:
            raise unknown_order(order_id, as_of)
    return json(order_view(fold(order_id, events), events))


async def get_events(request: Request, account: Account) -> Response:
    order_id, events = await events_of(request, account)
    return json({"orderId": order_id, "events": [to_builtins(e) for e in events]})


def page_size(params: Mapping[str, str], default: int, most: int) -> int:
    """``?limit=``: from 1 to ``most``, ``default`` when absent, or Invalid."""
    text = params.get("limit", str(default))
    # Digits only: int() would also take spaces, signs, underscores and other scripts' digits.
    limit = int(text) if text.isascii() and text.isdigit() and len(text) < 10 else 0
    if not 1 <= limit <= most:
        raise Invalid("limit", "range", f"limit must be an integer from 1 to {most}")
    return limit


class Page(msgspec.Struct, frozen=True):
    """What GET /orders asks for, checked."""

    status: str | None
    limit: int
    before: str | None
    # None: every account's orders (an operator's view).
    account: str | None


def page_asked(params: Mapping[str, str], account: Account) -> Page:
    """The page that GET /orders' query asks ``account``'s view for, or Invalid."""
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise Invalid("status", "status", "status must be one of " + ", ".join(STATUSES))
    limit = page_size(params, 50, MAX_PAGE)
    before = params.get("before")
    if before is not None:
        if not is_order_id(before):
            raise Invalid("before", "cursor", "before must be an order id from a page")
        before = before.lower()
    owner = params.get("account")
    if not account.is_operator:
        if owner not in (None, account.name):
            raise Invalid("account", "operator_only",
                          "only operator keys list other accounts' orders")
        owner = account.name
    elif owner:
        try:
            validate_name(owner)
        except InvalidName:
            raise Invalid("account", "account", "account must be an account's name: 1 to 63 "
                          "lower-case letters, digits, '_', '.' or '-'") from None
    return Page(status, limit, before, owner)


async def list_orders(request: Request, account: Account) -> Response:
    page = page_asked(request.query_params, account)
    rows = await parts_of(request).read_model.orders(page.status, page.before, page.limit,
                                                     page.account)
    orders = [order_view_from_row(r) for r in rows]
    next_cursor = orders[-1].order_id if len(orders) == page.limit else None
    return json(OrderPage(orders, next_cursor))


async def tokens(request: Request, account: Account) -> Response:
    await parts_of(request).launches.catch_up()
    return json(TokenList(token_views()))


async def quote(request: Request, account: Account) -> Response:
    order = quote_request(request.query_params)
    market = parts_of(request).market
    at = time.time()
    try:
        decision = decide(order.token_in, order.token_out, order.amount_in, order.slippage,
                          market.pools_between, market.pool_at(at))
    except NoRoute as problem:
        raise refusal(422, "amount", "no_route", str(problem)) from None
    return json(quote_view(order, decision, datetime.fromtimestamp(at, UTC)))
