"""The README's tables say what the code has: every service, event, status, order type,
refusal rule, command and setting, and nothing the code lacks. Where the code can write a
table (the settings), the README holds exactly what it writes."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import msgspec
import pytest

from services.cli.settings import markdown
from shared import lifecycle
from shared.accounts import Keyring
from shared.events import EVENT_TYPES, ORDER_TYPES, Event
from tests.unit import facts

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ENVELOPE = {"orderId", "seq", "at", "id", "v", "traceparent"}


def first_cells(heading: str) -> list[str]:
    """The backticked names in the first cell of each row of the table under ``heading``."""
    return [name for row in facts.table(README, heading) for name in facts.backticked(row[0])]


def test_the_readme_names_the_five_services() -> None:
    rows = facts.table(README, "Order execution engine")
    assert [re.sub(r"\W", "", row[0]) for row in rows] == [
        "gateway", "router", "executor", "persister", "trigger"]
    assert {re.sub(r"\W", "", row[0]) for row in rows} == set(facts.services_of_oee_up())
    assert "Five services" in README


def test_every_event_type_has_a_row() -> None:
    tags = [t.__struct_config__.tag for t in EVENT_TYPES]
    assert sorted(first_cells("Events")) == sorted(tags)  # type: ignore[type-var]


@pytest.mark.parametrize("row", facts.table(README, "Events"), ids=lambda row: row[0])
def test_each_event_row_says_the_status_it_sets_and_names_its_fields(row: list[str]) -> None:
    [tag] = facts.backticked(row[0])
    status = lifecycle.sets_status(tag)
    assert row[2] == (f"`{status}`" if status else "(unchanged)")
    [event] = [t for t in EVENT_TYPES if t.__struct_config__.tag == tag]
    fields = {f.encode_name for f in msgspec.structs.fields(event)} - ENVELOPE
    missing = fields - set(facts.backticked(row[3]))
    assert not missing, f"the README's {tag} row leaves out {sorted(missing)}"


def test_the_events_section_names_every_field_of_the_envelope() -> None:
    assert {f.encode_name for f in msgspec.structs.fields(Event)} == ENVELOPE
    named = set(facts.backticked(facts.section(README, "Events").split("|", 1)[0]))
    assert named >= ENVELOPE, f"the README's envelope leaves out {sorted(ENVELOPE - named)}"


def test_every_status_has_a_row_in_the_lifecycle_order() -> None:
    assert first_cells("Statuses") == list(lifecycle.STATUSES)


def test_the_terminal_statuses_say_so() -> None:
    terminal = {facts.backticked(row[0])[0] for row in facts.table(README, "Statuses")
                if "terminal" in row[1]}
    assert terminal == set(lifecycle.TERMINAL)


def test_every_order_type_has_a_row() -> None:
    types = [facts.backticked(row[0])[0] for row in facts.table(README, "Orders")]
    assert types == list(ORDER_TYPES)


def test_every_rule_a_refusal_can_name_has_a_row() -> None:
    rules, _ = facts.refusal_rules()
    listed = first_cells("Bad input")
    assert len(listed) == len(set(listed)), "a rule listed twice"
    missing = sorted(set(rules) - set(listed))
    assert not missing, f"rules without a README row: {missing} (made at " + ", ".join(
        rules[r][0] for r in missing) + ")"
    assert not set(listed) - set(rules), "the README lists rules the code never gives"


def test_every_rule_is_read_from_the_code() -> None:
    rules, unread = facts.refusal_rules()
    assert not unread, f"rules the scan cannot read (not literals): {unread}"
    # The scan finds the rules of each place that makes them, whatever the module layout.
    assert {"unknown_token", "unauthorized", "flood", "not_open", "unavailable"} <= set(rules)


def command_of(synopsis: str) -> str:
    """``keys create`` of ``oee keys create NAME [--operator]``: the words before the first
    argument or option."""
    words = synopsis.split()
    assert words[0] == "oee", synopsis
    name = []
    for word in words[1:]:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        name.append(word)
    return " ".join(name)


SHAPES = '''
import logging
log = logging.getLogger()

class Invalid(Exception):
    def __init__(self, field, rule, message): ...

class NotFound(Invalid):
    pass

class Refused(Exception):
    rule = "declared"

def error(status, field, rule, message):
    return Invalid(field, rule, message)

def refuse(field, *, rule, message): ...

def handler(errors, strict):
    log.error("a message", "not", "a rule")
    Invalid("amount", "positional", "...")
    errors.Invalid("amount", "qualified", "...")
    error(400, "amount", "helper", "...")
    raise NotFound("orderId", "subclass", "...")
    refuse("x", rule="keyword", message="...")
    Invalid("x", "one" if strict else "other", "...")
    Invalid("x", compute(), "...")
'''


def test_the_rule_scan_reads_every_shape_a_module_may_use(tmp_path: Path) -> None:
    (tmp_path / "errors.py").write_text(SHAPES)
    rules, unread = facts.refusal_rules([tmp_path])
    assert set(rules) == {"declared", "positional", "qualified", "helper", "subclass",
                          "keyword", "one", "other"}
    assert [SHAPES.splitlines()[int(where.rsplit(":", 1)[1]) - 1].strip()
            for where in unread] == ['Invalid("x", compute(), "...")']


def test_every_command_has_a_row_naming_each_of_its_options() -> None:
    rows: dict[str, str] = {}
    for row in facts.table(README, "Commands"):
        for synopsis in facts.backticked(row[0]):
            rows[command_of(synopsis)] = " ".join(row)
    commands = facts.oee_commands()
    assert set(rows) == set(commands)
    for command, options in commands.items():
        missing = {o for o in options if not re.search(rf"{o}(?![\w-])", rows[command])}
        assert not missing, f"oee {command}: the README's row leaves out {sorted(missing)}"


def test_the_configuration_table_is_what_oee_settings_writes() -> None:
    table = "\n".join(line for line in facts.section(README, "Configuration").splitlines()
                      if line.startswith("|"))
    assert table + "\n" == markdown()


def test_the_readme_lists_no_setting_only_the_tests_read() -> None:
    assert "REDIS_CLUSTER_URL" not in README


def test_the_revocation_time_is_the_gateways_key_cache() -> None:
    ttl = inspect.signature(Keyring).parameters["ttl_s"].default
    keys = facts.section(README, "Keys, accounts and limits")
    times = set(re.findall(r"within (\d+(?:\.\d+)?) s", keys))
    times |= set(re.findall(r"refuses the key within (\d+(?:\.\d+)?) s", README))
    assert times == {f"{ttl:g}"}


def test_every_dependency_is_named_with_its_reason() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"],
                *(d for extra in project["optional-dependencies"].values() for d in extra)]
    names = {re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0] for d in declared} - {"oee"}
    text = facts.section(README, "Dependencies").lower()
    missing = sorted(n for n in names if n.lower() not in text)
    assert not missing, f"dependencies the README does not name: {missing}"
