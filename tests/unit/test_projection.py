"""services/persister/projection.py: the rows one batch of events writes."""

from __future__ import annotations

import json

from services.persister.projection import event_rows, order_rows
from shared.events import AnyEvent
from shared.stream import Entry, StreamId
from tests.unit import builders


def entries(events: list[AnyEvent], ms: int = 1_700_000_000_000) -> list[Entry]:
    return [Entry(StreamId(ms + i, i), event) for i, event in enumerate(events)]


def test_full_story_gives_one_confirmed_row() -> None:
    story = builders.happy_story()
    (row,) = order_rows(entries(story))
    assert row.order_id == "o-1"
    assert row.status == "confirmed"
    assert row.status_seq == 5
    assert row.last_seq == 5
    assert row.token_in == "SOL"
    assert row.token_out == "USDC"
    assert row.amount == "0.5"
    assert row.amount_in == 500_000_000
    assert row.slippage == 0.01
    assert row.order_type == "market"
    assert row.routed_dex == "raydium"
    assert row.quoted_out == 74_000_000
    assert row.min_amount_out == 73_260_000
    assert row.tx_hash == builders.TX
    assert row.amount_out == 73_900_000
    assert row.executed_price == 147.8
    assert row.failed_attempts == 0
    assert row.error is None
    assert row.created_at == builders.at(1)
    assert row.updated_at == builders.at(5)


def test_batch_with_only_a_later_event_leaves_columns_alone() -> None:
    (row,) = order_rows(entries([builders.submitted(seq=4, tx_hash="tx-4")]))
    assert row.status == "submitted"
    assert row.status_seq == 4
    assert row.last_seq == 4
    assert row.tx_hash == "tx-4"
    for column in (
        "token_in", "token_out", "amount", "amount_in", "slippage", "order_type", "account",
        "routed_dex", "quoted_out", "min_amount_out", "amount_out", "executed_price",
        "error", "created_at",
    ):
        assert getattr(row, column) is None, column
    assert row.updated_at == builders.at(4)


def test_batch_with_only_an_attempt_failure() -> None:
    (row,) = order_rows(entries([builders.attempt_failed(seq=5, attempt=2)]))
    # No status-bearing event: status_seq 0 means the stored status wins.
    assert row.status_seq == 0
    assert row.last_seq == 5
    assert row.failed_attempts == 2


def test_one_row_per_order_sorted_by_id() -> None:
    batch: list[AnyEvent] = [
        builders.requested(order_id="b"),
        builders.requested(order_id="a"),
        builders.routed(order_id="b"),
        builders.failed(order_id="c", seq=9),
    ]
    rows = order_rows(entries(batch))
    assert [r.order_id for r in rows] == ["a", "b", "c"]
    by_id = {r.order_id: r for r in rows}
    assert by_id["a"].status == "pending"
    assert by_id["b"].status == "routing"
    assert by_id["b"].routed_dex == "raydium"
    assert by_id["c"].status == "failed"
    assert by_id["c"].error == "RPC node timed out"


def test_order_rows_of_empty_batch() -> None:
    assert order_rows([]) == []


def test_event_rows_keep_stream_ids_as_ints() -> None:
    story = builders.happy_story()
    batch = [Entry(StreamId(1_700_000_000_000 + i, 10 - i), e) for i, e in enumerate(story)]
    rows = event_rows(batch)
    assert len(rows) == len(story)
    for row, entry in zip(rows, batch, strict=True):
        assert isinstance(row.stream_ms, int)
        assert isinstance(row.stream_seq, int)
        assert (row.stream_ms, row.stream_seq) == (entry.id.ms, entry.id.seq)
        assert row.order_id == entry.event.order_id
        assert row.seq == entry.event.seq
        assert row.event_id == entry.event.id
        assert row.type == type(entry.event).__name__
        assert row.at == entry.event.at
        assert json.loads(row.data)["type"] == row.type


def test_event_rows_keep_big_stream_ids() -> None:
    (row,) = event_rows([Entry(StreamId.parse("1700000000000-18446744073709551615"),
                               builders.requested())])
    assert row.stream_ms == 1_700_000_000_000
    assert row.stream_seq == 18_446_744_073_709_551_615


def test_rerouted_updates_the_route_columns_not_the_status() -> None:
    rerouted = builders.rerouted(seq=6)
    batch: list[AnyEvent] = [*builders.happy_story()[:4], rerouted]
    (row,) = order_rows(entries(batch))
    assert row.status == "submitted"
    assert row.status_seq == 4
    assert row.last_seq == 6
    assert row.routed_dex == "meteora"
    assert row.quoted_out == rerouted.amount_out == 73_500_000
    assert row.min_amount_out == rerouted.min_amount_out
