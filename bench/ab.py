"""Two versions of the engine measured in turn, on the same hour: ``oee bench`` against the
code of a git revision (``--before``, exported to a temporary folder) and against this
checkout's code as it is (``after``), alternately. Not a test (it only measures):

    python -m bench.ab --before main --pairs 3 --out pairs.jsonl -- --spawn --rate 250 \\
        --duration 20 --quote-latency-ms 0 --execution-latency-ms 0

The machine's speed drifts through an hour by more than most changes save, so a change is
judged only against runs of the code before it made beside it: pair 1 runs before then
after, pair 2 after then before, and so on, so that a drift falls on both sides alike. Each
run imports every module from its side's tree (``PYTHONPATH`` and the working directory),
the services it spawns included. ``--out`` gets each run's result as one JSON line (its
side, commit, pair and command, as the pair files of ``docs/bench/`` hold them); then the
table of each load's runs, ``oee bench --curve``'s columns, and each side's medians.

Even a minute apart, two runs of the same code differ: on 2026-12-07, twelve runs of one
engine at 250 orders/s spent 3.35-4.15 ms of CPU an order, and every process moved
together, the load generator too. So the table also gives each run's CPU per order at the
load generator's median (``at the generator's median``): the engine's, times the median of
the generator's CPU per order over the load's runs, over this run's. On those twelve runs
that figure spread 3.82-3.99 ms (coefficient of variation 1.4% against 5.7%). It holds
only while the change leaves the generator's work alone: a change to the bench, or to what
the gateway answers it, moves the generator too, and then only the plain figure counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from bench.curve import HEADER, engine_cpu_ms, line, row
from bench.report import Result

SIDES = ("before", "after")
CHECKOUT = Path(__file__).resolve().parents[1]


class Side(msgspec.Struct, frozen=True):
    name: str
    tree: Path
    commit: str


def git(*args: str, cwd: Path = CHECKOUT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def export(revision: str, folder: Path) -> Side:
    """The code of ``revision``, written into ``folder`` (the repository is only read)."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    archive = subprocess.Popen(["git", "archive", commit], cwd=CHECKOUT,
                               stdout=subprocess.PIPE)
    assert archive.stdout is not None
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        # The data filter (Python 3.11.4 and newer) refuses links out of the folder.
        safe: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(folder, **safe)
    if archive.wait():
        raise SystemExit(f"git archive {commit} failed")
    return Side("before", folder, commit[:12])


def this_checkout() -> Side:
    """This checkout as it is: its commit, marked where files differ from it."""
    commit = git("rev-parse", "HEAD")[:12]
    changed = git("status", "--porcelain", "--untracked-files=no")
    return Side("after", CHECKOUT, commit + ("+changes" if changed else ""))


def turns(pairs: int) -> Iterator[tuple[int, str]]:
    """(pair, side) in the order they run: before first in odd pairs, after in even."""
    for pair in range(1, pairs + 1):
        for side in SIDES if pair % 2 else reversed(SIDES):
            yield pair, side


def environment(side: Side) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(side.tree)}


def check_imports(side: Side) -> None:
    """Refuse to measure a side whose processes would import another tree's code (an
    installed copy that shadows it)."""
    found = subprocess.run(
        [sys.executable, "-c", "import bench, services, shared; "
         "print(*(m.__file__ for m in (bench, services, shared)), sep='\\n')"],
        cwd=side.tree, env=environment(side), check=False, capture_output=True, text=True)
    if found.returncode:
        raise SystemExit(f"the {side.name} side cannot import its code: {found.stderr}")
    strays = [path for path in found.stdout.split() if not Path(path).is_relative_to(side.tree)]
    if strays:
        raise SystemExit(f"the {side.name} side would import {strays[0]}, not {side.tree}")


