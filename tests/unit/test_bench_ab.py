"""bench/ab.py: two versions measured in turn, each importing its own tree's code."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench import ab


def test_the_sides_take_turns_first() -> None:
    assert list(ab.turns(3)) == [(1, "before"), (1, "after"), (2, "after"), (2, "before"),
                                 (3, "before"), (3, "after")]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ab.CHECKOUT, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_revision_is_exported_whole_and_imports_its_own_code(tmp_path: Path) -> None:
    try:
        head = _git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    side = ab.export("HEAD", tmp_path)
    assert head.startswith(side.commit)
    assert (tmp_path / "bench" / "load.py").is_file()
    assert (tmp_path / "shared" / "appending.py").read_text() == _git(
        "show", "HEAD:shared/appending.py") + "\n"
    ab.check_imports(side)


def test_a_side_that_would_import_another_tree_is_refused(tmp_path: Path) -> None:
    # An empty folder: its processes would import an installed copy, or nothing.
    with pytest.raises(SystemExit, match=r"would import|cannot import"):
        ab.check_imports(ab.Side("before", tmp_path, "0" * 12))


def _run(side: str, pair: int, load: str, cpu: float, p50: float,
         generator: float = 9.0) -> dict[str, object]:
    result = {"accepted": 10, "confirmed": 10, "failed": 0, "refused": 0, "seconds": 1.0,
              "orders_per_s": 10.0, "end_to_end_ms": {"p50": p50, "p99": 2 * p50},
              "overhead_ms": {}, "stages_ms": {}, "projected_in_postgres_s": None,
              "pending_entries": {}, "load": load,
              "cpu_ms_per_order": {"gateway": cpu, "redis": cpu, "generator": generator}}
    return json.loads(ab.record(ab.Side(side, ab.CHECKOUT, "abc"), pair, ["--rate", "10"],
                                result))


def test_the_report_gives_each_run_and_each_sides_medians() -> None:
    lines = [_run("before", 1, "20/s", 1.0, 3.0), _run("after", 1, "20/s", 0.5, 2.0),
             _run("after", 2, "20/s", 0.75, 4.0), _run("before", 2, "20/s", 2.0, 5.0),
             _run("before", 1, "burst 10", 0.25, 9.0)]
    assert lines[0]["command"] == "oee bench --rate 10"
    text = ab.report(lines)
    assert text.count("| 1 | before |") == 2
    # The load generator's CPU is left out of the engine's.
    assert ("before: medians of 2: CPU ms/order 3 (3 at the generator's median), end to end"
            " p50 4 ms, p99 8 ms") in text
    assert ("after: medians of 2: CPU ms/order 1.25 (1.25 at the generator's median), end to"
            " end p50 3 ms, p99 6 ms") in text
    assert text.index("burst 10:") > text.index("after: medians")


def test_each_run_is_also_given_at_the_load_generators_median() -> None:
    # The same engine on a slower and a faster minute: every process, the generator too,
    # spent a third more on the slower one.
    lines = [_run("before", 1, "250/s", 2.0, 3.0, generator=1.2),
             _run("after", 1, "250/s", 1.5, 3.0, generator=0.9),
             _run("after", 2, "250/s", 2.0, 3.0, generator=1.2),
             _run("before", 2, "250/s", 1.5, 3.0, generator=0.9)]
    runs = ab.runs_of(lines, "250/s")
    # The generator's median is 1.05: 4.0 x 1.05 / 1.2 and 3.0 x 1.05 / 0.9.
    assert [run.at_generator_median for run in runs] == [3.5] * 4
    text = ab.report(lines)
    assert "| 1 | before |" in text and text.count("| 3.5 |") == 4
    assert "before: medians of 2: CPU ms/order 3.5 (3.5 at the generator's median)" in text


def test_a_run_without_the_generators_figure_is_given_as_it_is() -> None:
    lines = [_run("before", 1, "20/s", 1.0, 3.0, generator=0.0),
             _run("after", 1, "20/s", 0.5, 2.0)]
    runs = ab.runs_of(lines, "20/s")
    assert runs[0].at_generator_median is None
    # The median is of the runs that have the figure: the other run's own.
    assert runs[1].at_generator_median == 1.0
    assert "before: medians of 1: CPU ms/order 2, end to end" in ab.report(lines)
