"""The dashboard at / in Chromium, against the whole system as real processes.

Playwright drives the machine's Chromium (Debian's `chromium`); no browser is downloaded.
In CI a missing Chromium fails the test (`.ci/run` installs it); elsewhere it skips. The
first test plays the scene of the README's screenshot (``bench.screenshots``, which writes
it) and takes its own, in a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect, sync_playwright

from bench.harness import System, system
from bench.screenshots import CHROMIUM, OTHERS, VIEWPORT, WAIT_MS, show_orders, submit_over_http
from shared.accounts import create_key
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

T = TypeVar("T")

HAPPY = ["pending", "routing", "building", "submitted", "confirmed"]


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a thread of its own: Playwright's sync API holds this thread's
    event loop."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def chromium() -> str:
    if CHROMIUM.exists():
        return str(CHROMIUM)
    message = f"{CHROMIUM} is missing: apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Problems:
    """Every console error, page error, failed request and error response of a page."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("console", self.console)
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))
        page.on("requestfailed", lambda r: self.seen.append(f"failed: {r.method} {r.url}"))
        page.on("response", self.response)

    def console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            self.seen.append(f"console: {message.text}")

    def response(self, response: Response) -> None:
        if response.status >= 400:
            path = response.url.split("://", 1)[1].split("/", 1)[1]
            self.seen.append(f"HTTP {response.status} {response.request.method} /{path}")

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path)
        yield browser
        browser.close()


@contextmanager
def running_system(redis_url: str, database_url: str, logs: Path,
                   **overrides: str) -> Iterator[System]:
    namespace = f"e2e-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, logs, **overrides) as started:
        yield started


@contextmanager
def opened(browser: Browser) -> Iterator[tuple[Page, Problems]]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        yield page, Problems(page)
    finally:
        context.close()


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
        expect(page.locator("#form-error")).to_contain_text("amount")
        assert problems.take() == []


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
