"""The container deployment runs what ``oee up`` runs: every service of the engine, each with
its own command, each scraped by Prometheus. A service added to ``oee up`` and forgotten in
``compose.yaml`` would accept orders that nothing ever handles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit import facts

ROOT = Path(__file__).resolve().parents[2]
SERVICES = facts.services_of_oee_up()


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def prometheus() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    return loaded


def scraped() -> dict[str, set[int]]:
    """Every compose service Prometheus finds by DNS, with the ports it scrapes it on."""
    ports: dict[str, set[int]] = {}
    for job in prometheus()["scrape_configs"]:
        for config in job.get("dns_sd_configs", []):
            for name in config["names"]:
                ports.setdefault(name, set()).add(int(config["port"]))
    return ports


def test_oee_up_starts_the_five_services() -> None:
    assert set(SERVICES) == {"gateway", "router", "executor", "persister", "trigger"}


def test_the_image_runs_oee() -> None:
    entrypoint = re.search(r"(?m)^ENTRYPOINT\s+(.+)$", (ROOT / "Dockerfile").read_text())
    assert entrypoint is not None and yaml.safe_load(entrypoint.group(1)) == ["oee"]


@pytest.mark.parametrize("service", SERVICES)
def test_compose_runs_each_service_with_its_own_command(service: str) -> None:
    spec = compose()["services"].get(service)
    assert spec is not None, f"compose.yaml has no {service!r} service"
    assert spec["command"] == [service], f"{service} runs {spec['command']}, not oee {service}"
    assert spec["build"] == ".", f"{service} does not run the engine's image"
    assert spec["restart"] == "unless-stopped"
    assert {"REDIS_URL", "DATABASE_URL"} <= set(spec["environment"])


def test_compose_runs_nothing_of_the_engine_that_oee_up_does_not() -> None:
    engine = {name for name, spec in compose()["services"].items() if spec.get("build") == "."}
    assert engine == {*SERVICES, "migrate"}
    assert compose()["services"]["migrate"]["command"] == ["migrate"]


@pytest.mark.parametrize("service", SERVICES)
def test_prometheus_scrapes_each_service_where_it_serves_metrics(service: str) -> None:
    environment = compose()["services"][service]["environment"]
    port = int(environment["PORT"] if service == "gateway" else environment["OEE_METRICS_PORT"])
    assert scraped().get(service) == {port}, f"Prometheus does not scrape {service} on {port}"


def test_prometheus_scrapes_only_services_compose_runs() -> None:
    assert set(scraped()) <= set(compose()["services"])
