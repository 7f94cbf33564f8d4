"""shared/events.py: the wire format, deterministic ids, statuses."""

from __future__ import annotations

import json
from datetime import timedelta

import msgspec
import pytest

from shared.events import (
    EVENT_TYPES,
    TERMINAL_STATUSES,
    AttemptFailed,
    Built,
    Confirmed,
    Event,
    Failed,
    OrderRequested,
    Routed,
    Submitted,
    decode,
    encode,
    to_builtins,
)
from tests.unit import builders

SAMPLES: dict[type[Event], Event] = {
    OrderRequested: builders.requested(),
    Routed: builders.routed(),
    Built: builders.built(),
    Submitted: builders.submitted(),
    AttemptFailed: builders.attempt_failed(),
    Confirmed: builders.confirmed(),
    Failed: builders.failed(),
}


def test_samples_cover_every_event_type() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda k: k.__name__)
def test_round_trip(kind: type[Event]) -> None:
    event = SAMPLES[kind]
    back = decode(encode(event))
    assert type(back) is kind
    assert back == event
    assert back.id == event.id
    assert back.at == event.at


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda k: k.__name__)
def test_json_is_tagged_and_camel_case(kind: type[Event]) -> None:
    event = SAMPLES[kind]
    data = json.loads(encode(event))
    assert data["type"] == kind.__name__ == event.type
    assert data["orderId"] == event.order_id
    assert data["seq"] == event.seq
    assert data["id"] == event.id
    assert "at" in data
    assert not any("_" in key for key in data), sorted(data)


def test_camel_case_payload_keys() -> None:
    data = json.loads(encode(builders.requested()))
    assert {"tokenIn", "tokenOut", "amountIn", "orderType"} <= set(data)
    routed = json.loads(encode(builders.routed()))
    assert {"minAmountOut", "amountOut"} <= set(routed)
    assert {"amountOut", "feeBps", "latencyMs"} <= set(routed["quotes"][0])
    built = json.loads(encode(builders.built()))
    assert {"wrapsSol", "unwrapsSol"} <= set(built)
    assert "txHash" in json.loads(encode(builders.submitted()))
    assert "retryInMs" in json.loads(encode(builders.attempt_failed()))
    assert "executedPrice" in json.loads(encode(builders.confirmed()))


def test_decode_accepts_str() -> None:
    event = builders.submitted()
    assert decode(encode(event).decode()) == event


def test_decode_refuses_unknown_type() -> None:
    data = json.loads(encode(builders.submitted()))
    data["type"] = "Teleported"
    with pytest.raises(msgspec.ValidationError):
        decode(json.dumps(data))


def test_to_builtins_matches_the_wire() -> None:
    event = builders.confirmed()
    assert to_builtins(event) == json.loads(encode(event))


def test_id_is_deterministic_from_order_and_seq() -> None:
    a = builders.submitted(order_id="o-7", seq=4)
    b = builders.submitted(order_id="o-7", seq=4, tx_hash="other", at=builders.at(99))
    assert a.id == b.id
    assert a.id  # filled in
    assert builders.requested(order_id="o-7", seq=4).id == a.id  # type plays no part


def test_id_differs_for_different_seq_and_order() -> None:
    ids = {builders.submitted(order_id="o-7", seq=seq).id for seq in range(1, 50)}
    assert len(ids) == 49
    assert builders.submitted(order_id="o-8", seq=4).id != builders.submitted(
        order_id="o-7", seq=4
    ).id


def test_explicit_id_is_kept() -> None:
    assert builders.submitted(id="given").id == "given"


def test_at_defaults_to_now_in_utc() -> None:
    event = Submitted(order_id="o", seq=4, tx_hash="x", attempt=1)
    assert event.at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (OrderRequested, "pending"),
        (Routed, "routing"),
        (Built, "building"),
        (Submitted, "submitted"),
        (Confirmed, "confirmed"),
        (Failed, "failed"),
        (AttemptFailed, None),
    ],
)
def test_status_of_each_event(kind: type[Event], status: str | None) -> None:
    assert kind.status == status
    assert SAMPLES[kind].status == status


def test_status_is_not_on_the_wire() -> None:
    assert "status" not in json.loads(encode(builders.confirmed()))


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda k: k.__name__)
def test_is_terminal_only_for_confirmed_and_failed(kind: type[Event]) -> None:
    assert SAMPLES[kind].is_terminal == (kind in (Confirmed, Failed))


def test_terminal_statuses() -> None:
    assert frozenset({"confirmed", "failed"}) == TERMINAL_STATUSES


def test_events_are_immutable() -> None:
    event = builders.submitted()
    with pytest.raises(AttributeError):
        event.seq = 9  # type: ignore[misc]
