"""What the dashboard's tests share: the machine's Chromium (Debian's ``chromium``, driven by
Playwright; no browser is downloaded), a page that records every problem it meets, and a
way to run asyncio code beside Playwright's sync API.

In CI a missing Chromium fails the tests (``.ci/run`` installs it); elsewhere they skip."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright

from bench.screenshots import CHROMIUM, VIEWPORT

T = TypeVar("T")


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


@contextmanager
def launched() -> Iterator[Browser]:
    path = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path)
        yield browser
        browser.close()


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

    def refused(self, status: int, method: str, path: str) -> list[str]:
        """What a refusal the page expects leaves here: the response, and Chromium's line
        on the console about it."""
        reason = {400: "Bad Request", 401: "Unauthorized", 409: "Conflict"}[status]
        return [f"HTTP {status} {method} {path}",
                f"console: Failed to load resource: the server responded with a status of "
                f"{status} ({reason})"]


@contextmanager
def opened(browser: Browser) -> Iterator[tuple[Page, Problems]]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        yield page, Problems(page)
    finally:
        context.close()
