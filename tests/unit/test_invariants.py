"""The audit's invariants, the projection comparison, the export format and the history
view, each on its own (no I/O)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from services.cli import jsonl
from services.cli.compare import ROW, Difference, differences, summary
from services.cli.history import render, units
from services.cli.invariants import (
    EXPIRY_GRACE_S,
    Auditor,
    Landed,
    Report,
    deadline,
    endings,
)
from shared.config import Settings
from shared.events import AnyEvent, decode, encode
from shared.stream import Entry, StreamId
from tests.unit import builders as b

NOW = b.at(60)
HOUR = timedelta(hours=1)


def audit(*orders: list[AnyEvent], now: Any = NOW) -> Report:
    auditor = Auditor(now, HOUR)
    for events in orders:
        auditor.order(events[0].order_id, events)
    return auditor.finish()


def offenders(report: Report, invariant: str) -> list[str]:
    return [v.order_id for v in report.violations if v.invariant == invariant]


def failed_story(order_id: str) -> list[AnyEvent]:
    return [b.requested(order_id), b.routed(order_id), b.built(order_id),
            b.attempt_failed(order_id, seq=4),
            b.failed(order_id, seq=5)]


def test_a_happy_and_a_failed_story_keep_every_invariant() -> None:
    report = audit(b.happy_story("a"), failed_story("b"))
    assert report.ok, report.violations
    assert (report.orders, report.events) == (2, 10)
    assert report.invariants["min_out"].checked == 1
    assert report.invariants["signatures"].checked == 1


def test_a_gap_or_a_repeat_in_seq_names_the_order() -> None:
    story = b.happy_story("gap")
    report = audit([e for e in story if e.seq != 3], b.happy_story("fine"),
                   [*b.happy_story("twice"), b.built("twice")])
    assert offenders(report, "seq") == ["gap", "twice"]
    details = [v.detail for v in report.violations if v.invariant == "seq"]
    assert details[0].startswith("seq 3 missing") and "seq 3 more than once" in details[1]


def test_two_terminal_events_or_one_not_last_are_violations() -> None:
    two = [*b.happy_story("two"), b.failed("two", seq=6)]
    early = [b.requested("early"), b.routed("early"), b.failed("early", seq=3),
             b.built("early", seq=4)]
    report = audit(two, early)
    assert offenders(report, "terminal") == ["two", "early"]


def test_a_status_that_moves_back_is_a_violation() -> None:
    back = [b.requested("back"), b.routed("back"), b.built("back"), b.submitted("back"),
            b.built("back", seq=5), b.confirmed("back", seq=6)]
    assert offenders(audit(back), "forward") == ["back"]
    # A failed attempt and a new route change no status: a retried order is still forward.
    retried = [b.requested("r"), b.routed("r"), b.built("r"),
               b.attempt_failed("r", seq=4, kind="slippage"), b.rerouted("r", seq=5),
               b.submitted("r", seq=6, attempt=2), b.confirmed("r", seq=7, attempt=2,
                                                              amount_out=72_800_000)]
    assert audit(retried).ok


def test_every_golden_story_moves_forward_waiting_orders_reopened_included() -> None:
    golden = Path(__file__).parents[1] / "golden" / "events.jsonl"
    stories: dict[str, list[AnyEvent]] = {}
    for line in golden.read_text().splitlines():
        event = decode(line)
        stories.setdefault(event.order_id, []).append(event)
    assert any(e.type == "Reopened" for events in stories.values() for e in events)
    report = audit(*stories.values(), now=max(e.at for es in stories.values() for e in es))
    assert offenders(report, "forward") == []


def test_confirmed_below_the_min_of_the_route_in_force_is_a_violation() -> None:
    # The reroute lowered the bound to 72,765,000: 72,800,000 passes it, not the first route's.
    rerouted = [b.requested("ok"), b.routed("ok"), b.built("ok"),
                b.attempt_failed("ok", seq=4, kind="slippage"), b.rerouted("ok", seq=5),
                b.submitted("ok", seq=6, attempt=2),
                b.confirmed("ok", seq=7, attempt=2, amount_out=72_800_000)]
    low = [*b.happy_story("low")[:4], b.confirmed("low", amount_out=73_000_000)]
    unrouted = [b.requested("none"), b.confirmed("none", seq=2)]
    report = audit(rerouted, low, unrouted)
    assert offenders(report, "min_out") == ["low", "none"]
    assert "below minAmountOut 73260000 of the Routed at seq 2" in report.violations[0].detail


def test_a_signature_used_by_two_orders_names_both() -> None:
    report = audit(b.happy_story("a"), b.happy_story("b"))  # the builders' one signature
    assert sorted(offenders(report, "signatures")) == ["a", "b"]
    unique = [*b.happy_story("c")[:3], b.submitted("c", tx_hash="9" * 87),
              b.confirmed("c", tx_hash="9" * 87)]
    assert audit(b.happy_story("a"), unique).ok


def test_an_open_order_past_its_deadline_is_a_violation() -> None:
    open_order = b.happy_story("open")[:4]
    assert audit(open_order, now=b.at(1) + HOUR).ok
    report = audit(open_order, now=b.at(1) + HOUR + timedelta(seconds=1))
    assert offenders(report, "deadline") == ["open"]
    assert "still submitted 1 h 0 min after its first event" in report.violations[0].detail


def test_the_deadline_follows_the_settings() -> None:
    # 3 x (200 + 60,000 + 3,000 + 500 x 4) ms, plus 5 x 30 s of claims and a minute.
    assert deadline(Settings()) == timedelta(milliseconds=3 * 65_200 + 150_000 + 60_000)
    assert deadline(Settings(max_attempts=1)) < deadline(Settings())


def test_the_projection_must_agree_with_the_log() -> None:
    auditor = Auditor(NOW, HOUR)
    state = auditor.order("a", b.happy_story("a"))
    auditor.projection("a", state, ("confirmed", 5))
    auditor.projection("b", auditor.order("b", b.happy_story("b")[:2]), ("confirmed", 5))
    auditor.projection("c", None, ("pending", 1))
    auditor.projection("d", auditor.order("d", [b.requested("d")]), None)
    report = auditor.finish()
    assert offenders(report, "projection") == ["b", "c", "d"]


def test_the_chain_must_hold_a_confirmed_order_once_and_a_failed_one_never() -> None:
    auditor = Auditor(NOW, HOUR)
    happy = b.happy_story("a")
    once = Landed(1, b.TX, 73_900_000)
    auditor.landings("a", happy, [once])
    auditor.landings("released", happy, [])
    auditor.landings("twice", happy, [once, Landed(2, "x", 1)])
    auditor.landings("other", happy, [Landed(1, "y" * 87, 73_900_000)])
    auditor.landings("failed", failed_story("failed"), [once])
    auditor.landings("open", happy[:4], [once])
    report = auditor.finish()
    assert offenders(report, "chain") == ["twice", "other", "failed"]
    assert report.invariants["chain"].note == "1 confirmed no longer held by the chain"


def test_a_stream_entry_must_be_in_postgresql_identical() -> None:
    auditor = Auditor(NOW, HOUR)
    requested = b.requested("a")
    entry = Entry(StreamId(1, 0), requested)
    auditor.stream_entry(entry, entry)
    auditor.stream_entry(Entry(StreamId(2, 0), b.requested("b")), None)
    auditor.stream_entry(Entry(StreamId(3, 0), b.requested("c")),
                         Entry(StreamId(3, 0), b.requested("c", amount="0.6")))
    auditor.stream_entry(Entry(StreamId(4, 0), b.requested("d")),
                         Entry(StreamId(5, 0), b.requested("d")))
    report = auditor.finish()
    assert offenders(report, "stream") == ["b", "c", "d"]
    assert report.invariants["stream"].checked == 4


def test_differences_name_each_order_and_field() -> None:
    columns = ["order_id", "status", "last_seq"]
    live = {"a": ("a", "confirmed", 5), "b": ("b", "failed", 5), "c": ("c", "pending", 1)}
    rebuilt = {"a": ("a", "confirmed", 5), "b": ("b", "confirmed", 4), "d": ("d", "pending", 1)}
    found = differences(columns, live, rebuilt)
    assert found == [Difference("b", "status", "failed", "confirmed"),
                     Difference("b", "last_seq", 5, 4),
                     Difference("c", ROW, "present", "missing"),
                     Difference("d", ROW, "missing", "present")]
    lines = summary(found, limit=2)
    assert lines[-2:] == ["… and 2 more", "3 order(s) differ, 4 field(s) in all"]
    assert not differences(columns, live, live)


def test_an_export_line_reads_back_as_the_entry_it_was(tmp_path: Path) -> None:
    events = b.happy_story("a")
    path = tmp_path / "log.jsonl"
    path.write_text("".join(jsonl.line(1_700_000_000_000, n, encode(e).decode())
                            for n, e in enumerate(events)) + "\n")
    read = list(jsonl.read(path))
    assert [e.event for e in read] == events
    assert read[2].id == StreamId(1_700_000_000_000, 2)
    assert [e.event.seq for e in jsonl.read(path, keep=lambda order: order == "b")] == []
    path.write_text('{"stream":"1-0","event":{"type":"Nope"}}\n')
    with pytest.raises(jsonl.FormatError, match=r"log\.jsonl:1"):
        list(jsonl.read(path))


def test_an_export_line_is_the_stored_json_untouched() -> None:
    data = '{"a": 1, "type": "OrderRequested"}'
    assert msgspec.json.decode(jsonl.line(5, 7, data)) == {
        "stream": "5-7", "event": {"a": 1, "type": "OrderRequested"}}


def test_the_history_shows_time_event_and_key_facts() -> None:
    story = [b.requested("a"), b.routed("a"), b.built("a"),
             b.attempt_failed("a", seq=4), b.submitted("a", seq=5, attempt=2),
             b.confirmed("a", seq=6, attempt=2)]
    text = render(story)
    lines = text.splitlines()
    assert lines[0] == "order a: 0.5 SOL -> USDC, confirmed"
    assert lines[3].split()[:4] == ["1", "2025-01-01", "12:00:01.000", "OrderRequested"]
    assert "market 0.5 SOL -> USDC, slippage 1.00%" in lines[3]
    assert "quoted 74 USDC, at least 73.26 USDC" in lines[4]
    assert "wraps SOL" in lines[5]
    assert "attempt 1 transient: RPC node timed out; retry in 500 ms" in lines[6]
    assert f"attempt 2, tx {b.TX}" in lines[7]
    assert "0.5 SOL -> 73.9 USDC (at least 73.26 USDC)" in lines[8]
    assert units(123, "NOTATOKEN") == "123 base units NOTATOKEN"


def test_a_waiting_order_is_late_only_past_its_expiry() -> None:
    from shared.events import OrderOpened

    def waiting(order_id: str, **expiry: Any) -> list[AnyEvent]:
        return [b.requested(order_id, order_type="limit", limit_price="150", **expiry),
                OrderOpened(order_id=order_id, seq=2, at=b.at(2))]

    forever = waiting("forever")
    expiring = waiting("expiring", expires_at=b.at(3))
    # Days later: the one without an expiry may still wait; the other should have expired.
    report = audit(forever, expiring, now=b.at(3) + 2 * HOUR)
    assert offenders(report, "deadline") == ["expiring"]
    assert audit(expiring, now=b.at(3) + HOUR / 2).ok


# --- how accepted orders ended (oee soak's audit) --------------------------------------------


def test_accepted_orders_that_each_ended_once_are_all_accounted_for() -> None:
    ids = ["c", "f", "x", "e"]
    statuses = {"c": "confirmed", "f": "failed", "x": "cancelled", "e": "expired"}
    once = dict.fromkeys(ids, 1)
    found = endings(ids, statuses, once, once, {"c": 1, "f": 0}, {}, 100.0)
    assert found.ok and not found.violations
    assert (found.accepted, found.terminal, found.lost, found.still_open) == (4, 4, 0, 0)
    assert found.ended == {"confirmed": 1, "failed": 1, "cancelled": 1, "expired": 1}


def test_an_order_not_ended_is_lost_unless_it_waits_within_its_deadline() -> None:
    ids = ["waits", "late", "stuck", "missing", "routing"]
    statuses = {"waits": "open", "late": "pending", "stuck": "open", "routing": "routing"}
    # "late" is past its deadline by more than the grace; "stuck" has no deadline at all.
    deadlines = {"waits": 100.0, "late": 100.0 - EXPIRY_GRACE_S, "routing": 200.0}
    found = endings(ids, statuses, {}, {}, {}, deadlines, 100.0)
    assert (found.still_open, found.lost, found.terminal) == (1, 4, 0)
    assert not found.ok
    assert [v.order_id for v in found.violations] == ["late", "stuck", "missing", "routing"]
    assert "not in PostgreSQL" in found.violations[2].detail


def test_two_ends_in_either_store_or_two_executions_are_named() -> None:
    ids = ["pg", "log", "twice"]
    statuses = dict.fromkeys(ids, "confirmed")
    found = endings(ids, statuses, {"pg": 2, "log": 1, "twice": 1},
                    {"pg": 1, "log": 2, "twice": 1}, {"twice": 2}, {}, 100.0)
    assert (found.duplicated, found.executed_twice, found.lost) == (2, 1, 0)
    assert [(v.invariant, v.order_id) for v in found.violations] == [
        ("terminal", "pg"), ("terminal", "log"), ("chain", "twice")]
    assert not found.ok
