"""The alert rules that ship in deploy/: Prometheus loads them, promtool finds them valid and
their unit tests (deploy/alerts.test.yml) pass, each rule is tested firing and quiet, each
carries a runbook, every service has its "down" rule, and the README's table lists them.

promtool is Debian's `prometheus` package. In CI a missing promtool fails the test
(`.ci/run` installs it); elsewhere it skips."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.unit import facts

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "alerts.yml"
RULE_TESTS = DEPLOY / "alerts.test.yml"
README = (ROOT / "README.md").read_text()


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"]]


def alert_names() -> set[str]:
    return {rule["alert"] for rule in rules()}


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    message = "promtool is missing: apt-get install -y prometheus (Debian's package)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("check", [
    ["check", "config", "deploy/prometheus.yml"],
    ["check", "rules", "deploy/alerts.yml"],
    ["test", "rules", "deploy/alerts.test.yml"],
], ids=lambda check: " ".join(check[:2]))
def test_promtool_passes(check: list[str]) -> None:
    done = subprocess.run([promtool(), *check], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_loads_the_rules_where_compose_mounts_them() -> None:
    config = PurePosixPath("/etc/prometheus/prometheus.yml")
    spec = load(ROOT / "compose.yaml")["services"]["prometheus"]
    mounts = {PurePosixPath(target): source for source, target, *_ in
              (volume.split(":") for volume in spec["volumes"])}
    assert mounts[config] == "./deploy/prometheus.yml"
    rule_files = load(DEPLOY / "prometheus.yml")["rule_files"]
    assert rule_files == ["alerts.yml"]
    for name in rule_files:
        assert mounts.get(config.parent / name) == f"./deploy/{name}"


def test_each_rule_is_tested_firing_and_quiet() -> None:
    outcomes: dict[str, set[bool]] = defaultdict(set)
    for test in load(RULE_TESTS)["tests"]:
        for case in test.get("alert_rule_test", []):
            outcomes[case["alertname"]].add(bool(case.get("exp_alerts")))
    assert {name: outcomes[name] for name in alert_names()} == {
        name: {True, False} for name in alert_names()}
    assert set(outcomes) <= alert_names(), "tests of rules that do not exist"


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_each_rule_says_how_bad_and_what_to_do(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning", "info")
    assert rule["annotations"]["summary"]
    runbook = rule["annotations"]["runbook"]
    # What it means, then what to look at and what to do: a command to run, at least.
    assert len(re.findall(r"[.!?](?:\s|$)", runbook)) >= 2, runbook
    assert re.search(r"`(?:oee|docker|curl) [^`]+`", runbook), runbook


def test_every_service_of_oee_up_has_its_down_rule() -> None:
    down = {rule["labels"]["service"]: rule["expr"] for rule in rules()
            if rule["alert"] == "OeeServiceDown"}
    assert set(down) == set(facts.services_of_oee_up())
    for service, expr in down.items():
        assert expr == f'absent(up{{service="{service}"}} == 1)'


def test_the_readme_lists_every_alert() -> None:
    listed = [facts.backticked(row[0])[0] for row in facts.table(README, "Alerts and dashboard")]
    assert sorted(listed) == sorted(alert_names())


@pytest.mark.parametrize("job", load(DEPLOY / "prometheus.yml")["scrape_configs"],
                         ids=lambda job: job["job_name"])
def test_every_scraped_process_is_labelled_with_its_service(job: dict[str, Any]) -> None:
    """The rules and the dashboard group processes by ``service``."""
    [relabel] = [r for r in job["relabel_configs"] if r["target_label"] == "service"]
    names = [name for config in job["dns_sd_configs"] for name in config["names"]]
    if relabel.get("source_labels") == ["__meta_dns_name"]:
        return  # each target found under its service's name
    assert names == [relabel["replacement"]]
