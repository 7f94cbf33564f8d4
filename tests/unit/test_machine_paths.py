"""No tracked file names a folder of one machine: a temporary folder of a past run, a home,
a checkout. Such a path is true nowhere else, and says where someone worked, not what the
product does. A mention that is the product's own (a place the code itself uses) is listed
below with its reason. This file is left out of the scan: its examples are machine paths."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A path that starts at a folder of one machine; `/var/tmp` and `~/` are not matched.
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:tmp|root|work|home/[\w.-]+)(?:/[^\s\"'`)\]]*)?")

# (file, the path as written): why it may stay.
ALLOWED = {
    ("services/cli/embedded.py", "/tmp"): "where `oee up`, run as root, copies the embedded "
    "PostgreSQL's binaries so that the unprivileged user it runs them as can read them",
    ("services/cli/embedded.py", "/root"): "the docstring names the case the code handles: "
    "a data folder under root's home, which that unprivileged user cannot reach",
}


def tracked_text_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    files = []
    for name in filter(None, listed):
        path = ROOT / name
        if path == Path(__file__).resolve():
            continue
        if path.is_file() and b"\0" not in path.read_bytes()[:8192]:
            files.append(path)
    return files


def machine_paths() -> dict[tuple[str, str], list[int]]:
    """Every machine path in a tracked text file, with the lines it is on."""
    found: dict[tuple[str, str], list[int]] = {}
    for path in tracked_text_files():
        text = path.read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for match in MACHINE_PATH.finditer(line):
                found.setdefault((str(path.relative_to(ROOT)), match.group()), []).append(
                    number)
    return found


def test_no_tracked_file_names_a_folder_of_one_machine() -> None:
    stray = {f"{name}:{lines[0]}: {path}" for (name, path), lines in machine_paths().items()
             if (name, path) not in ALLOWED}
    assert not stray, "machine paths in tracked files:\n" + "\n".join(sorted(stray))


def test_every_allowed_mention_is_still_there() -> None:
    assert set(ALLOWED) <= set(machine_paths()), "remove the mentions that are gone"


@pytest.mark.parametrize("text", [
    "logs in /tmp/oee-soak-7vjkaq9a/logs", "cd /work/main", "see /root/.cache",
    "/home/alice/src/oee", "path=/tmp", "(`/work/wt-x/README.md`)",
])
def test_the_pattern_finds_machine_paths(text: str) -> None:
    assert MACHINE_PATH.search(text)


@pytest.mark.parametrize("text", [
    "/var/tmp/oee-postgres-1a2b", "~/work/oee", "docs/tmp/x", "a/root/b", "GET /orders/{id}",
    "https://example.com/tmp/x", "/homework",
])
def test_the_pattern_leaves_other_paths(text: str) -> None:
    assert not MACHINE_PATH.search(text)
