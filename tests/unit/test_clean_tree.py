"""The check that a test run leaves the work tree as it found it, run on a repository of its
own: a test that writes a tracked file fails the run; a change made before the run does not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=repo, check=True, capture_output=True)


def run_tests(repo: Path, test: str) -> subprocess.CompletedProcess[str]:
    (repo / "test_it.py").write_text(test)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_it.py"],
        cwd=repo, capture_output=True, text=True, timeout=120,
        # No installed plugin is needed: each would cost the run its import.
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})


def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "conftest.py").write_text('pytest_plugins = ["tests.clean_tree"]\n')
    (repo / "picture.png").write_text("as committed\n")
    (repo / ".gitignore").write_text("__pycache__/\ntest_it.py\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "start")
    return repo


WRITES = """
from pathlib import Path

def test_writes() -> None:
    Path("picture.png").write_text("a new screenshot\\n")
"""
READS = """
from pathlib import Path

def test_reads() -> None:
    assert Path("picture.png").read_text()
"""


def test_a_test_that_writes_into_the_tree_fails_the_run(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    done = run_tests(repo, WRITES)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the test run changed the work tree" in done.stdout
    assert "picture.png" in done.stdout and "1 passed" in done.stdout


def test_one_that_writes_over_a_file_already_changed_fails_it_too(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    (repo / "picture.png").write_text("a developer's own change\n")
    done = run_tests(repo, WRITES)
    assert done.returncode == 1, done.stdout + done.stderr


def test_changes_made_before_the_run_do_not_fail_it(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    (repo / "picture.png").write_text("a developer's own change\n")
    (repo / "notes.txt").write_text("untracked\n")
    done = run_tests(repo, READS)
    assert done.returncode == 0, done.stdout + done.stderr
