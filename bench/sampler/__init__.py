"""Python stacks sampled on a process's CPU clock: ``start`` arms a timer that counts only
the CPU the process spends (``ITIMER_PROF``), and each tick records the Python stack running
then. Time a process spends switched out, or waiting, is never sampled, where a sampler by
wall time (py-spy's) charges it to whatever line the process was on. C code (a socket write,
msgspec decoding) is charged to the Python line that runs next, as a signal handler runs
only between Python instructions.

``python -m bench.cpuprofile`` has every process of a bench run import ``start_if_named``
first (``bench.harness.bench_with_site``), so that each process of a named service samples
itself."""

from __future__ import annotations

import collections
import os
import signal
import threading
from pathlib import Path
from types import FrameType

# A sample each millisecond of CPU asked; the kernel counts a process's CPU time in its
# ticks (every 4 ms at 250 Hz), so samples come at most once a tick.
INTERVAL_S = 0.001
# The stacks are written this often, as well as at exit: a process stopped by a signal
# that skips the interpreter's exit handlers still leaves its samples.
WRITE_EVERY_S = 5.0


class Sampler:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.counts: collections.Counter[str] = collections.Counter()

    def start(self) -> None:
        signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, INTERVAL_S, INTERVAL_S)

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        self.write()

    def write(self) -> None:
        """The stacks so far, one line each, py-spy's raw format: frames outermost first,
        separated by ``;``, then a space and the samples."""
        lines = [f"{stack} {count}\n" for stack, count in list(self.counts.items())]
        self.out.write_text("".join(lines))

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        frames = []
        while frame is not None:
            code = frame.f_code
            frames.append(f"{code.co_qualname} ({code.co_filename}:{frame.f_lineno})")
            frame = frame.f_back
        self.counts[";".join(reversed(frames))] += 1


def start(out: Path) -> Sampler:
    """Samples this process until it exits, into ``out``."""
    import atexit

    sampler = Sampler(out)
    sampler.start()
    atexit.register(sampler.stop)

    def keep_writing() -> None:
        while True:
            threading.Event().wait(WRITE_EVERY_S)
            sampler.write()

    threading.Thread(target=keep_writing, name="cpu-sampler", daemon=True).start()
    return sampler


def service_of(argv: list[str]) -> str | None:
    """The service a command line runs (``python -m services.cli executor``), if any."""
    for at, word in enumerate(argv[:-1]):
        if word == "services.cli":
            return argv[at + 1]
    return None


def start_if_named(environ: os._Environ[str] | dict[str, str], argv: list[str]) -> None:
    """Samples this process if ``OEE_CPU_PROFILE`` (comma-separated) names its service,
    into ``OEE_CPU_PROFILE_DIR/<service>-<pid>.txt``."""
    named = environ.get("OEE_CPU_PROFILE", "").split(",")
    service = service_of(argv)
    if service is not None and service in named:
        start(Path(environ["OEE_CPU_PROFILE_DIR"]) / f"{service}-{os.getpid()}.txt")
