"""shared/logs.py: JSON lines that say which process and which order they are about."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from shared.events import OrderRequested
from shared.logs import JsonFormatter, bind, bind_events, current, formatter, log_context


def record(message: str, *args: object, exc_info: Any = None) -> logging.LogRecord:
    return logging.getLogger("oee.router").makeRecord(
        "oee.router", logging.WARNING, __file__, 1, message, args, exc_info
    )


def line(message: str, *args: object) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(
        JsonFormatter("router", "router-host-1").format(record(message, *args)))
    return decoded


def requested(order_id: str, seq: int = 1) -> OrderRequested:
    return OrderRequested(order_id=order_id, seq=seq, token_in="SOL", token_out="USDC",
                          amount_in=1, amount="1", slippage=0.01)


def test_a_line_is_one_json_object_naming_the_process() -> None:
    out = line("order %s routed: %s", "o-1", 'best "net" output\nafter fees')
    assert out["level"] == "WARNING"
    assert (out["service"], out["consumer"], out["logger"]) == (
        "router", "router-host-1", "oee.router")
    assert out["message"] == 'order o-1 routed: best "net" output\nafter fees'
    assert str(out["time"]).endswith("Z")
    assert "orderId" not in out and "eventId" not in out


def test_the_context_adds_the_order_and_event_inside_the_block_only() -> None:
    with log_context(order_id="o-1", event_id="e-1"):
        assert line("x")["orderId"] == "o-1"
        assert line("x")["eventId"] == "e-1"
    assert "orderId" not in line("x")


def test_an_exception_is_part_of_the_line() -> None:
    try:
        raise ValueError("no route")
    except ValueError:
        text = JsonFormatter("router", "c").format(record("failed", exc_info=sys.exc_info()))
    assert "\n" not in text
    assert "ValueError: no route" in json.loads(text)["exception"]


async def test_concurrent_tasks_keep_their_own_order() -> None:
    async def handle(order_id: str) -> dict[str, object]:
        bind_events([requested(order_id)])
        await asyncio.sleep(0)
        return line("handled")

    first, second = await asyncio.gather(handle("o-1"), handle("o-2"))
    assert (first["orderId"], second["orderId"]) == ("o-1", "o-2")
    assert first["eventId"] == requested("o-1").id
    assert "orderId" not in current()


def test_a_batch_of_one_order_names_it_and_a_mixed_batch_names_none() -> None:
    async def tagged(events: list[OrderRequested]) -> dict[str, str]:
        bind_events(events)
        return dict(current())

    same = asyncio.run(tagged([requested("o-1", 1), requested("o-1", 2)]))
    assert same == {"orderId": "o-1"}
    assert asyncio.run(tagged([requested("o-1"), requested("o-2")])) == {}


def test_bind_adds_to_what_is_there() -> None:
    async def tagged() -> dict[str, str]:
        bind(order_id="o-1")
        bind(event_id="e-1")
        return dict(current())

    assert asyncio.run(tagged()) == {"orderId": "o-1", "eventId": "e-1"}


def test_text_stays_the_default_format() -> None:
    assert not isinstance(formatter("text", "router", "c"), JsonFormatter)
    assert isinstance(formatter("json", "router", "c"), JsonFormatter)
