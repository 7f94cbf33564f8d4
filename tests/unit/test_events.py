"""shared/events.py: the wire format, deterministic ids, statuses."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from shared.events import (
    EVENT_TYPES,
    TERMINAL_STATUSES,
    AttemptFailed,
    Built,
    Cancelled,
    Confirmed,
    Event,
    Expired,
    Failed,
    OrderOpened,
    OrderRequested,
    Reopened,
    Rerouted,
    Routed,
    Submitted,
    Triggered,
    decode,
    encode,
    to_builtins,
)
from shared.route import Candidate
from tests.unit import builders

SAMPLES: dict[type[Event], Event] = {
    OrderRequested: builders.requested(),
    Routed: builders.routed(),
    Rerouted: builders.rerouted(),
    Built: builders.built(),
    Submitted: builders.submitted(),
    AttemptFailed: builders.attempt_failed(),
    Confirmed: builders.confirmed(),
    Failed: builders.failed(),
    OrderOpened: OrderOpened(order_id="o-1", seq=2, at=builders.at(2)),
    Triggered: Triggered(order_id="o-1", seq=3, at=builders.at(3), price=151.2,
                         reason="crossed", pushed=10),
    Reopened: Reopened(order_id="o-1", seq=7, at=builders.at(7), reason="below the bound"),
    Cancelled: Cancelled(order_id="o-1", seq=3, at=builders.at(3), account="desk-1"),
    Expired: Expired(order_id="o-1", seq=3, at=builders.at(3), expires_at=builders.at(3)),
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


def _keys(data: Any) -> set[str]:
    """Every object key in a JSON document, at any depth."""
    if isinstance(data, dict):
        return set(data).union(*(_keys(value) for value in data.values()))
    if isinstance(data, list):
        return set().union(*(_keys(item) for item in data))
    return set()


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda k: k.__name__)
def test_json_is_tagged_and_camel_case(kind: type[Event]) -> None:
    event = SAMPLES[kind]
    data = json.loads(encode(event))
    assert data["type"] == kind.__name__ == event.type
    assert data["orderId"] == event.order_id
    assert data["seq"] == event.seq
    assert data["id"] == event.id
    assert "at" in data
    # Nested structs too: routes, legs, shares and quotes.
    assert not any("_" in key for key in _keys(data)), sorted(_keys(data))


def test_camel_case_payload_keys() -> None:
    data = json.loads(encode(builders.requested()))
    assert {"tokenIn", "tokenOut", "amountIn", "orderType"} <= set(data)
    routed = json.loads(encode(builders.routed()))
    assert {"dex", "route", "candidates", "quotes", "minAmountOut", "amountOut",
            "reason"} <= set(routed)
    assert set(routed["quotes"][0]) == {"dex", "pools", "latencyMs"}
    route = routed["route"]
    assert set(route) == {"kind", "path", "hops", "legs", "amountOut", "priceImpact"}
    assert set(route["hops"][0][0]) == {"dex", "base", "quote", "bps"}
    assert set(route["legs"][0]) == {
        "dex", "tokenIn", "tokenOut", "amountIn", "amountOut", "fee", "priceImpact",
    }
    assert "venues" not in route  # a property, not a field
    built = json.loads(encode(builders.built()))
    assert {"wrapsSol", "unwrapsSol"} <= set(built)
    assert "txHash" in json.loads(encode(builders.submitted()))
    assert {"retryInMs", "kind"} <= set(json.loads(encode(builders.attempt_failed())))
    assert {"executedPrice", "simulatedMs"} <= set(json.loads(encode(builders.confirmed())))


def test_routed_carries_the_route_and_every_candidate() -> None:
    event = builders.routed(route=builders.split())
    back = decode(encode(event))
    assert isinstance(back, Routed)
    assert back.route == event.route
    assert back.dex == back.route.venues == "raydium+meteora"
    assert [c.kind for c in back.candidates] == ["split", "direct"]
    assert back.candidates[0] == back.route
    assert back.amount_out == sum(leg.amount_out for leg in back.route.legs)


@pytest.mark.parametrize(
    ("route", "dex"),
    [
        (builders.direct("raydium"), "raydium"),
        (builders.direct("meteora", "USDC", "SOL", 75_000_000, 490_000_000), "meteora"),
        (builders.split(), "raydium+meteora"),
        (builders.two_hop(), "meteora>raydium"),
        (builders.two_hop(dexes=("raydium", "raydium")), "raydium>raydium"),
    ],
)
def test_routed_round_trips_every_kind_of_route(route: Candidate, dex: str) -> None:
    for event in (builders.routed(route=route), builders.rerouted(route=route)):
        back = decode(encode(event))
        assert type(back) is type(event)
        assert back == event
        assert back.dex == dex


def test_rerouted_is_a_routed_that_keeps_the_status() -> None:
    event = builders.rerouted()
    assert isinstance(event, Routed)
    assert event.status is None
    assert builders.routed().status == "routing"  # the subclass does not change its parent
    assert not event.is_terminal
    data = json.loads(encode(event))
    assert data["type"] == "Rerouted"
    assert "status" not in data
    back = decode(encode(event))
    assert type(back) is Rerouted
    assert back.status is None


@pytest.mark.parametrize(
    ("retryable", "kind", "reroute"),
    [
        (True, "transient", False),
        (True, "slippage", True),
        (True, "expired", True),
        (False, "transient", False),
        (False, "slippage", False),
        (False, "expired", False),
    ],
)
def test_attempt_failed_reroute(retryable: bool, kind: str, reroute: bool) -> None:
    event = builders.attempt_failed(retryable=retryable, kind=kind)
    assert event.reroute is reroute
    back = decode(encode(event))
    assert isinstance(back, AttemptFailed)
    assert back.kind == kind
    assert back.reroute is reroute
    assert "reroute" not in json.loads(encode(event))


def test_attempt_failed_kind_defaults_to_transient() -> None:
    event = AttemptFailed(order_id="o", seq=5, attempt=1, error="x", retryable=True)
    assert event.kind == "transient"
    assert not event.reroute
    # An event written before `kind` existed still decodes.
    data = json.loads(encode(builders.attempt_failed()))
    del data["kind"]
    back = decode(json.dumps(data))
    assert isinstance(back, AttemptFailed)
    assert back.kind == "transient"


def test_attempt_failed_refuses_an_unknown_kind() -> None:
    data = json.loads(encode(builders.attempt_failed()))
    data["kind"] = "cosmic_ray"
    with pytest.raises(msgspec.ValidationError):
        decode(json.dumps(data))


def test_confirmed_simulated_ms_defaults_to_zero() -> None:
    data = json.loads(encode(builders.confirmed()))
    assert data["simulatedMs"] == 2_500.0
    del data["simulatedMs"]
    back = decode(json.dumps(data))
    assert isinstance(back, Confirmed)
    assert back.simulated_ms == 0.0


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


@pytest.mark.parametrize("order_id", ["o-7", "01a21c54-8627-7e5a-a24c-8dbde47bfca5", "é/ü"])
@pytest.mark.parametrize("seq", [1, 7, 12345])
def test_id_is_the_uuid5_of_order_and_seq(order_id: str, seq: int) -> None:
    # Ids written before the hash was taken by hand stay the ids of the same events.
    namespace = uuid.UUID("6f1d3c0e-6c59-4d2a-9b0e-4f6b8f0c2a11")
    expected = str(uuid.uuid5(namespace, f"{order_id}/{seq}"))
    assert builders.submitted(order_id=order_id, seq=seq).id == expected


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
        (Rerouted, None),
        (Built, "building"),
        (Submitted, "submitted"),
        (Confirmed, "confirmed"),
        (Failed, "failed"),
        (AttemptFailed, None),
    ],
)
def test_status_of_each_event(kind: type[Event], status: str | None) -> None:
    assert SAMPLES[kind].status == status


def test_status_is_not_on_the_wire() -> None:
    assert "status" not in json.loads(encode(builders.confirmed()))


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda k: k.__name__)
def test_is_terminal_only_for_the_ends(kind: type[Event]) -> None:
    assert SAMPLES[kind].is_terminal == (kind in (Confirmed, Failed, Cancelled, Expired))


def test_terminal_statuses() -> None:
    assert frozenset({"confirmed", "failed", "cancelled", "expired"}) == TERMINAL_STATUSES


def test_events_are_immutable() -> None:
    event = builders.submitted()
    with pytest.raises(AttributeError):
        event.seq = 9  # type: ignore[misc]
