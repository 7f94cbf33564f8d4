"""The golden log: events as stored, at every version ever written, must always read and
replay to the committed projection. A failure here means stored events would no longer read
as they did: add a version and an upcaster (docs/events.md), never regenerate the files."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from services.persister.projection import order_rows
from shared import lifecycle
from shared.events import EVENT_TYPES, SCHEMA, AnyEvent, Submitted, decode, encode
from shared.order import fold
from shared.upcast import Schema, UnknownVersion
from tests.golden.generate import LOG, PROJECTION, UNVERSIONED, entries

LINES = LOG.read_bytes().splitlines()
EXPECTED: dict[str, Any] = json.loads(PROJECTION.read_text())


def by_order(events: list[AnyEvent]) -> dict[str, list[AnyEvent]]:
    found: dict[str, list[AnyEvent]] = {}
    for event in events:
        found.setdefault(event.order_id, []).append(event)
    return found


def projected(events: list[AnyEvent]) -> dict[str, Any]:
    return {row.order_id: msgspec.to_builtins(row) for row in order_rows(entries(events))}


def test_the_golden_log_replays_to_the_committed_projection() -> None:
    assert projected([decode(line) for line in LINES]) == EXPECTED


def test_every_stored_line_reads_back_as_it_was_written() -> None:
    for line in LINES:
        raw = json.loads(line)
        event = decode(line)
        if raw["orderId"] in UNVERSIONED:
            assert "v" not in raw and event.v == 1
            raw["v"] = 1
        assert json.loads(encode(event)) == raw


def test_the_golden_log_covers_every_event_and_story() -> None:
    events = [decode(line) for line in LINES]
    assert {e.type for e in events} == {t.__name__ for t in EVENT_TYPES}
    moves = {e.move for e in events}
    assert {"AttemptFailed:retry", "AttemptFailed:reroute", "AttemptFailed:give_up",
            "Triggered", "Triggered:routed"} <= moves
    # A sniper priced after another at its launch: the pool as the first left it.
    assert any(getattr(e, "pushed", 0) for e in events if e.type in ("Triggered", "Routed"))
    kinds = {getattr(e, "kind", None) for e in events}
    assert {"transient", "slippage", "expired"} <= kinds
    routes = {e.route.kind for e in events if hasattr(e, "route")}
    assert routes == {"direct", "split", "two_hop"}
    reasons = {getattr(e, "reason", None) for e in events if e.type == "Failed"}
    assert reasons == {"dead_lettered", "attempts_exhausted", "no_route"}


def test_every_golden_order_walks_the_lifecycle() -> None:
    for order_id, events in by_order([decode(line) for line in LINES]).items():
        state = lifecycle.walk(e.move for e in sorted(events, key=lambda e: e.seq))
        folded = fold(order_id, reversed(events))
        assert state == folded.state and lifecycle.is_terminal(state)
        assert state is not None and lifecycle.status_of(state) == folded.status


class SubmittedV2(Submitted, tag="Submitted", frozen=True, kw_only=True):
    """A hypothetical next version: the cluster a transaction was sent to, required. A new
    required field is not free: it needs a version and an upcaster."""

    v: int = 2
    cluster: str


def _cluster(raw: dict[str, Any]) -> dict[str, Any]:
    # Everything before v2 went to mainnet.
    return raw | {"cluster": "mainnet-beta"}


def test_a_new_version_reads_the_old_lines_and_replays_to_the_same_projection() -> None:
    schema = SCHEMA.evolve(SubmittedV2, _cluster)
    events = [schema.decode(line) for line in LINES]
    upcast = [e for e in events if e.type == "Submitted"]
    assert upcast and all(isinstance(e, SubmittedV2) for e in upcast)
    assert all(e.v == 2 and e.cluster == "mainnet-beta" for e in upcast)
    assert projected(events) == EXPECTED
    # A line written at v2 reads as it is; one from a newer release is refused.
    fresh = msgspec.structs.replace(upcast[0], cluster="devnet")
    assert schema.decode(encode(fresh)) == fresh
    newer = json.loads(encode(fresh)) | {"v": 3}
    with pytest.raises(UnknownVersion):
        schema.decode(json.dumps(newer))


def test_a_version_needs_its_upcaster_and_versions_go_one_at_a_time() -> None:
    others = [t for t in EVENT_TYPES if t is not Submitted]
    with pytest.raises(ValueError, match="no upcaster from v1"):
        Schema([*others, SubmittedV2])
    with pytest.raises(ValueError, match="must be version 3"):
        SCHEMA.evolve(SubmittedV2, _cluster).evolve(SubmittedV2, _cluster)