def measure(side: Side, bench_args: list[str]) -> list[dict[str, Any]]:
    """Each JSON line ``oee bench`` printed for one run on ``side``'s code."""
    args = [*bench_args, *([] if "--json" in bench_args else ["--json"])]
    ran = subprocess.run([sys.executable, "-m", "services.cli", "bench", *args],
                         cwd=side.tree, env=environment(side), stdout=subprocess.PIPE,
                         text=True, check=False)
    if ran.returncode:
        raise SystemExit(f"oee bench on the {side.name} side exited with {ran.returncode}")
    return [json.loads(text) for text in ran.stdout.splitlines() if text.startswith("{")]


def record(side: Side, pair: int, bench_args: list[str], result: dict[str, Any]) -> str:
    command = " ".join(["oee", "bench", *bench_args])
    return json.dumps({"side": side.name, "commit": side.commit, "pair": pair,
                       "command": command, "result": result})


class Run(msgspec.Struct, frozen=True):
    """One run of a load: its result, and the engine's CPU per order at the load
    generator's median (``None`` where a run has no generator's figure)."""

    pair: int
    side: str
    result: Result
    at_generator_median: float | None


def runs_of(lines: list[dict[str, Any]], load: str) -> list[Run]:
    found = [(run, msgspec.convert(run["result"], Result)) for run in lines
             if run["result"].get("load", "run") == load]
    generators = [result.cpu_ms_per_order.get("generator", 0.0) for _, result in found]
    # A run without the generator's figure (0) neither gets nor moves the median.
    measured = [generator for generator in generators if generator > 0]
    median = statistics.median(measured) if measured else 0.0
    return [Run(run["pair"], run["side"], result,
                round(engine_cpu_ms(result) * median / generator, 4)
                if generator > 0 and median > 0 else None)
            for (run, result), generator in zip(found, generators, strict=True)]


def medians(side: str, runs: list[Run]) -> str:
    e2e = [r.result.end_to_end_ms for r in runs]
    held = [r.at_generator_median for r in runs if r.at_generator_median is not None]
    at_median = (f" ({statistics.median(held):g} at the generator's median)"
                 if len(held) == len(runs) else "")
    return (f"{side}: medians of {len(runs)}: CPU ms/order "
            f"{statistics.median(engine_cpu_ms(r.result) for r in runs):g}{at_median}, "
            f"end to end p50 {statistics.median(t.get('p50', 0.0) for t in e2e):g} ms, "
            f"p99 {statistics.median(t.get('p99', 0.0) for t in e2e):g} ms")


def report(lines: list[dict[str, Any]]) -> str:
    """Per load: each run's row, with its CPU per order at the generator's median, then
    each side's medians."""
    out: list[str] = []
    for load in dict.fromkeys(r["result"].get("load", "run") for r in lines):
        out += [f"{load}:", line(("pair", "side", *HEADER[1:], "at the generator's median")),
                line(("---",) * (len(HEADER) + 2))]
        runs = runs_of(lines, load)
        for run in runs:
            held = run.at_generator_median
            out.append(line((str(run.pair), run.side, *row(load, run.result)[1:],
                             "" if held is None else f"{held:g}")))
        out += [medians(side, found) for side in SIDES
                if (found := [r for r in runs if r.side == side])]
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="a git revision: the code before")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, one per result")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER,
                        help="after --: oee bench's arguments")
    args = parser.parse_args()
    bench_args = [a for a in args.bench_args if a != "--"]
    with tempfile.TemporaryDirectory(prefix="oee-ab-") as folder:
        sides = {"before": export(args.before, Path(folder)), "after": this_checkout()}
        for side in sides.values():
            check_imports(side)
        lines: list[dict[str, Any]] = []
        with args.out.open("a") as out:
            for pair, name in turns(args.pairs):
                side = sides[name]
                sys.stderr.write(f"ab: pair {pair}, {name} ({side.commit})\n")
                for result in measure(side, bench_args):
                    text = record(side, pair, bench_args, result)
                    out.write(text + "\n")
                    out.flush()
                    lines.append(json.loads(text))
    print(report(lines))


if __name__ == "__main__":
    main()
