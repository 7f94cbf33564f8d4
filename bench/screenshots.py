"""The README's screenshot of the dashboard:

    python -m bench.screenshots [--out docs/dashboard.png]

It starts every service (over REDIS_URL and DATABASE_URL, or embedded servers when they are
unset, as ``oee up`` does) with keys on and makes a key; then, in the machine's Chromium
(Debian's ``chromium``, driven by Playwright; no browser is downloaded), enters the key,
submits an order and watches it confirm while more orders, through several routes, arrive
over the account's live stream, and takes the whole page. ``tests/e2e/test_dashboard.py``
plays the same scene (``show_orders``) and checks what the page shows."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, ViewportSize, expect, sync_playwright

from bench.harness import system
from services.cli.up import servers
from shared.accounts import create_key

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 30_000
# More orders, through several routes, so the screenshot shows what the page is for.
OTHERS = [("USDC", "SOL", "40"), ("SOL", "USDC", "20000"), ("SOL", "BONK", "2"),
          ("JUP", "RAY", "25"), ("SOL", "USDT", "1.5"), ("RAY", "USDC", "30"),
          ("BONK", "JUP", "500000")]
VIEWPORT = ViewportSize(width=1440, height=900)


def submit_over_http(url: str, key: str, orders: list[tuple[str, str, str]]) -> list[str]:
    ids = []
    headers = {"x-api-key": key} if key else {}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        for token_in, token_out, amount in orders:
            body = {"tokenIn": token_in, "tokenOut": token_out, "amount": amount,
                    "slippage": 0.02}
            response = client.post("/orders/execute", json=body)
            if response.status_code != 202:
                raise RuntimeError(f"order refused: {response.text}")
            ids.append(response.json()["orderId"])
    return ids


def show_orders(page: Page, url: str, key: str) -> str:
    """The scene: the key entered, an order submitted on the page and confirmed, the
    ``OTHERS`` confirmed too, the charts drawn. Returns the page's order's id."""
    page.goto(f"{url}/")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    page.fill("#key-input", key)
    page.press("#key-input", "Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#feed-state")).to_have_text("live", timeout=WAIT_MS)
    page.click("#execute")
    expect(page.locator("#live-statuses li").last).to_have_attribute(
        "data-status", "confirmed", timeout=WAIT_MS)
    order_id = page.locator("#live-order").get_attribute("title")
    if not order_id:
        raise RuntimeError("the page shows no order id")
    for shown in [order_id, *submit_over_http(url, key, OTHERS)]:
        row = page.locator(f'#orders-body tr[data-order-id="{shown}"]')
        expect(row).to_have_attribute("data-status", "confirmed", timeout=WAIT_MS)
    expect(page.locator("#routes-chart rect").first).to_be_visible()
    expect(page.locator("#backlog .meter[data-group=executor]")).to_be_visible()
    expect(page.locator("#spark polyline")).to_be_attached(timeout=WAIT_MS)
    return order_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oee-screenshots-") as folder:
        root = Path(folder)
        root.chmod(0o755)  # the embedded PostgreSQL runs as an unprivileged user under root
        with servers(root) as env, system(
                env["REDIS_URL"], env["DATABASE_URL"], f"screenshots-{secrets.token_hex(3)}",
                root / "logs", OEE_AUTH="required",
                OEE_EXECUTION_LATENCY_MS="300-600") as running:
            key = asyncio.run(create_key(env["DATABASE_URL"], f"desk-{secrets.token_hex(3)}"))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                page = browser.new_context(viewport=VIEWPORT).new_page()
                show_orders(page, running.url, key)
                page.screenshot(path=args.out, full_page=True)
                browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
