"""Where each service's CPU goes, by Python function: ``oee bench`` run with the named
services sampling their own stacks on their CPU clocks (``bench.sampler``), then each
service's functions with the largest shares of its samples. Not a test (it only measures):

    python -m bench.cpuprofile --services router,executor -- --spawn --rate 1000 \\
        --duration 30 --quote-latency-ms 0 --execution-latency-ms 0

A function's own share counts the samples taken in it, its inclusive share those taken in
it or in anything it called. The raw stacks stay in ``--out`` (a temporary folder unless
given), one file a process, in py-spy's raw format.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bench.harness import bench_with_site

# Every process oee bench starts imports this first: a service that OEE_CPU_PROFILE names
# samples its CPU (bench.sampler).
SITE = """
import os, sys
if os.environ.get("OEE_CPU_PROFILE"):
    from bench.sampler import start_if_named
    start_if_named(os.environ, sys.orig_argv)
"""
# A frame as the sampler writes it: "qualname (file:line)".
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*):\d+\)$")
_LIBRARY = re.compile(r".*/(?:site-packages|lib/python3\.\d+)/")
# The engine's own code, whose inclusive shares say where a service's work goes (the frames
# that start a process hold every sample).
_OWN = ("services/", "shared/")
_ENTRY = "services/cli/"


def function_of(frame: str) -> str:
    """A frame without its line: one function's samples together, whichever line."""
    found = _FRAME.match(frame)
    if found is None:
        return frame
    return f"{found['function']} ({_short(found['file'])})"


def _short(path: str) -> str:
    """A library's file from its package on; one of the engine's from the checkout."""
    library = _LIBRARY.match(path)
    if library is not None:
        return path[library.end():]
    return path.removeprefix(os.getcwd() + os.sep)


def shares(lines: Iterable[str]) -> tuple[int, dict[str, float], dict[str, float]]:
    """The samples in all, and each function's own and inclusive share of them (%)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        functions = [function_of(frame) for frame in stack.split(";")]
        own[functions[-1]] += samples
        for function in set(functions):
            inclusive[function] += samples
    if not total:
        return 0, {}, {}
    return (total, {f: 100 * n / total for f, n in own.items()},
            {f: 100 * n / total for f, n in inclusive.items()})


def _is_engine(function: str) -> bool:
    file = function.rpartition(" (")[2]
    return file.startswith(_OWN) and not file.startswith(_ENTRY) and not function.startswith(
        "run (shared/process.py")


def report(service: str, files: list[Path], top: int) -> str:
    total, own, inclusive = shares(
        line for path in files for line in path.read_text().splitlines())
    out = [f"## {service}: {total} samples of its CPU ({len(files)} process(es))",
           "own %   function"]
    out += [f"{share:5.1f}   {f}" for f, share in sorted(own.items(), key=lambda i: -i[1])[:top]]
    out.append("incl %  function (the engine's own, past the process's start)")
    engine = {f: share for f, share in inclusive.items() if _is_engine(f)}
    out += [f"{share:5.1f}   {f}"
            for f, share in sorted(engine.items(), key=lambda i: -i[1])[:top]]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpuprofile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", default="gateway,router,executor,persister",
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="where the raw stacks go")
    parser.add_argument("--top", type=int, default=30, help="functions a list")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER,
                        help="after --: oee bench's arguments")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="oee-cpuprofile-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {"OEE_CPU_PROFILE": args.services, "OEE_CPU_PROFILE_DIR": str(out)}
    with tempfile.TemporaryDirectory() as scratch:
        code = bench_with_site(SITE, env, args.bench_args, Path(scratch))
    if code:
        sys.exit(code)
    for service in args.services.split(","):
        files = sorted(out.glob(f"{service}-*.txt"))
        if files:
            print(report(service, files, args.top), end="\n\n")
    print(f"raw stacks: {out}")


if __name__ == "__main__":
    main()
