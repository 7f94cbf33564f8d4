"""Every file the docs name exists: a README that points at a missing module misleads the
people it is written for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A path in backticks or a Markdown link: a repository folder, then a file name with a suffix.
_PATH = re.compile(
    r"(?:`|\]\()((?:\.\./)*(?:services|shared|tests|docs|\.ci)/[\w./-]*\w"
    r"|[\w-]+\.(?:yaml|toml|md)|Dockerfile)(?:`|\)|#)"
)


def named_paths(doc: Path) -> set[str]:
    return {match.group(1) for match in _PATH.finditer(doc.read_text())}


def exists(doc: Path, path: str) -> bool:
    """A file, or a name in a module (``shared/batching.Batcher``)."""
    module = path.rsplit(".", 1)[0] + ".py"
    return any((base / p).exists() for base in (ROOT, doc.parent) for p in (path, module))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_doc_names_exists(doc: Path) -> None:
    missing = sorted(p for p in named_paths(doc) if not exists(doc, p))
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_points_outside_the_repository(doc: Path) -> None:
    assert not [p for p in named_paths(doc) if p.startswith("../")]


def test_the_pattern_finds_paths() -> None:
    assert named_paths(ROOT / "README.md") >= {"shared/events.py", "compose.yaml"}


def test_the_readme_lists_every_section_in_its_contents() -> None:
    text = (ROOT / "README.md").read_text()
    sections = [t for t in re.findall(r"(?m)^## (.+)$", text) if t != "Contents"]
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"(?m)^- \[(.+?)\]\(#", contents) == sections
