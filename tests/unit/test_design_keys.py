"""docs/design.md names every Redis key as the code builds it: each name below is rendered by
the function that makes the key (for the default namespace and partition count), so a key
that moves or is renamed fails here until the page says so."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shared.launches import Launches
from shared.partitions import Layout
from shared.queues import QUEUED_GROUPS

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "design.md"
LAYOUT = Layout("oee", 4)
ORDER = "ID"
# The Layout members that build no key of their own.
NOT_KEYS = {
    "of": "the partition of an order", "logs": "every partition's log, as `log` names them",
    "split": "groups items by partition", "key": "the builder the named keys use",
    "partitions": "a range", "namespace": "a setting", "count": "a setting",
    "old_log": "the layout from before partitions, which the store refuses to start on",
}


class _Redis:
    """Enough of a client for a constructor: the key builders never call Redis."""

    def register_script(self, script: str) -> None:
        return None


def find_class(package: str, name: str) -> Any:
    """The class ``name`` from whichever module of ``package`` defines it."""
    root = importlib.import_module(package)
    for module in pkgutil.iter_modules(root.__path__, f"{package}."):
        found = getattr(importlib.import_module(module.name), name, None)
        if inspect.isclass(found) and found.__module__ == module.name:
            return found
    raise AssertionError(f"no class {name} in {package}")


def rendered_keys() -> dict[str, str]:
    """Each key the engine makes, by what it is, as its builder names it."""
    partition = LAYOUT.of(ORDER)
    keys = {f"log {p}": LAYOUT.log(p) for p in LAYOUT.partitions}
    keys |= {f"queue {g}": LAYOUT.queue(g, partition) for g in sorted(QUEUED_GROUPS)}
    keys |= {"order": LAYOUT.order(ORDER), "dead": LAYOUT.dead(partition),
             "ledger": LAYOUT.ledger(ORDER, "SIG"), "partition count": LAYOUT.count_key}
    redis = _Redis()
    keys["market"] = Launches(redis, "oee").stream  # type: ignore[arg-type]
    schedule = find_class("services.trigger", "Schedule")(redis, "oee", "seed", 60.0)
    keys["launched"] = schedule.marker("SLOT")
    keys["watching"] = find_class("services.trigger", "Registry")(redis, "oee").key
    idempotency = find_class("services.gateway", "IdempotencyKeys")(redis, "oee", 60)
    keys["idempotency"] = idempotency._key("ACCOUNT", "KEY").replace(
        hashlib.sha256(b"KEY").hexdigest(), "SHA256")
    limits_class = find_class("services.gateway", "Limits")
    store = SimpleNamespace(redis=redis, settings=SimpleNamespace(namespace="oee"))
    limits = limits_class(store, 600, 1000, 3600)
    for kind in sorted(set(re.findall(r'_key\("(\w+)"', inspect.getsource(limits_class)))):
        keys[f"limit {kind}"] = limits._key(kind, "ACCOUNT")
    return keys


def test_the_example_order_is_in_the_partition_the_page_shows() -> None:
    assert LAYOUT.of(ORDER) == 2


def test_every_layout_member_that_builds_a_key_is_rendered() -> None:
    members = {name for name in dir(Layout) if not name.startswith("_")}
    members |= set(vars(LAYOUT)) - {name for name in vars(LAYOUT) if name.startswith("_")}
    rendered = {"log", "order", "queue", "dead", "ledger", "count_key"}
    assert not members - rendered - set(NOT_KEYS), "a new key in Layout: render it above"


def test_the_limits_have_both_their_keys() -> None:
    assert {"limit rate", "limit open"} <= set(rendered_keys())


@pytest.mark.parametrize("what", sorted(rendered_keys()))
def test_the_design_page_names_the_key(what: str) -> None:
    key = rendered_keys()[what]
    assert f"`{key}`" in DESIGN.read_text(), f"docs/design.md does not name {what}: {key}"


def test_the_design_page_names_no_key_the_code_does_not_make() -> None:
    keys_table = DESIGN.read_text().split("## Keys in Redis", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(oee:[^`]*)`", keys_table))
    assert named == set(rendered_keys().values())
