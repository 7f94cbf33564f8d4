"""The dashboard's cockpit in Chromium, against the whole system as real processes: market,
limit and sniper orders placed with the API's refusals on their fields, the open orders with
cancel, a failed order opened whole, and pool launches followed live.

Every attempt fails here (``OEE_FAILURE_RATE=1``), so a market order ends failed after its
retries: the detail of a confirmed order is in ``test_dashboard.py``."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from bench.harness import System, system
from bench.screenshots import (
    NEVER,
    WAIT_MS,
    launch_pool,
    new_mint,
    place,
    placed,
    show_detail,
    show_launch,
    show_open_orders,
    show_refusal,
)
from tests.e2e.browser import Problems, launched, opened

pytestmark = pytest.mark.e2e

# The deadline of an order meant to expire while the test looks.
SHORT_TTL = "2"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as browser:
        yield browser


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with system(redis_url, database_url, f"e2e-cockpit-{secrets.token_hex(4)}",
                tmp_path_factory.mktemp("logs"), OEE_FAILURE_RATE="1") as started:
        yield started


@pytest.fixture
def page(browser: Browser, running: System) -> Iterator[tuple[Page, Problems]]:
    with opened(browser) as (page, problems):
        yield page, problems


def live(page: Page, url: str) -> None:
    page.goto(f"{url}/")
    expect(page.locator("#feed-state")).to_have_text("live", timeout=WAIT_MS)


def api(running: System, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{running.url}{path}", json=body, timeout=10)


def status_of(running: System, order_id: str) -> str:
    status: str = api(running, "GET", f"/orders/{order_id}").json()["status"]
    return status


def refusal_shown(page: Page, field: str, text: str) -> None:
    """``text`` under the field's input, which names it as its description and is marked
    invalid; no other field, and not the form, says anything."""
    message = page.locator(f"#e-{field}")
    expect(message).to_contain_text(text)
    described = page.locator(f'[aria-describedby="e-{field}"]')
    expect(described).to_have_attribute("aria-invalid", "true")
    others = page.locator(".field-error:not(:empty)")
    expect(others).to_have_count(1)
    expect(page.locator("#form-error")).to_be_empty()


def test_each_order_type_shows_the_apis_refusal_on_its_field_and_clears_it(
        page: tuple[Page, Problems], running: System) -> None:
    tab, problems = page
    live(tab, running.url)
    place(tab, "market", amount="0")
    refusal_shown(tab, "amount", "amount must be greater than 0")
    place(tab, "limit", amount="0.5")
    refusal_shown(tab, "limitPrice", "limitPrice is required for a limit order")
    # Both deadlines: the API names expiresAt, and the limit price's message is gone.
    place(tab, "limit", limitPrice=NEVER, expiresAt="2031-01-01T00:00", ttlSeconds="60")
    refusal_shown(tab, "expiresAt", "give expiresAt or ttlSeconds, not both")
    # A sniper's tokenOut is its mint field.
    show_refusal(tab)
    refusal_shown(tab, "mint", "neither a listed token nor a base58 public key")
    place(tab, "sniper", mint=new_mint(), ttlSeconds="0")
    refusal_shown(tab, "ttlSeconds", "ttlSeconds must be from 1 to")
    assert sorted(problems.take()) == sorted(
        problems.refused(400, "POST", "/orders/execute") * 5)

    # A valid order clears the last message and is followed under the form.
    place(tab, "limit", tokenIn="SOL", tokenOut="USDC", amount="0.5", limitPrice=NEVER,
          ttlSeconds="3600")
    order_id = placed(tab, "open")
    expect(tab.locator(".field-error:not(:empty)")).to_have_count(0)
    expect(tab.locator("[aria-invalid]")).to_have_count(0)
    assert tab.locator("#live-statuses li").evaluate_all(
        "items => items.map(i => i.dataset.status)") == ["pending", "open"]
    order = api(running, "GET", f"/orders/{order_id}").json()
    assert (order["type"], order["limitPrice"], order["tokenOut"]) == ("limit", NEVER, "USDC")
    assert problems.take() == []


def test_open_orders_are_listed_live_and_cancelled_from_the_page(
        page: tuple[Page, Problems], running: System) -> None:
    tab, problems = page
    before = api(running, "POST", "/orders/execute", {
        "type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.25",
        "slippage": 0.01, "limitPrice": NEVER}).json()["orderId"]
    until(lambda: status_of(running, before) == "open")
    live(tab, running.url)
    # Open before the page opened: listed from GET /orders?status=open, with its condition.
    listed = tab.locator(f'#open-body tr[data-order-id="{before}"]')
    expect(listed.locator("td.condition")).to_contain_text(f"≥ {NEVER} USDC per SOL",
                                                             timeout=WAIT_MS)
    expect(listed.locator(".deadline")).to_have_text("no deadline")
    # Opened while the page looks: listed from the stream.
    mint = new_mint()
    limit_id, sniper_id = show_open_orders(tab, [mint])
    sniper = tab.locator(f'#open-body tr[data-order-id="{sniper_id}"]')
    expect(sniper).to_contain_text(f"SOL → {mint[:4]}…{mint[-4:]}")
    expect(sniper.locator("td.condition")).to_contain_text("its launch, ≤ 0.01 SOL each")
    deadline = api(running, "GET", f"/orders/{limit_id}").json()["expiresAt"]
    expect(tab.locator(f'#open-body tr[data-order-id="{limit_id}"] .deadline')
           ).to_have_attribute("title", deadline)

    for order_id in (before, sniper_id):
        tab.click(f'button[data-cancel="{order_id}"]')
        expect(tab.locator(f'#open-body tr[data-order-id="{order_id}"]')).to_have_count(
            0, timeout=WAIT_MS)
        assert status_of(running, order_id) == "cancelled"
    expect(tab.locator(f'#orders-body tr[data-order-id="{sniper_id}"]')).to_have_attribute(
        "data-status", "cancelled")
    # The list is every open order, the limit order placed above among them. The API's
    # list is PostgreSQL's, which records the two cancels a moment after the page hears them.
    until(lambda: not {before, sniper_id} & set(_open_ids(running)))
    open_now = set(_open_ids(running))
    rows = tab.locator("#open-body tr")
    expect(rows).to_have_count(len(open_now))
    assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.orderId)")) == open_now
    assert limit_id in open_now
    assert problems.take() == []


def test_a_cancel_refused_with_409_shows_the_apis_message(
        browser: Browser, running: System) -> None:
    with opened(browser) as (tab, problems):
        # The page never hears that orders expire, so one stays listed after it ended.
        tab.route_web_socket("**/orders/stream*", _without_expiries)
        live(tab, running.url)
        place(tab, "limit", amount="0.5", limitPrice=NEVER, ttlSeconds=SHORT_TTL)
        order_id = placed(tab, "open")
        until(lambda: status_of(running, order_id) == "expired")
        row = tab.locator(f'#open-body tr[data-order-id="{order_id}"]')
        expect(row).to_have_count(1)
        tab.click(f'button[data-cancel="{order_id}"]')
        expect(tab.locator("#open-error")).to_have_text(
            f"Order …{order_id[-8:]}: order {order_id} is expired; only an open order can "
            "be cancelled")
        expect(row.locator("button.cancel")).to_be_enabled()
        assert sorted(problems.take()) == problems.refused(409, "DELETE", f"/orders/{order_id}")


def test_a_failed_order_opens_whole_from_its_row_and_from_its_link(
        page: tuple[Page, Problems], running: System) -> None:
    tab, problems = page
    live(tab, running.url)
    place(tab, "market", tokenIn="SOL", tokenOut="USDC", amount="0.5")
    order_id = placed(tab, "failed")
    show_detail(tab, order_id)
    detail = tab.locator("#order-detail")
    expect(detail).to_have_attribute("data-status", "failed")
    events = api(running, "GET", f"/orders/{order_id}/events").json()["events"]
    timeline = detail.locator(".detail-timeline li")
    expect(timeline).to_have_count(len(events))
    assert timeline.evaluate_all("items => items.map(i => [+i.dataset.seq, i.dataset.type])"
                                 ) == [[e["seq"], e["type"]] for e in events]
    failures = [e for e in events if e["type"] == "AttemptFailed"]
    assert [f["attempt"] for f in failures] == [1, 2, 3]
    # Each attempt with its signature, kind, error and what came next.
    attempts = detail.locator("table.attempts tbody tr")
    expect(attempts).to_have_count(3)
    for index, failure in enumerate(failures):
        cells = attempts.nth(index).locator("td")
        expect(cells.nth(2)).to_have_text("transient")
        expect(cells.nth(3)).to_have_text(failure["error"])
        retry = ("no: the last attempt" if not failure["retryable"]
                 else f"in {round(failure['retryInMs'])} ms")
        expect(cells.nth(4)).to_have_text(retry)
    [failed] = [e for e in events if e["type"] == "Failed"]
    expect(detail.locator("#detail-failure")).to_have_text(
        f"{failed['reason']}: {failed['error']}")
    expect(detail.locator(".routing tr[data-chosen]")).to_have_count(1)

    tab.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    tab.wait_for_function("() => location.hash === ''", timeout=WAIT_MS)

    # Its link opens it too, in a page of its own.
    other = tab.context.new_page()
    elsewhere = Problems(other)
    other.goto(f"{running.url}/#order={order_id}")
    expect(other.locator("#order-detail")).to_have_attribute("data-status", "failed",
                                                            timeout=WAIT_MS)
    expect(other.locator("#order-detail .detail-timeline li")).to_have_count(len(events))
    assert problems.take() == [] and elsewhere.take() == []


def test_launches_arrive_live_and_fire_the_sniper_waiting_for_them(
        page: tuple[Page, Problems], running: System) -> None:
    tab, problems = page
    earlier = "E" + secrets.token_hex(2).upper()
    launch_pool(running.url, "", earlier, new_mint())
    live(tab, running.url)
    # Launched before the page opened: listed from GET /launches.
    expect(tab.locator(f'#launches-list li[data-symbol="{earlier}"]')).to_be_visible(
        timeout=WAIT_MS)
    mint = new_mint()
    [sniper_id] = show_open_orders(tab, [mint])[1:]
    symbol = show_launch(tab, running.url, "", mint)
    launch = tab.locator(f'#launches-list li[data-mint="{mint}"]')
    expect(launch).to_contain_text(symbol)
    expect(launch.locator(".venue")).to_have_text("raydium")
    expect(launch.locator(".price")).to_have_text("0.001 SOL")
    # Newest first.
    expect(tab.locator("#launches-list li").first).to_have_attribute("data-mint", mint)
    # The token can be bought from now on; the sniper fired (and failed, as everything
    # here does) and is no longer open.
    expect(tab.locator(f'#order-form [name=tokenOut] option[value="{symbol}"]')).to_be_attached(
        timeout=WAIT_MS)
    expect(tab.locator(f'#open-body tr[data-order-id="{sniper_id}"]')).to_have_count(
        0, timeout=WAIT_MS)
    assert status_of(running, sniper_id) != "open"
    assert problems.take() == []


def test_launches_are_read_after_an_id_and_a_bad_id_is_refused(running: System) -> None:
    launched_now = launch_pool(running.url, "", "L" + secrets.token_hex(2).upper(), new_mint())
    latest = api(running, "GET", "/launches?limit=1").json()["launches"]
    assert [entry["launch"]["mint"] for entry in latest] == [launched_now["mint"]]
    assert api(running, "GET", f"/launches?after={latest[0]['id']}").json() == {"launches": []}
    for query, field, rule in (("after=12", "after", "cursor"), ("after=1-x", "after", "cursor"),
                               ("limit=0", "limit", "range"), ("limit=101", "limit", "range")):
        answer = api(running, "GET", f"/launches?{query}")
        assert answer.status_code == 400, query
        assert (answer.json()["error"]["field"], answer.json()["error"]["rule"]) == (field, rule)


def _without_expiries(ws: WebSocketRoute) -> None:
    server = ws.connect_to_server()
    ws.on_message(lambda message: server.send(message))

    def to_page(message: str | bytes) -> None:
        if json.loads(message).get("status") != "expired":
            ws.send(message)
    server.on_message(to_page)


def _open_ids(running: System) -> list[str]:
    page = api(running, "GET", "/orders?status=open&limit=500").json()
    return [order["orderId"] for order in page["orders"]]


def until(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Ask ``check`` again until it holds, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{check} still false after {timeout_s}s")
        time.sleep(0.05)
