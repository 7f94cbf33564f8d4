"""What to do next is the domain's to decide: no code outside it branches on an order's
state or status by name.

Every string of ``shared.lifecycle.STATES`` is a state (or status) name. Outside the domain
modules and the projection's SQL, such a name may not be compared with (``==``, ``!=``,
``in``, ``not in``, ``is``), matched against (``case "open":``), kept in a collection that
something is compared with, or used as a dict key. A service asks the domain
(``shared.decisions``) or the lifecycle instead.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.lifecycle import STATES

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("services", "shared", "bench")

# The modules that decide, and the projection, whose SQL spells statuses by name.
DOMAIN = frozenset({"shared/lifecycle.py", "shared/order.py", "shared/decisions.py"})
PROJECTION = "services/persister/"

# (file, line text with its indentation stripped) -> why it is not branching on a state, or
# "wired at merge": a place another change is rewriting, to be wired to the domain then
# (and its line taken out of this list).
EXCEPTIONS: dict[tuple[str, str], str] = {
    # oee submit.
    ("services/cli/submit.py", 'return 0 if ended == "confirmed" else 1'):
        "the command's exit code, as SPEC gives it: 0 confirmed, 1 otherwise",
    # A status message carries the fields of the status it reports (SPEC: txHash from
    # submitted on, executedPrice at confirmed, error at failed): a view, not a decision.
    ("services/gateway/views.py", 'confirmed = status == "confirmed"'): "a view",
    ("services/gateway/views.py", 'tx_hash=self.tx_hash if status in ("submitted", '
                                  '"confirmed") else None,'): "a view",
    ("services/gateway/views.py", 'error=self.error if status == "failed" else None,'):
        "a view",
}

_NAMES = frozenset(STATES)
_COMPARING = (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot)


def _is_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in _NAMES


def _names_in(node: ast.AST) -> bool:
    """A state name itself, or a collection literal (tuple, list, set, frozenset(...))
    holding one."""
    if _is_name(node):
        return True
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_name(element) for element in node.elts)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("frozenset", "set", "tuple") and node.args):
        return _names_in(node.args[0])
    return False


def _named_collections(tree: ast.AST) -> set[str]:
    """Names bound to a collection of state names (``TERMINAL = ("confirmed", ...)``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if not _is_name(node.value) and _names_in(node.value):
                found |= {t.id for t in targets if isinstance(t, ast.Name)}
    return found


def _lookup_tables(tree: ast.AST) -> set[int]:
    """The dict literals keyed by state names that something looks up (``{...}[state]``,
    ``{...}.get(state)``, or the same through the name the dict is bound to): a table that
    picks what to do by state. A dict that is only written out (a report, a body) is not."""
    keyed: dict[int, ast.Dict] = {}
    bound: dict[str, list[ast.Dict]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and any(k is not None and _is_name(k) for k in node.keys):
            keyed[id(node)] = node
        if (isinstance(node, ast.Assign | ast.AnnAssign)
                and isinstance(node.value, ast.Dict)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(node.value)
    looked_up: set[int] = set()
    for node in ast.walk(tree):
        table: ast.AST | None = None
        if isinstance(node, ast.Subscript):
            table = node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "get"):
            table = node.func.value
        if isinstance(table, ast.Dict):
            looked_up.add(id(table))
        elif isinstance(table, ast.Name):
            looked_up |= {id(d) for d in bound.get(table.id, [])}
    return looked_up & set(keyed)


def _patterns(pattern: ast.pattern) -> Iterator[ast.pattern]:
    yield pattern
    if isinstance(pattern, ast.MatchOr):
        for inner in pattern.patterns:
            yield from _patterns(inner)


def branching(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that branches on a state name."""
    collections = _named_collections(tree)
    tables = _lookup_tables(tree)

    def named(node: ast.AST) -> bool:
        return _names_in(node) or (isinstance(node, ast.Name) and node.id in collections)

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            pairs = zip([node.left, *node.comparators[:-1]], node.comparators, strict=True)
            if any(isinstance(op, _COMPARING) and (named(left) or named(right))
                   for op, (left, right) in zip(node.ops, pairs, strict=True)):
                yield node
        elif isinstance(node, ast.match_case):
            if any(isinstance(p, ast.MatchValue) and _is_name(p.value)
                   for p in _patterns(node.pattern)):
                yield node.pattern
        elif isinstance(node, ast.Dict) and id(node) in tables:
            yield node
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            # A collection of names kept for comparing with later.
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in collections for t in targets):
                yield node


def scanned_files() -> Iterator[tuple[str, Path]]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in DOMAIN or relative.startswith(PROJECTION):
                continue
            yield relative, path


def offences() -> list[tuple[str, int, str]]:
    found = []
    for relative, path in scanned_files():
        source = path.read_text()
        lines = source.splitlines()
        for node in branching(ast.parse(source)):
            line = getattr(node, "lineno", 0)
            found.append((relative, line, lines[line - 1].strip()))
    return sorted(set(found))


def test_no_code_outside_the_domain_branches_on_a_state_name() -> None:
    unexpected = [f"{file}:{line}: {text}" for file, line, text in offences()
                  if (file, text) not in EXCEPTIONS]
    assert not unexpected, "branching on a state name outside the domain:\n" + "\n".join(
        unexpected)


def test_every_exception_is_still_needed() -> None:
    """An exception whose line is gone (or changed) must leave the list with it."""
    found = {(file, text) for file, _, text in offences()}
    assert set(EXCEPTIONS) <= found, sorted(set(EXCEPTIONS) - found)


@pytest.mark.parametrize("source", [
    'if state.state == "open": pass',
    'if "failed" != status: pass',
    'if state.state in ("opening", "open"): pass',
    'if status not in {"confirmed", "expired"}: pass',
    'if status in frozenset(("cancelled",)): pass',
    'ENDS = ("confirmed", "failed")\nif status in ENDS: pass',
    'match state.state:\n    case "rerouting" | "giving_up":\n        pass',
    'handler = {"triggered": fire, "open": wait}[state.state]',
    'NEXT = {"open": fire}\nhandler = NEXT.get(state.state)',
])
def test_the_scan_sees_each_kind_of_branching(source: str) -> None:
    assert list(branching(ast.parse(source)))


@pytest.mark.parametrize("source", [
    'message = {"orderId": order_id, "status": "cancelled"}',
    'report = {"submitted": 3, "confirmed": 2}\nprint(report)',
    'if kind == "transient": pass',
    'if order.order_type == "sniper": pass',
    'log.info("order %s is open", order_id)',
    'if state.actor != "executor": pass',
])
def test_the_scan_leaves_values_and_other_names_alone(source: str) -> None:
    assert not list(branching(ast.parse(source)))
