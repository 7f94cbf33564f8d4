"""shared/stream.py: stream ids parse and compare as two integers."""

from __future__ import annotations

import pytest

from shared.stream import StreamId


def test_parse_text_and_bytes() -> None:
    assert StreamId.parse("1700000000000-3") == StreamId(1_700_000_000_000, 3)
    assert StreamId.parse(b"1700000000000-3") == StreamId(1_700_000_000_000, 3)


def test_parse_without_seq() -> None:
    assert StreamId.parse("42") == StreamId(42, 0)


@pytest.mark.parametrize(("low", "high"), [("9-0", "10-0"), ("5-9", "5-10"), ("0-0", "0-1")])
def test_ordering_is_numeric(low: str, high: str) -> None:
    assert StreamId.parse(low) < StreamId.parse(high)
    assert StreamId.parse(high) > StreamId.parse(low)


@pytest.mark.parametrize(("low", "high"), [("9-0", "10-0"), ("5-9", "5-10")])
def test_text_order_would_be_wrong(low: str, high: str) -> None:
    assert low > high  # as text these sort the other way
    assert StreamId.parse(low) < StreamId.parse(high)


def test_sorting() -> None:
    raw = ["10-0", "9-5", "9-10", "100-0", "9-9"]
    assert [str(i) for i in sorted(StreamId.parse(r) for r in raw)] == [
        "9-5", "9-9", "9-10", "10-0", "100-0",
    ]


@pytest.mark.parametrize("text", ["0-0", "1700000000000-0", "5-10", "18446744073709551615-7"])
def test_str_round_trip(text: str) -> None:
    assert str(StreamId.parse(text)) == text


def test_equal_and_hashable() -> None:
    assert StreamId.parse("5-1") == StreamId(5, 1)
    assert len({StreamId(5, 1), StreamId.parse("5-1")}) == 1


@pytest.mark.parametrize("text", ["abc", "1-x", ""])
def test_garbage_does_not_parse(text: str) -> None:
    with pytest.raises(ValueError):
        StreamId.parse(text)
