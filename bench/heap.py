"""What one WebSocket subscriber costs the gateway's heap, and whose code holds it. Not a test
(it only measures):

    python -m bench.heap --at 500,2000 -- --spawn --ws --rate 100 --duration 25 ...

runs ``oee bench`` with the arguments after ``--``, its gateway tracing every allocation
(``tracemalloc``, switched on by a ``sitecustomize`` module in a temporary folder on
``PYTHONPATH``). The gateway takes a snapshot of its heap when its subscribers
(``oee_ws_subscribers``) first reach each count of ``--at``; the tool then prints the
bench's own output and what the heap grew by between the first and the last snapshot,
divided by the subscribers that came in between: in all, by owner (the package, or the
project's file, whose code is innermost where the memory was allocated; the standard
library's own frames are looked through), and the lines that hold the most. Tracing slows
the gateway several times over: read the bench's latencies from a run without it.
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

from bench.harness import bench_with_site

# The gateway's process takes a snapshot each time its subscribers first reach the next
# count: from a thread, as the event loop is busy serving them.
SITE = '''
import os, sys, threading, time
_folder = os.environ.get("OEE_BENCH_HEAP_FOLDER")
if _folder and "gateway" in sys.argv[1:]:
    import tracemalloc
    tracemalloc.start({DEPTH})

    def _watch():
        from prometheus_client import REGISTRY
        counts = [int(n) for n in os.environ["OEE_BENCH_HEAP_AT"].split(",")]
        while counts:
            subscribers = int(REGISTRY.get_sample_value("oee_ws_subscribers") or 0)
            if subscribers >= counts[0]:
                counts.pop(0)
                # Holds the GIL: no subscriber comes or goes while it is taken.
                snapshot = tracemalloc.take_snapshot()
                name = os.path.join(_folder, f"{{time.monotonic():020.6f}}-{{subscribers}}")
                snapshot.dump(name + ".part")
                os.rename(name + ".part", name + ".heap")
            time.sleep(0.2)

    threading.Thread(target=_watch, name="oee-bench-heap", daemon=True).start()
'''

# Frames deep enough to reach the code that asked, through asyncio's and the loop's own.
DEPTH = 16
STDLIB = (sysconfig.get_paths()["stdlib"], "<")
ROOT = Path(__file__).resolve().parents[1]


def owner(traceback: tracemalloc.Traceback) -> str:
    """Whose code is innermost in ``traceback``: a package's name, or the project's file."""
    for frame in reversed(traceback):
        name = frame.filename
        if "site-packages" in name:
            return Path(name.split("site-packages", 1)[1]).parts[1]
        if name.startswith(str(ROOT)):
            return str(Path(name).relative_to(ROOT))
        if not name.startswith(STDLIB):
            return Path(name).name  # this tool's own module, in a temporary folder
    return "python (the standard library and the loop's C code)"


def innermost(traceback: tracemalloc.Traceback) -> str:
    """The line that allocated, its file named from its package or the project's root."""
    frame = traceback[-1]
    name = frame.filename.split("site-packages/", 1)[-1]
    for root in (str(ROOT), STDLIB[0]):
        if name.startswith(root):
            name = str(Path(name).relative_to(root))
    return f"{name}:{frame.lineno}"


def per_subscriber(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot,
                   subscribers: int, top: int = 15) -> dict[str, object]:
    """The heap's growth from ``first`` to ``last``, per subscriber that came in between."""
    owners: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    for stat in last.compare_to(first, "traceback"):
        owners[owner(stat.traceback)] += stat.size_diff
        lines[innermost(stat.traceback)] += stat.size_diff
    return {
        "subscribers": subscribers,
        "bytes": round(sum(owners.values()) / subscribers),
        "by_owner": {name: round(size / subscribers)
                     for name, size in owners.most_common() if abs(size) >= subscribers},
        "top_lines": {line: round(size / subscribers) for line, size in lines.most_common(top)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.heap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at", default="500,2000",
                        help="subscriber counts to take the gateway's snapshots at "
                             "(comma-separated, rising; the first and the last are compared)")
    parser.add_argument("bench", nargs=argparse.REMAINDER,
                        help="-- then the arguments of oee bench (with --spawn --ws)")
    args = parser.parse_args()
    counts = sorted(int(n) for n in args.at.split(","))
    if len(counts) < 2 or counts[0] < 0:
        parser.error("--at needs two subscriber counts or more")
    with tempfile.TemporaryDirectory(prefix="oee-heap-") as scratch:
        folder = Path(scratch, "heap")
        folder.mkdir()
        code = bench_with_site(SITE.format(DEPTH=DEPTH),
                               {"OEE_BENCH_HEAP_FOLDER": str(folder),
                                "OEE_BENCH_HEAP_AT": ",".join(map(str, counts))},
                               args.bench, Path(scratch))
        taken = sorted(folder.glob("*.heap"))
        if len(taken) < 2:
            print(f"bench.heap: the gateway reached {len(taken)} of the counts {args.at}",
                  file=sys.stderr)
            return code or 1
        came = int(taken[-1].stem.rsplit("-", 1)[1]) - int(taken[0].stem.rsplit("-", 1)[1])
        if came <= 0:
            print(f"bench.heap: no subscriber came between the snapshots ({args.at})",
                  file=sys.stderr)
            return code or 1
        grown = per_subscriber(tracemalloc.Snapshot.load(str(taken[0])),
                               tracemalloc.Snapshot.load(str(taken[-1])), came)
        print(json.dumps({"heap_per_subscriber": grown}, indent=1))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
