"""shared/positions.py: stream ids parse and compare as two integers; a reader's positions
travel as one token."""

from __future__ import annotations

import pytest

from shared.positions import Positions, StreamId


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


POSITIONS = Positions.of([StreamId(1_700_000_000_000, 3), StreamId(1_700_000_000_517, 0),
                          StreamId(0, 0), StreamId(1_700_000_100_000, 12)])


def test_a_token_round_trips() -> None:
    token = POSITIONS.token()
    assert Positions.parse(token, 4) == POSITIONS
    assert Positions.parse(f" {token}\n", 4) == POSITIONS
    # Shaped as a stream id: whatever takes one takes the token.
    assert Positions.from_id(StreamId.parse(token), 4) == POSITIONS


def test_a_token_of_another_partition_count_resumes_from_its_oldest_part() -> None:
    assert Positions.parse(POSITIONS.token(), 2) == Positions.of([StreamId(0, 0)] * 2)


@pytest.mark.parametrize("text", ["5-1", "0-0", "1700000000000-3", "18446744073709551615-1",
                                  "abc", ""])
def test_what_is_not_a_token_is_refused(text: str) -> None:
    """A plain stream id is not a position: a reader's place is one per partition."""
    with pytest.raises(ValueError):
        Positions.parse(text, 4)


def test_a_token_with_its_count_changed_is_refused() -> None:
    number, _, count = POSITIONS.token().partition("-")
    with pytest.raises(ValueError):
        Positions.parse(f"{number}-{int(count) + 1}", 4)
