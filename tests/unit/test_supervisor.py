"""How `oee up` restarts a service that exits: the delay doubles to a cap, starts again from
the first once the process has run a while, and after five crashes in a row at start-up
`oee up` stops. A fake clock: hours pass in no time."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bench.harness import System
from services.cli.supervisor import Backoff, GaveUp, Restarts
from services.cli.up import POLL_S, _supervise


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        assert self.now < 1000.0 + 3600, "still supervising after an hour"


def crash_after(restarts: Restarts, clock: Clock, ran_s: float) -> float:
    clock.now += ran_s
    delay = restarts.exited(("router", 0))
    clock.now += delay
    assert restarts.due() == [("router", 0)]
    restarts.started(("router", 0))
    return delay


def test_the_delay_doubles_then_it_gives_up_after_five_crashes_at_start_up() -> None:
    clock = Clock()
    restarts = Restarts(clock)
    restarts.started(("router", 0))
    assert [crash_after(restarts, clock, 0.5) for _ in range(4)] == [1, 2, 4, 8]
    clock.now += 0.5
    with pytest.raises(GaveUp) as gave_up:
        restarts.exited(("router", 0))
    assert gave_up.value.crashes == 5


def test_the_delay_stops_at_its_cap() -> None:
    clock = Clock()
    restarts = Restarts(clock, Backoff(give_up_after=100))
    restarts.started(("router", 0))
    delays = [crash_after(restarts, clock, 0.5) for _ in range(8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_process_that_ran_a_while_starts_again_after_the_first_delay() -> None:
    clock = Clock()
    restarts = Restarts(clock)
    restarts.started(("router", 0))
    assert [crash_after(restarts, clock, 0.5) for _ in range(3)] == [1, 2, 4]
    # Up for longer than start-up, not yet settled: the streak of crashes ends, the delay
    # keeps growing.
    assert crash_after(restarts, clock, 20) == 8
    assert [crash_after(restarts, clock, 0.5) for _ in range(4)] == [16, 30, 30, 30]
    # Settled: the next exit is met as the first.
    assert crash_after(restarts, clock, 61) == 1
    assert crash_after(restarts, clock, 0.5) == 2


def test_a_slot_is_due_only_once_its_delay_has_passed() -> None:
    clock = Clock()
    restarts = Restarts(clock)
    restarts.started(("executor", 1))
    assert not restarts.waiting(("executor", 1))
    clock.now += 100
    assert restarts.exited(("executor", 1)) == 1
    assert restarts.waiting(("executor", 1)) and restarts.due() == []
    clock.now += 0.99
    assert restarts.due() == []
    clock.now += 0.01
    assert restarts.due() == [("executor", 1)]


class Exited:
    def poll(self) -> int:
        return 3


class Running:
    def poll(self) -> None:
        return None


class FakeSystem:
    """A gateway that runs, and a router that has always exited again by the next look."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.processes: dict[str, list[Any]] = {"gateway": [Running()], "router": [Exited()]}
        self.starts: list[float] = []

    def start(self, service: str, index: int) -> None:
        assert (service, index) == ("router", 0)
        self.starts.append(self.clock.now)


def test_the_supervisor_restarts_with_the_backoff_then_stops_with_status_1(
        capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    system = FakeSystem(clock)
    restarts = Restarts(clock)
    for key in (("gateway", 0), ("router", 0)):
        restarts.started(key)
    assert _supervise(cast(System, system), restarts, clock.sleep) == 1
    # Each exit is seen at the next look, every POLL_S.
    gaps = [round(b - a, 1) for a, b in zip([1000.0, *system.starts], system.starts,
                                            strict=False)]
    assert gaps == [1.0, 2 + POLL_S, 4 + POLL_S, 8 + POLL_S]
    err = capsys.readouterr().err
    assert "router exited with code 3; starting it again in 1 s" in err
    assert "router exited 5 times in a row within 10 s of its start (last exit code 3)" in err
