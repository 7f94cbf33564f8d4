"""Each room holds its own: the services and ``shared/`` never import the toolbox
(``services/cli``, ``bench``) or the tests, and ``tests/`` holds only tests and what they
need, no tool that measures."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "router", "executor", "persister", "trigger")
TOOLBOX = ("services.cli", "bench", "tests")
# The one program among the tests: it writes the golden log the tests read.
TEST_PROGRAMS = {"tests/golden/generate.py"}


def modules(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from sorted(folder.rglob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def from_toolbox(name: str) -> bool:
    return any(name == room or name.startswith(f"{room}.") for room in TOOLBOX)


def test_no_service_and_nothing_shared_imports_the_toolbox_or_the_tests() -> None:
    rooms = [ROOT / "services" / service for service in SERVICES] + [ROOT / "shared"]
    assert all(room.is_dir() for room in rooms)
    found = {str(path.relative_to(ROOT)): sorted(filter(from_toolbox, imported(path)))
             for path in modules(*rooms)}
    assert len(found) > 50  # the scan saw the code
    assert {path: names for path, names in found.items() if names} == {}


def test_the_scan_sees_an_import_of_the_toolbox_wherever_it_is(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from services.cli import embedded\n"
                      "    import bench.load\n")
    assert sorted(filter(from_toolbox, imported(module))) == [
        "bench.load", "services.cli", "services.cli.embedded"]


def is_program(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)
                and node.left.id == "__name__"):
            return True
    return False


def test_the_tests_hold_no_tool() -> None:
    tests = ROOT / "tests"
    found = [str(p.relative_to(ROOT)) for p in modules(tests)]
    assert not [p for p in found if Path(p).name.startswith("measure")]
    programs = {p for p in found if is_program(ROOT / p)}
    assert programs == TEST_PROGRAMS
