"""The GC pause tool's summary: per service and generation, from each process's lines."""

from __future__ import annotations

import json
from pathlib import Path

from bench.gcpauses import SERVICES, SITE, summary


def test_pauses_are_summed_per_service_and_generation(tmp_path: Path) -> None:
    rows = {"gateway-11.jsonl": [(0, 1.5), (0, 2.5), (1, 40.0)],
            "gateway-12.jsonl": [(0, 3.0)], "executor-13.jsonl": [(2, 80.0)]}
    for name, pauses in rows.items():
        (tmp_path / name).write_text("".join(
            json.dumps({"generation": g, "ms": ms, "collected": 0}) + "\n" for g, ms in pauses))
    assert summary(tmp_path) == {
        "executor": {"gen2": {"count": 1, "max_ms": 80.0, "sum_ms": 80.0}},
        "gateway": {"gen0": {"count": 3, "max_ms": 3.0, "sum_ms": 7.0},
                    "gen1": {"count": 1, "max_ms": 40.0, "sum_ms": 40.0}},
    }


def test_the_site_module_compiles() -> None:
    compile(SITE.format(SERVICES=set(SERVICES)), "sitecustomize.py", "exec")
