"""A test run leaves the work tree as it found it: a test writes only to temporary folders.

Registered from ``tests/conftest.py``. It compares ``git status`` (and each listed file's
contents) before and after the run, so a developer's own uncommitted work does not fail it,
while a test that writes into the repository does, even over a file already changed. Outside
a git work tree it does nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

_BEFORE = pytest.StashKey[str | None]()


def tree_state(root: Path) -> str | None:
    """Every changed or untracked file with its contents' hash; None without git."""
    try:
        status = _git(root, "status", "--porcelain", "--untracked-files=all", "-z")
        paths = [entry[3:] for entry in status.split("\0") if entry[3:]]
        existing = [p for p in paths if (root / p).is_file()]
        hashes = _git(root, "hash-object", "--", *existing).split() if existing else []
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    contents = dict(zip(existing, hashes, strict=True))
    return "\n".join(f"{entry[:2]} {entry[3:]} {contents.get(entry[3:], '-')}"
                     for entry in sorted(status.split("\0")) if entry)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          timeout=60, check=True).stdout


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = tree_state(session.config.rootpath)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    after = tree_state(session.config.rootpath)
    if after is None or after == before:
        return
    changed = sorted(set(after.splitlines()) ^ set(before.splitlines()))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "the test run changed the work tree", red=True)
        for line in changed:
            reporter.write_line(f"  {line}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
