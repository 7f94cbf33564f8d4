"""Every metric the alert rules and the Grafana dashboard query is one the engine exports.
The exported names are read from the code: the metric objects the processes register (all
in ``shared.metrics``, and whatever the gateway's scrape adds) as prometheus-client names
their samples, and the default collectors' own (``process_cpu_seconds_total``...)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import services.gateway.metrics  # noqa: F401  (registers what the gateway's scrape adds)
import shared.metrics  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
# What Prometheus itself records for every target it scrapes.
PROMETHEUS_OWN = {"up"}
# The samples prometheus-client writes for a family of each type.
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": (
    "_bucket", "_sum", "_count", "_created"), "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",), "unknown": ("",)}

_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPINGS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAMES = re.compile(r"(?<![\w.$])[a-zA-Z_:][\w:]*")
_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
             "group_right", "offset", "bool", "inf", "nan"}


def exported() -> set[str]:
    names = set(PROMETHEUS_OWN)
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def queried(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: every name that is not a function, an
    aggregation, a keyword, a label, a string or a duration."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPINGS.sub(" ", text)
    return {m.group() for m in _NAMES.finditer(text)
            if m.group() not in _KEYWORDS and not text[m.end():].lstrip().startswith("(")}


def rule_exprs() -> list[str]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    return [rule["expr"] for group in loaded["groups"] for rule in group["rules"]]


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        found += [panel, *panels(panel)] if "panels" in panel else [panel]
    return found


def dashboard_exprs() -> list[str]:
    return [target["expr"] for path in DASHBOARDS
            for panel in panels(json.loads(path.read_text()))
            for target in panel.get("targets", [])]


def test_the_names_of_an_expression_are_found() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, group) (rate(oee_a_bucket{group=~"x|y",'
            ' le!="1e3"}[$__rate_interval]))) / on (group) group_left max(oee_b offset 5m)'
            ' > 1e3 and sum(increase(c:recorded[1h])) without (instance) or vector(0)'
            ' + label_replace(up, "service", "$1", "instance", "(.*)")')
    assert queried(expr) == {"oee_a_bucket", "oee_b", "c:recorded", "up"}


def test_the_engine_exports_what_the_alerts_need() -> None:
    names = exported()
    assert {"oee_orders_accepted_total", "oee_group_backlog", "oee_order_seconds_bucket",
            "process_cpu_seconds_total"} <= names
    assert "oee_orders_accepted" not in names  # a counter's samples end in _total


@pytest.mark.parametrize("source", ["alert rules", "dashboards"])
def test_every_queried_metric_is_exported(source: str) -> None:
    exprs = rule_exprs() if source == "alert rules" else dashboard_exprs()
    assert len(exprs) >= 10
    unknown = {name: expr for expr in exprs for name in queried(expr) - exported()}
    assert not unknown, f"{source} query metrics the engine does not export: {unknown}"
