"""The README's screenshots of the dashboard, one per view:

    python -m bench.screenshots [--out-dir docs]

It starts every service (over REDIS_URL and DATABASE_URL, or embedded servers when they are
unset, as ``oee up`` does) with keys on, makes an operator key, and, in the machine's
Chromium (Debian's ``chromium``, driven by Playwright; no browser is downloaded), plays the
scenes below and takes each view:

* ``dashboard-open-orders.png``: the key entered, a market order placed on the page and
  confirmed while more, through several routes, arrive over the account's live stream;
  then limit and sniper orders placed, waiting, each with its cancel;
* ``dashboard-launches.png``: pools launched, one of them the pool a sniper waited for;
* ``dashboard-overview.png``: the whole page by then;
* ``dashboard-order-form.png``: a sniper order the API refused, its message on the field;
* ``dashboard-order-detail.png``: the market order opened whole: timeline, every route
  considered and why one won, its attempt and signature.

``tests/e2e/test_dashboard*.py`` play the same scenes and check what the page shows."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
from pathlib import Path
from typing import Any

import base58
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
# Far above any price the seeded market reaches: a limit order at it stays open.
NEVER = "100000"


def new_mint() -> str:
    """A mint no pool has: a base58 public key of 32 random bytes."""
    return base58.b58encode(secrets.token_bytes(32)).decode()


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


def launch_pool(url: str, key: str, symbol: str, mint: str, venue: str = "raydium",
                price: str = "0.001") -> dict[str, Any]:
    """Launch a token and its pool as an operator does (POST /admin/pools)."""
    headers = {"x-api-key": key} if key else {}
    body = {"mint": mint, "symbol": symbol, "decimals": 6, "venue": venue, "price": price,
            "liquidity": "500"}
    response = httpx.post(f"{url}/admin/pools", json=body, headers=headers, timeout=10)
    if response.status_code != 201:
        raise RuntimeError(f"launch refused: {response.text}")
    launched: dict[str, Any] = response.json()
    return launched


def enter_key(page: Page, url: str, key: str) -> None:
    page.goto(f"{url}/")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    page.fill("#key-input", key)
    page.press("#key-input", "Enter")
    expect(dialog).to_be_hidden()
    expect(page.locator("#feed-state")).to_have_text("live", timeout=WAIT_MS)


def place(page: Page, order_type: str, **fields: str) -> None:
    """Fill the form for an order of ``order_type`` (fields by their input's name; the
    others of that type emptied) and place it."""
    page.check(f"#order-form [name=type][value={order_type}]")
    for name in ("mint", "limitPrice", "maxPrice", "expiresAt", "ttlSeconds"):
        field = page.locator(f"#order-form [name={name}]")
        if field.is_visible():
            field.fill("")
    for name, value in fields.items():
        field = page.locator(f"#order-form [name={name}]")
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    page.click("#execute")


def placed(page: Page, status: str) -> str:
    """The id of the order placed last on the page, once it reached ``status``."""
    expect(page.locator("#live-statuses li").last).to_have_attribute(
        "data-status", status, timeout=WAIT_MS)
    order_id = page.locator("#live-order").get_attribute("title")
    if not order_id:
        raise RuntimeError("the page shows no order id")
    return order_id


def show_orders(page: Page, url: str, key: str) -> str:
    """The overview: the key entered, an order placed on the page and confirmed, the
    ``OTHERS`` confirmed too, the charts drawn. Returns the page's order's id."""
    enter_key(page, url, key)
    page.click("#execute")
    order_id = placed(page, "confirmed")
    for shown in [order_id, *submit_over_http(url, key, OTHERS)]:
        row = page.locator(f'#orders-body tr[data-order-id="{shown}"]')
        expect(row).to_have_attribute("data-status", "confirmed", timeout=WAIT_MS)
    expect(page.locator("#routes-chart rect").first).to_be_visible()
    expect(page.locator("#backlog .meter[data-group=executor]")).to_be_visible()
    expect(page.locator("#spark polyline")).to_be_attached(timeout=WAIT_MS)
    return order_id


def show_refusal(page: Page) -> None:
    """A sniper order whose tokenOut is no mint: the API's message on the mint's field."""
    place(page, "sniper", mint="NEWCOIN", amount="0.2", maxPrice="0.01", ttlSeconds="600")
    expect(page.locator("#e-mint")).to_contain_text("base58 public key")


def show_open_orders(page: Page, mints: list[str]) -> list[str]:
    """A limit order that waits for its price and a sniper for each of ``mints``, placed
    on the page and listed open. Returns their ids."""
    place(page, "limit", tokenIn="SOL", tokenOut="USDC", amount="0.5", limitPrice=NEVER,
          ttlSeconds="3600")
    ids = [placed(page, "open")]
    for mint in mints:
        place(page, "sniper", tokenIn="SOL", mint=mint, amount="0.1", maxPrice="0.01")
        ids.append(placed(page, "open"))
    for order_id in ids:
        expect(page.locator(f'#open-body tr[data-order-id="{order_id}"] td.condition')
               ).not_to_have_text("…", timeout=WAIT_MS)
    return ids


def show_launch(page: Page, url: str, key: str, mint: str) -> str:
    """Pools launched, one for ``mint``: the page lists each as it comes. Returns the
    symbol launched for ``mint``."""
    launch_pool(url, key, "T" + secrets.token_hex(2).upper(), new_mint(), "meteora", "0.02")
    symbol = "S" + secrets.token_hex(2).upper()
    launch_pool(url, key, symbol, mint)
    expect(page.locator(f'#launches-list li[data-mint="{mint}"]')).to_be_visible(
        timeout=WAIT_MS)
    return symbol


def show_detail(page: Page, order_id: str) -> None:
    """The order opened from its row: the dialog with its events drawn."""
    page.click(f'button[data-open="{order_id}"] >> nth=0')
    dialog = page.locator("#order-detail")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".detail-timeline li").first).to_be_visible(timeout=WAIT_MS)


def take_all(page: Page, url: str, key: str, out: Path) -> None:
    def shoot(view: str, selector: str | None = None) -> None:
        # Animations end first: a row that just arrived is caught after its flash.
        path = out / f"dashboard-{view}.png"
        if selector is None:
            page.screenshot(path=path, full_page=True, animations="disabled")
        else:
            page.locator(selector).screenshot(path=path, animations="disabled")

    order_id = show_orders(page, url, key)
    mint = new_mint()
    show_open_orders(page, [mint, new_mint()])
    shoot("open-orders", ".open-orders")
    show_launch(page, url, key, mint)
    shoot("launches", ".launches")
    shoot("overview")
    show_refusal(page)
    shoot("order-form", ".submit")
    show_detail(page, order_id)
    shoot("order-detail", "#order-detail")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=Path("docs"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oee-screenshots-") as folder:
        root = Path(folder)
        root.chmod(0o755)  # the embedded PostgreSQL runs as an unprivileged user under root
        with servers(root) as env, system(
                env["REDIS_URL"], env["DATABASE_URL"], f"screenshots-{secrets.token_hex(3)}",
                root / "logs", OEE_AUTH="required",
                OEE_EXECUTION_LATENCY_MS="300-600") as running:
            key = asyncio.run(create_key(env["DATABASE_URL"], f"desk-{secrets.token_hex(3)}",
                                         operator=True))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                page = browser.new_context(viewport=VIEWPORT).new_page()
                take_all(page, running.url, key, args.out_dir)
                browser.close()
    print(f"wrote the dashboard's views to {args.out_dir}")


if __name__ == "__main__":
    main()
