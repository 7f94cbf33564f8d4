"""Every process's /metrics, read from the real processes and parsed with the
prometheus-client parser, after an order has gone through."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import System, system
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.01}
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[System]:
    logs: Path = tmp_path_factory.mktemp("metrics-logs")
    with system(redis_url, database_url, f"metrics-{secrets.token_hex(4)}", logs) as started:
        yield started


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    response = await client.get(url)
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith(("oee_", "process_", "python_")), family.name
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value)
    return samples


async def test_every_process_reports_its_part_of_an_order(running: System) -> None:
    urls = running.metrics_urls()
    assert set(urls) >= {"gateway-0", "router-0", "executor-0", "persister-0", "trigger-0"}
    async with httpx.AsyncClient(timeout=10) as client:
        submitted = await client.post(f"{running.url}/orders/execute", json=ORDER)
        assert submitted.status_code == 202 and submitted.json()["status"] == "pending"
        refused = await client.post(f"{running.url}/orders/execute",
                                    json={**ORDER, "tokenOut": "SOL"})
        assert refused.status_code == 400
        assert refused.json()["error"]["rule"] == "distinct_tokens", refused.text

        async def recorded() -> Samples | None:
            persister = await scrape(client, urls["persister-0"])
            confirmed = persister.get("oee_statuses_reached_total", {}).get(
                (("status", "confirmed"),), 0)
            return persister if confirmed >= 1 else None

        persister = await eventually(recorded, 20)
        gateway = await scrape(client, urls["gateway-0"])
        router = await scrape(client, urls["router-0"])
        executor = await scrape(client, urls["executor-0"])

    # One order accepted and one refused, each counted once.
    assert gateway["oee_orders_accepted_total"][()] == 1
    assert gateway["oee_orders_rejected_total"][(("rule", "distinct_tokens"),)] == 1
    assert {labels[0][1] for labels in gateway["oee_group_backlog"]} >= {
        "router", "executor", "persister"}
    assert sum(router["oee_routes_total"].values()) == 1
    assert {labels[0][1] for labels in router["oee_quote_seconds_count"]} == {
        "raydium", "meteora"}
    assert router["oee_routing_decision_seconds_count"][()] == 1
    assert executor["oee_attempts_total"][(("outcome", "landed"),)] == 1
    assert executor["oee_build_seconds_count"][()] == 1
    assert executor["oee_submit_to_confirm_seconds_count"][()] == 1
    assert executor["oee_order_seconds_count"][(("status", "confirmed"),)] == 1
    for samples, group in ((router, "router"), (executor, "executor"),
                           (persister, "persister")):
        assert samples["oee_queue_wait_seconds_count"][(("group", group),)] >= 1
