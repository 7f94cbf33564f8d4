"""bench/sampler and bench/cpuprofile.py: stacks sampled on the CPU clock, summed by
function."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bench.cpuprofile import SITE, function_of, shares
from bench.harness import bench_with_site
from bench.sampler import Sampler, service_of


def burn(cpu_s: float) -> None:
    until = time.process_time() + cpu_s
    while time.process_time() < until:
        pass


def wait(wall_s: float) -> None:
    time.sleep(wall_s)  # the subject: a wait that takes no CPU, not a synchronisation


def test_cpu_is_sampled_and_waiting_is_not(tmp_path: Path) -> None:
    sampler = Sampler(tmp_path / "stacks.txt")
    sampler.start()
    try:
        burn(0.5)
        wait(0.3)
    finally:
        sampler.stop()
    total, own, _ = shares((tmp_path / "stacks.txt").read_text().splitlines())
    burned = sum(share for f, share in own.items() if f.startswith("burn "))
    waited = sum(share for f, share in own.items() if f.startswith("wait "))
    # The CPU clock ticks with the kernel (every 1-10 ms): at least 50 a second.
    assert total >= 25
    assert burned >= 90
    # At most the one signal pending as the wait began, handled as it was entered.
    assert waited * total / 100 <= 1.001


def test_a_function_is_summed_over_its_lines_and_counted_once_a_stack() -> None:
    lines = ["main (/x/a.py:1);step (/x/a.py:5);step (/x/a.py:9) 3",
             "main (/x/a.py:1);other (/x/b.py:2) 1"]
    total, own, inclusive = shares(lines)
    assert total == 4
    assert own == {"step (/x/a.py)": 75.0, "other (/x/b.py)": 25.0}
    assert inclusive == {"main (/x/a.py)": 100.0, "step (/x/a.py)": 75.0,
                         "other (/x/b.py)": 25.0}
    assert function_of("<lambda> (<string>:1)") == "<lambda> (<string>)"


def test_a_service_is_the_word_after_the_cli_module() -> None:
    assert service_of([sys.executable, "-m", "services.cli", "executor"]) == "executor"
    assert service_of([sys.executable, "-m", "services.cli"]) is None
    assert service_of([sys.executable, "-c", "pass"]) is None


def test_a_named_process_samples_itself_through_its_site(tmp_path: Path) -> None:
    """The site every process of a bench run imports is enough: the process names itself
    by its command line, and writes its stacks as it exits (here the bench's own process,
    at once, on an argument it does not know)."""
    out = tmp_path / "stacks"
    out.mkdir()
    code = bench_with_site(SITE, {"OEE_CPU_PROFILE": "bench", "OEE_CPU_PROFILE_DIR": str(out)},
                           ["--no-such-argument"], tmp_path)
    assert code != 0
    [written] = out.glob("bench-*.txt")
    assert written.name == f"bench-{written.stem.split('-')[1]}.txt"
