"""The Grafana dashboard that ships in deploy/grafana: the compose `observability` profile
provisions it with its Prometheus, every panel reads that datasource, and it shows every
series the engine measures, with throughput, each stage's latency, every group's backlog,
the dead letters, the WebSockets and each process's CPU among them. (That each metric it
queries exists: test_queried_metrics.py.)"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

import shared.metrics
from tests.unit.test_queried_metrics import SUFFIXES, dashboard_exprs, panels, queried

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "oee.json"


def load(path: Path) -> Any:
    return json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(
        path.read_text())


def grafana_mounts() -> dict[PurePosixPath, Path]:
    """Where each of Grafana's mounts appears inside its container, and what it shows."""
    spec = load(ROOT / "compose.yaml")["services"]["grafana"]
    assert spec["profiles"] == ["observability"]
    mounts = {}
    for volume in spec["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[PurePosixPath(target)] = ROOT / source
    return mounts


def test_compose_provisions_the_datasource_and_the_dashboard() -> None:
    mounts = grafana_mounts()
    provisioning = mounts[PurePosixPath("/etc/grafana/provisioning")]
    [datasource] = load(provisioning / "datasources" / "prometheus.yml")["datasources"]
    prometheus = load(ROOT / "compose.yaml")["services"]["prometheus"]
    assert datasource["url"] == f"http://prometheus:{prometheus['ports'][0].split(':')[1]}"
    [provider] = load(provisioning / "dashboards" / "oee.yml")["providers"]
    assert mounts[PurePosixPath(provider["options"]["path"])] == DASHBOARD.parent
    for panel in panels(load(DASHBOARD)):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]


def test_every_panel_has_a_place_of_its_own_and_every_query_a_name() -> None:
    dashboard = load(DASHBOARD)
    found = panels(dashboard)
    assert len({p["id"] for p in found}) == len(found)
    for panel in found:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24, panel["title"]
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(set(refs)) == len(refs), panel["title"]
        assert panel["type"] == "row" or refs, f"{panel['title']} queries nothing"


def test_the_dashboard_shows_every_series_the_engine_measures() -> None:
    shown = {name for expr in dashboard_exprs() for name in queried(expr)}
    families = [next(iter(metric.describe())) for metric in vars(shared.metrics).values()
                if isinstance(metric, MetricWrapperBase)]
    assert len(families) > 15
    missing = {f.name for f in families
               if not {f.name + suffix for suffix in SUFFIXES[f.type]} & shown}
    assert not missing, f"the dashboard does not show {sorted(missing)}"
    assert {"oee_orders_accepted_total", "oee_group_backlog", "oee_dead_letters_held",
            "oee_ws_subscribers", "process_cpu_seconds_total"} <= shown
