"""The docs point at what exists and say what the code does: every file and module they name
exists, every measured figure comes with its date, command and output, and the WebSocket
page's positions and rules are the code's. (The README's tables: test_readme.py; the key
layout: test_design_keys.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.positions import Positions, StreamId
from tests.unit import facts

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A path in backticks or a Markdown link: a repository folder, then a file name with a suffix.
_PATH = re.compile(
    r"(?:`|\]\()((?:\.\./)*(?:services|shared|tests|bench|docs|deploy|\.ci)/[\w./-]*\w"
    r"|[\w-]+\.(?:yaml|toml|md)|Dockerfile)(?:`|\)|#)"
)
# A module run with `python -m`, from one of the repository's own packages.
_MODULE = re.compile(r"python -m ((?:services|shared|tests|bench)(?:\.\w+)+)")
PERFORMANCE = ROOT / "docs" / "performance.md"
BENCH = ROOT / "docs" / "bench"
WEBSOCKET = ROOT / "docs" / "websocket.md"
# A commit's abbreviated or full hash: hex digits with at least one letter and one digit.
_COMMIT = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b")


def named_paths(doc: Path) -> set[str]:
    return {match.group(1) for match in _PATH.finditer(doc.read_text())}


def exists(doc: Path, path: str) -> bool:
    """A file, or a name in a module (``shared/batching.Batcher``)."""
    module = path.rsplit(".", 1)[0] + ".py"
    return any((base / p).exists() for base in (ROOT, doc.parent) for p in (path, module))


def runnable(module: str) -> bool:
    """``python -m module`` finds it in the repository: a module, or a package's
    ``__main__``."""
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__main__.py").exists()


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_doc_names_exists(doc: Path) -> None:
    missing = sorted(p for p in named_paths(doc) if not exists(doc, p))
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_a_doc_runs_exists(doc: Path) -> None:
    missing = sorted({m for m in _MODULE.findall(doc.read_text()) if not runnable(m)})
    assert not missing, f"{doc.name} runs modules that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_points_outside_the_repository(doc: Path) -> None:
    assert not [p for p in named_paths(doc) if p.startswith("../")]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_quotes_a_commit(doc: Path) -> None:
    """History is in git: a doc says what is so today."""
    assert not _COMMIT.findall(doc.read_text())


def test_the_patterns_find_paths_modules_and_commits() -> None:
    assert named_paths(ROOT / "README.md") >= {"shared/events.py", "compose.yaml"}
    assert _MODULE.findall("`python -m bench.limits --band 0` and python -m services.cli") == [
        "bench.limits", "services.cli"]
    assert runnable("services.cli") and not runnable("services.nothing")
    assert _COMMIT.findall("at 9f3ff18, a259509 and 4a56b76d") == ["9f3ff18", "a259509",
                                                                   "4a56b76d"]
    assert not _COMMIT.findall("1764230400123 deadbeef-free 01a2")


def test_the_readme_lists_every_section_in_its_contents() -> None:
    text = (ROOT / "README.md").read_text()
    sections = [t for t in re.findall(r"(?m)^## (.+)$", text) if t != "Contents"]
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"(?m)^- \[(.+?)\]\(#", contents) == sections


def figure_rows() -> list[list[str]]:
    text = PERFORMANCE.read_text()
    return [row for heading in re.findall(r"(?m)^## (.+)$", text)
            for row in facts.table(text, heading)]


@pytest.mark.parametrize("row", figure_rows(), ids=lambda row: row[0][:40])
def test_every_figure_has_its_date_command_and_output(row: list[str]) -> None:
    measured, result, date, command, output = row
    assert measured and re.search(r"\d", result), "a figure says what it measures, and its result"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", date)
    assert re.search(r"`(?:[A-Z_]+=\S+ )*(?:oee|python -m) ", command) or command.startswith(
        "the same with"), command
    outputs = re.findall(r"\]\(bench/([^)]+)\)", output)
    assert outputs and all((BENCH / name).is_file() for name in outputs)
    assert all(name.startswith(date) for name in outputs), "an output of another day"


def test_every_output_kept_is_behind_a_figure() -> None:
    linked = set(re.findall(r"\]\(bench/([^)]+)\)", PERFORMANCE.read_text()))
    assert {p.name for p in BENCH.iterdir()} == linked


def positions_shown() -> list[str]:
    return re.findall(r'"position":"([^"]+)"', WEBSOCKET.read_text())


def test_the_websocket_page_shows_a_position() -> None:
    assert positions_shown()


@pytest.mark.parametrize("token", positions_shown())
def test_a_position_shown_is_a_token_the_code_makes(token: str) -> None:
    positions = Positions.parse(token, 4)
    assert positions.token() == token, "not in the token form of today's positions"
    parts = [str(stream_id) for stream_id in positions.ids]
    text = WEBSOCKET.read_text()
    assert all(f"`{part}`" in text for part in parts), f"the page should say it holds {parts}"
    assert Positions.of(StreamId.parse(part) for part in parts).token() == token


def test_the_websocket_page_names_only_rules_the_code_gives() -> None:
    rules, _ = facts.refusal_rules()
    refusals = facts.table(WEBSOCKET.read_text(), "4. Refusals")
    named = {rule for row in refusals for rule in facts.backticked(row[0])}
    assert named and not named - set(rules), sorted(named - set(rules))
