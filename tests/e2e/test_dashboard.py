"""The dashboard at / in Chromium, against the whole system as real processes: the key, the
overview, an order's detail, and the live table across a gateway restart.

The first test plays the scenes of the README's screenshots (``bench.screenshots``, which
writes them) and takes its own, in a temporary folder. The order types, open orders, cancel
and launches are in ``test_dashboard_cockpit.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from bench.harness import System, system
from bench.screenshots import OTHERS, WAIT_MS, show_detail, show_orders, submit_over_http
from shared.accounts import create_key
from tests.e2e.browser import launched, opened, run_apart
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

HAPPY = ["pending", "routing", "building", "submitted", "confirmed"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched() as browser:
        yield browser


@contextmanager
def running_system(redis_url: str, database_url: str, logs: Path,
                   **overrides: str) -> Iterator[System]:
    namespace = f"e2e-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, logs, **overrides) as started:
        yield started


def test_a_trader_enters_a_key_submits_and_watches_orders_confirm(
    browser: Browser, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    key = run_apart(create_key(database_url, f"desk-{secrets.token_hex(3)}"))
    with (running_system(redis_url, database_url, tmp_path / "logs",
                         OEE_AUTH="required", OEE_EXECUTION_LATENCY_MS="300-600") as running,
          opened(browser) as (page, problems)):
        # The key entered, an order submitted and confirmed on the page; orders submitted
        # elsewhere arrive over the account's live stream; the charts drawn.
        order_id = show_orders(page, running.url, key)
        # The page asked, without a key, whether the gateway wants one: the one refusal
        # it may cause, which Chromium reports on the console too.
        assert sorted(problems.take()) == [
            "HTTP 401 GET /orders?limit=50",
            "console: Failed to load resource: the server responded with a status of 401 "
            "(Unauthorized)",
        ]
        live = page.locator("#live-statuses li")
        assert live.evaluate_all("items => items.map(i => i.dataset.status)") == HAPPY
        row = page.locator(f'#orders-body tr[data-order-id="{order_id}"]')
        expect(row).to_contain_text("SOL → USDC")
        expect(row.locator("td.signature")).not_to_be_empty()
        expect(page.locator("#orders-body tr")).to_have_count(1 + len(OTHERS))
        expect(page.locator("#orders-body")).to_contain_text("JUP → RAY")

        screenshot = tmp_path / "dashboard.png"
        page.screenshot(path=screenshot, full_page=True)
        assert screenshot.read_bytes().startswith(b"\x89PNG") and problems.take() == []

        # The order opened whole: its events, the route it took among every candidate
        # and why, its one attempt and its signature.
        signature = row.locator("td.signature").get_attribute("title")
        show_detail(page, order_id)
        assert page.evaluate("location.hash") == f"#order={order_id}"
        detail = page.locator("#order-detail")
        expect(detail).to_have_attribute("data-status", "confirmed")
        timeline = detail.locator(".detail-timeline li")
        assert timeline.evaluate_all("items => items.map(i => [i.dataset.seq, i.dataset.type])"
                                     ) == [["1", "OrderRequested"], ["2", "Routed"],
                                           ["3", "Built"], ["4", "Submitted"],
                                           ["5", "Confirmed"]]
        expect(timeline.locator("time")).to_have_count(5)
        routing = detail.locator(".routing")
        expect(routing.locator(".reason")).to_contain_text("net of fees")
        expect(routing.locator(".quotes li")).to_have_count(2)
        candidates = routing.locator("table.candidates tbody tr")
        assert candidates.count() >= 2
        expect(routing.locator("tr[data-chosen]")).to_have_count(1)
        chosen = routing.locator("tr[data-chosen] td").nth(1).inner_text()
        expect(routing.locator("h4")).to_contain_text(chosen)
        expect(detail.locator("table.attempts tbody tr")).to_have_count(1)
        expect(detail.locator('tr[data-attempt="1"]')).to_have_attribute(
            "data-outcome", "confirmed")
        assert signature
        expect(detail.locator("#detail-signature")).to_have_text(signature)
        expect(detail.locator("#detail-failure")).to_have_count(0)
        page.click("#detail-close")
        expect(detail).to_be_hidden()
        # The dialog's close event, which comes after it is hidden, takes the link away.
        page.wait_for_function("() => location.hash === ''", timeout=WAIT_MS)
        assert problems.take() == []


def test_with_keys_off_the_page_asks_for_none(
    browser: Browser, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    with (running_system(redis_url, database_url, tmp_path / "logs", OEE_AUTH="off") as running,
          opened(browser) as (page, problems)):
        page.goto(f"{running.url}/")
        expect(page.locator("#feed-state")).to_have_text("live", timeout=WAIT_MS)
        expect(page.locator("#key-dialog")).to_be_hidden()
        page.fill("[name=amount]", "0.25")
        page.click("#execute")
        live = page.locator("#live-statuses li")
        expect(live.last).to_have_attribute("data-status", "confirmed", timeout=WAIT_MS)
        order_id = page.locator("#live-order").get_attribute("title")
        row = page.locator(f'#orders-body tr[data-order-id="{order_id}"]')
        expect(row).to_have_attribute("data-status", "confirmed", timeout=WAIT_MS)
        page.fill("[name=amount]", "-1")
        page.click("#execute")
        expect(page.locator("#e-amount")).to_have_text("amount must be greater than 0")
        assert sorted(problems.take()) == problems.refused(400, "POST", "/orders/execute")


def test_the_live_table_resumes_without_gaps_after_the_gateway_restarts(
    browser: Browser, redis_url: str, database_url: str, tmp_path: Path
) -> None:
    # The order must still be executing when the gateway goes: long enough that a page
    # slowed by a busy machine has shown it by then.
    with (running_system(redis_url, database_url, tmp_path / "logs", OEE_AUTH="off",
                         OEE_EXECUTION_LATENCY_MS="4000-4500") as running,
          opened(browser) as (page, problems)):
        page.goto(f"{running.url}/")
        feed = page.locator("#feed-state")
        expect(feed).to_have_text("live", timeout=WAIT_MS)
        [order_id] = submit_over_http(running.url, "", [("SOL", "USDC", "0.5")])
        row = page.locator(f'#orders-body tr[data-order-id="{order_id}"]')
        expect(row).to_be_attached(timeout=WAIT_MS)

        running.kill("gateway")
        expect(feed).to_have_text("reconnecting", timeout=WAIT_MS)
        run_apart(eventually(lambda: confirmed(database_url, order_id)))
        assert row.get_attribute("data-status") != "confirmed"
        running.start("gateway", 0)
        running.wait_ready()

        expect(feed).to_have_text("live", timeout=WAIT_MS)
        # What happened while the page was cut off came after it reconnected, all of it.
        expect(row).to_have_attribute("data-status", "confirmed", timeout=WAIT_MS)
        expect(row).to_have_attribute("data-seq", str(len(HAPPY)))
        # While the gateway was down, its requests failed; nothing on the page broke.
        outage = problems.take()
        assert not [p for p in outage if p.startswith("page error")], outage


async def confirmed(database_url: str, order_id: str) -> bool | None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("SELECT status FROM orders WHERE order_id = %s", [order_id])
        row = await cursor.fetchone()
    return True if row is not None and row[0] == "confirmed" else None
