"""What one WebSocket client may send: text frames of at most 16 KiB, at a bounded rate.

A client that breaks a rule gets an error and a policy close; the checks cost a few
comparisons per message, so a hostile client cannot slow the gateway's other clients.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from services.gateway.validation import Invalid

MAX_MESSAGE_BYTES = 16 * 1024
# Sustained messages per second, and how many may come at once.
MESSAGES_PER_S = 20.0
BURST = 40.0


class MessageGuard:
    def __init__(self, rate: float = MESSAGES_PER_S, burst: float = BURST) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.last = time.monotonic()

    def check(self, message: Mapping[str, Any]) -> str:
        """The text of a received ``websocket.receive`` message, or Invalid."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            raise Invalid("message", "flood",
                          f"more than {self.rate:g} messages a second; slow down")
        self.tokens -= 1
        text = message.get("text")
        if text is None:
            raise Invalid("message", "binary", "send text frames holding JSON")
        if len(text) > MAX_MESSAGE_BYTES or len(text.encode()) > MAX_MESSAGE_BYTES:
            raise Invalid("message", "size", f"a message is at most {MAX_MESSAGE_BYTES} bytes")
        return str(text)
