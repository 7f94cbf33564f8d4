"""The bench's count of each service's system calls, from the kernel's own counters."""

from __future__ import annotations

import os

from bench.cpu import Snapshot, pid_syscalls, syscalls_made


def test_a_process_s_writes_are_counted_as_it_makes_them() -> None:
    pid = os.getpid()
    [(_, writes_before)] = pid_syscalls([pid]).values()
    read_end, write_end = os.pipe()
    try:
        for _ in range(5):
            os.write(write_end, b"x")
    finally:
        os.close(read_end)
        os.close(write_end)
    [(_, writes_after)] = pid_syscalls([pid]).values()
    assert writes_after - writes_before >= 5


def test_a_process_that_ended_is_left_out() -> None:
    assert pid_syscalls([2**22 + 1]) == {}  # above the kernel's largest pid


def test_the_calls_made_between_two_snapshots_per_group() -> None:
    def taken(syscalls: dict[str, dict[str, tuple[int, int]]]) -> Snapshot:
        return Snapshot(0.0, {}, {}, syscalls)

    before = taken({"router": {"10": (100, 50)}, "executor": {"20": (7, 7)}})
    after = taken({"router": {"10": (130, 70), "11": (5, 4)},  # 11 started in between
                   "executor": {"21": (3, 2)}})  # 20 ended: what it made is not known
    assert syscalls_made(before, after) == {"router": (35, 24), "executor": (3, 2)}
