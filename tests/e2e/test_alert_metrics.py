"""The series the alert rules read, from the real processes: a submit refused for the rate
counted for its account and by its status code, PostgreSQL behind the log while the
persister is down and caught up once it is back, no dead letter; and the gateway's /metrics
as promtool lints them (Prometheus's naming conventions)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import System, system
from tests.helpers import ORDER, eventually

pytestmark = pytest.mark.e2e

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[System]:
    logs: Path = tmp_path_factory.mktemp("alert-metrics-logs")
    with system(redis_url, database_url, f"alerts-{secrets.token_hex(4)}", logs,
                OEE_RATE_LIMIT_PER_MIN="2") as started:
        yield started


async def scrape(client: httpx.AsyncClient, url: str) -> Samples:
    response = await client.get(f"{url}/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value)
    return samples


async def test_what_the_alerts_read_is_what_happened(running: System) -> None:
    running.kill("persister")
    async with httpx.AsyncClient(timeout=10) as client:
        answers = [await client.post(f"{running.url}/orders/execute", json=ORDER)
                   for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 429]
        assert answers[2].json()["error"]["rule"] == "rate_limited"

        async def behind() -> Samples | None:
            samples = await scrape(client, running.url)
            late = samples["oee_postgres_behind_seconds"][()]
            return samples if late >= 1.0 else None

        # Nothing records the orders: PostgreSQL falls behind, a second and more.
        samples = await eventually(behind, 20)
        assert samples["oee_rate_limited_total"] == {(("account", "local"),): 1.0}
        assert samples["oee_http_errors_total"] == {(("code", "429"),): 1.0}
        assert samples["oee_orders_accepted_total"][()] == 2
        assert samples["oee_dead_letters_held"][()] == 0

        running.start("persister", 0)

        async def caught_up() -> Samples | None:
            samples = await scrape(client, running.url)
            return samples if samples["oee_postgres_behind_seconds"][()] == 0 else None

        samples = await eventually(caught_up, 20)
        assert samples["oee_group_backlog"][(("group", "persister"),)] == 0
        assert samples["oee_dead_letters_held"][()] == 0


def test_the_gateways_metrics_keep_prometheus_naming_conventions(running: System) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is missing: apt-get install -y prometheus (Debian's package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    text = httpx.get(f"{running.url}/metrics", timeout=10).text
    assert "oee_postgres_behind_seconds" in text and "oee_rate_limited_total" in text
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
