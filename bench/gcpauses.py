"""Python's garbage-collection pauses in each service during a bench run: the figures behind
the GC settings of ``shared.process.hold_many_objects`` and the gateway's. Not a test (it
only measures):

    python -m bench.gcpauses -- --spawn --ws --rate 200 --duration 55 ...

runs ``oee bench`` with the arguments after ``--``, every process it spawns reporting each
collection through ``gc.callbacks`` (a ``sitecustomize`` module in a temporary folder on
``PYTHONPATH``), then prints the bench's own output and, per service and generation, how
many collections ran and how long the longest and all of them took, from the moment the
process set its own thresholds (``shared.process.hold_many_objects``: the collections of
its imports are left out). The callback costs each collection a few microseconds.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.harness import bench_with_site

# Each process of a service appends one JSON line per collection to its own file.
SITE = '''
import gc, json, os, sys, time
_folder = os.environ.get("OEE_BENCH_GC_FOLDER")
_service = next((a for a in sys.argv[1:] if a in {SERVICES!r}), None)
if _folder and _service:
    _out = open(os.path.join(_folder, f"{{_service}}-{{os.getpid()}}.jsonl"), "a", buffering=1)
    _began = {{}}

    def _timed(phase, info):
        generation = info["generation"]
        if gc.get_threshold()[0] == 700:
            return  # Python's default: the process has not set its own yet (imports)
        if phase == "start":
            _began[generation] = time.perf_counter()
        elif generation in _began:
            ms = (time.perf_counter() - _began.pop(generation)) * 1000
            _out.write(json.dumps({{"generation": generation, "ms": round(ms, 3),
                                   "collected": info["collected"]}}) + "\\n")

    gc.callbacks.append(_timed)
'''

SERVICES = ("gateway", "router", "executor", "persister", "trigger")


def summary(folder: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Per service and generation: collections, the longest, and their sum, in ms."""
    pauses: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for path in folder.glob("*.jsonl"):
        service = path.stem.rsplit("-", 1)[0]
        for line in path.read_text().splitlines():
            row = json.loads(line)
            pauses[service][row["generation"]].append(row["ms"])
    return {service: {f"gen{generation}": {"count": len(ms), "max_ms": max(ms),
                                             "sum_ms": round(sum(ms), 1)}
                      for generation, ms in sorted(by_generation.items())}
            for service, by_generation in sorted(pauses.items())}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gcpauses", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", nargs=argparse.REMAINDER,
                        help="-- then the arguments of oee bench (with --spawn)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oee-gc-") as scratch:
        folder = Path(scratch, "pauses")
        folder.mkdir()
        code = bench_with_site(SITE.format(SERVICES=set(SERVICES)),
                               {"OEE_BENCH_GC_FOLDER": str(folder)}, args.bench, Path(scratch))
        print(json.dumps({"gc_pauses": summary(folder)}, indent=1))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
