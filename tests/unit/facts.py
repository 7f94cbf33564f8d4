"""What the code has, read from the code, for the tests that hold the docs to it: the rules a
refusal can name, the services ``oee up`` starts, the commands of ``oee``, and the docs'
Markdown tables read back.

The rules are read from the source, not from a list: every literal passed as ``rule`` to a
callable that takes one (``Invalid``, ``error``, or whatever a module adds), and every
``rule = "..."`` a class declares, in any module of the gateway and of ``shared``. So a rule
added anywhere there, by any name of function, reaches the README's test."""

from __future__ import annotations

import argparse
import ast
import importlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULE_SOURCES = (ROOT / "services" / "gateway", ROOT / "shared")
# A logger's methods share names with refusal helpers (``error``): never a refusal.
_LOGGING = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})


def _modules(folders: Sequence[Path]) -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text())
            for folder in folders for path in sorted(folder.rglob("*.py"))}


def _params(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    names = [a.arg for a in [*function.args.posonlyargs, *function.args.args]]
    return names[1:] if names and names[0] in ("self", "cls") else names


def _keyword_only(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [a.arg for a in function.args.kwonlyargs]


# Where a callable whose ``rule`` is keyword-only takes it: at no position.
_BY_KEYWORD = -1


def _fields(cls: ast.ClassDef) -> list[str]:
    """A Struct's or dataclass's fields, in order: its annotated class attributes."""
    return [node.target.id for node in cls.body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)]


def _rule_takers(modules: dict[Path, ast.Module]) -> tuple[dict[str, int], set[str]]:
    """Callables that take a ``rule``, by name, with the position it is passed at; and
    which of those names are classes."""
    takers: dict[str, int] = {}
    classes: dict[str, ast.ClassDef] = {}
    for tree in modules.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = node
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name != "__init__" and "rule" in _params(node):
                    takers[node.name] = _params(node).index("rule")
                elif node.name != "__init__" and "rule" in _keyword_only(node):
                    takers[node.name] = _BY_KEYWORD
    for name, cls in classes.items():
        init = next((n for n in cls.body if isinstance(n, ast.FunctionDef)
                     and n.name == "__init__"), None)
        if init is not None and "rule" in _params(init):
            takers[name] = _params(init).index("rule")
        elif init is not None and "rule" in _keyword_only(init):
            takers[name] = _BY_KEYWORD
        elif init is None and "rule" in _fields(cls):
            takers[name] = _fields(cls).index("rule")
    # A subclass without a constructor of its own takes the rule where its base does.
    changed = True
    while changed:
        changed = False
        for name, cls in classes.items():
            bases = [b.id for b in cls.bases if isinstance(b, ast.Name)]
            inherited = next((takers[b] for b in bases if b in takers), None)
            if name not in takers and inherited is not None and not any(
                    isinstance(n, ast.FunctionDef) and n.name == "__init__" for n in cls.body):
                takers[name] = inherited
                changed = True
    return takers, set(classes) & set(takers)


def _literals(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _literals(node.body), _literals(node.orelse)
        return None if body is None or orelse is None else body + orelse
    return None


def _walk(node: ast.AST, params: frozenset[str]) -> Iterator[tuple[ast.AST, frozenset[str]]]:
    """Every node, with the parameters of the function it is in."""
    yield node, params
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        params = frozenset(_params(node))
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, params)


def refusal_rules(folders: Sequence[Path] = RULE_SOURCES
                  ) -> tuple[dict[str, list[str]], list[str]]:
    """Every rule a refusal can carry, with where each is made; and every place that passes
    a rule the scan cannot read (not a literal, nor a parameter handed on)."""
    modules = _modules(folders)
    takers, classes = _rule_takers(modules)
    rules: dict[str, list[str]] = {}
    unread: list[str] = []
    for path, tree in modules.items():
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        for node, params in _walk(tree, frozenset()):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    target = (statement.targets[0] if isinstance(statement, ast.Assign)
                              else statement.target if isinstance(statement, ast.AnnAssign)
                              else None)
                    value = getattr(statement, "value", None)
                    if isinstance(target, ast.Name) and target.id == "rule" and value:
                        for rule in _literals(value) or []:
                            rules.setdefault(rule, []).append(f"{where}:{statement.lineno}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in takers:
                name = func.id
            elif (isinstance(func, ast.Attribute) and func.attr in takers
                  and (func.attr in classes or func.attr not in _LOGGING)):
                name = func.attr
            else:
                continue
            given = next((k.value for k in node.keywords if k.arg == "rule"), None)
            if given is None and 0 <= takers[name] < len(node.args):
                given = node.args[takers[name]]
            if given is None:
                continue  # a Struct's default, or a call that names no rule
            found = _literals(given)
            if found is not None:
                for rule in found:
                    rules.setdefault(rule, []).append(f"{where}:{node.lineno}")
            elif not (isinstance(given, ast.Name) and given.id in params):
                unread.append(f"{where}:{node.lineno}")
    return rules, unread


def services_of_oee_up() -> tuple[str, ...]:
    """``SERVICES``, what ``oee up`` starts, from whichever module of the toolbox holds it."""
    for path in sorted((ROOT / "services" / "cli").glob("*.py")):
        tree = ast.parse(path.read_text())
        targets = [target for node in tree.body
                   for target in (node.targets if isinstance(node, ast.Assign)
                                  else [node.target] if isinstance(node, ast.AnnAssign) else [])]
        if any(isinstance(target, ast.Name) and target.id == "SERVICES" for target in targets):
            module = importlib.import_module(f"services.cli.{path.stem}")
            return tuple(module.SERVICES)
    raise AssertionError("no module of services/cli defines SERVICES")


def oee_parser() -> argparse.ArgumentParser:
    """The parser ``oee`` parses its arguments with, caught as ``main`` is about to use it."""
    from services.cli import main as cli

    class Caught(Exception):
        def __init__(self, parser: argparse.ArgumentParser) -> None:
            self.parser = parser

    def catch(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise Caught(self)

    # parse_args, and every other way to parse, goes through parse_known_args.
    original = argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_known_args = catch  # type: ignore[assignment,method-assign]
    try:
        cli.main(["--help"])
    except Caught as caught:
        return caught.parser
    finally:
        argparse.ArgumentParser.parse_known_args = original  # type: ignore[method-assign]
    raise AssertionError("oee's main never parsed its arguments")


def oee_commands() -> dict[str, set[str]]:
    """Every command of ``oee`` (``keys create`` for a sub-command's), with its long
    options; a command with sub-commands is listed only through them."""
    commands: dict[str, set[str]] = {}

    def visit(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    nested = any(isinstance(a, argparse._SubParsersAction)
                                 for a in sub._actions)
                    if not nested:
                        commands[f"{prefix}{name}"] = {
                            option for a in sub._actions for option in a.option_strings
                            if option.startswith("--") and option != "--help"}
                    visit(sub, f"{prefix}{name} ")

    visit(oee_parser(), "")
    return commands


def section(text: str, heading: str) -> str:
    """The text under a Markdown heading (any level), up to the next heading of its level
    or above."""
    match = re.search(rf"(?m)^(#+) {re.escape(heading)}\s*$", text)
    assert match, f"no section {heading!r}"
    level = len(match.group(1))
    rest = text[match.end():]
    end = re.search(rf"(?m)^#{{1,{level}}} ", rest)
    return rest[:end.start()] if end else rest


def table(text: str, heading: str) -> list[list[str]]:
    """The rows (header and rule left out) of the first table under ``heading``, as cells.
    A ``\\|`` inside a cell is a ``|`` of its text."""
    lines: list[str] = []
    for line in section(text, heading).splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    assert len(lines) > 2, f"no table under {heading!r}"
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
             for line in lines]
    return cells[2:]


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)
