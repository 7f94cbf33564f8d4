"""What one WebSocket client may send."""

from __future__ import annotations

import pytest

from services.gateway.guard import BURST, MAX_MESSAGE_BYTES, MessageGuard
from services.gateway.validation import Invalid


def rule(guard: MessageGuard, message: dict[str, object]) -> str:
    with pytest.raises(Invalid) as refused:
        guard.check(message)
    return refused.value.rule


def test_text_within_the_limits_passes() -> None:
    assert MessageGuard().check({"type": "websocket.receive", "text": '{"a":1}'}) == '{"a":1}'


def test_binary_frames_are_refused() -> None:
    assert rule(MessageGuard(), {"type": "websocket.receive", "bytes": b"{}"}) == "binary"


@pytest.mark.parametrize(
    "text", ["x" * (MAX_MESSAGE_BYTES + 1), "é" * (MAX_MESSAGE_BYTES // 2 + 1)]
)
def test_messages_over_16_kib_are_refused(text: str) -> None:
    assert rule(MessageGuard(), {"type": "websocket.receive", "text": text}) == "size"


def test_a_burst_passes_and_a_flood_is_refused() -> None:
    guard = MessageGuard()
    message = {"type": "websocket.receive", "text": "{}"}
    for _ in range(int(BURST)):
        guard.check(message)
    assert rule(guard, message) == "flood"


def test_the_rate_refills_the_bucket() -> None:
    guard = MessageGuard(rate=20, burst=2)
    message = {"type": "websocket.receive", "text": "{}"}
    guard.check(message)
    guard.check(message)
    guard.last -= 0.1  # as if 100 ms went by: two more at 20 a second
    guard.check(message)
    guard.check(message)
    assert rule(guard, message) == "flood"
