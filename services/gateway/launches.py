"""GET /launches: the pools launched lately, or since a place in the market's stream, for a
client that follows launches as they happen (the dashboard asks every few seconds).

Launches are rare market facts on their own stream (``shared.launches``), so one range
read per question serves it; the orders' stream and its tail are not touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.openapi import Answer, Documented, Operation, error, query, unavailable
from services.gateway.parts import keyed, parts_of
from services.gateway.validation import Invalid
from services.gateway.views import json
from shared.accounts import Account
from shared.launches import PoolLaunched
from shared.positions import StreamId

MOST = 100
LATEST = 20
# Redis stream ids are two unsigned 64-bit integers.
_ID_PART = 2**64


class Launch(msgspec.Struct):
    # Its place in the market's stream: the `after` that asks for the launches since.
    id: str
    launch: PoolLaunched


class LaunchList(msgspec.Struct):
    """Oldest first."""

    launches: list[Launch]


class Asked(msgspec.Struct, frozen=True):
    after: StreamId | None
    limit: int


def asked(params: Mapping[str, str]) -> Asked:
    """What the query asks for, or Invalid naming the parameter."""
    try:
        limit = int(params.get("limit", str(LATEST)))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MOST:
        raise Invalid("limit", "range", f"limit must be an integer from 1 to {MOST}")
    text = params.get("after")
    if text is None:
        return Asked(None, limit)
    ms, dash, seq = text.partition("-")
    if not (dash and ms.isascii() and ms.isdigit() and seq.isascii() and seq.isdigit()
            and int(ms) < _ID_PART and int(seq) < _ID_PART):
        raise Invalid("after", "cursor", "after must be the id of a launch from a previous "
                      "answer")
    return Asked(StreamId(int(ms), int(seq)), limit)


_decoder = msgspec.json.Decoder(PoolLaunched)


def _launches(entries: list[Any]) -> list[Launch]:
    return [Launch(entry_id.decode(), _decoder.decode(fields[b"d"]))
            for entry_id, fields in entries]


async def recent(request: Request, account: Account) -> Response:
    question = asked(request.query_params)
    launches = parts_of(request).launches
    if question.after is None:
        entries: Any = await launches.redis.xrevrange(launches.stream, count=question.limit)
        entries.reverse()
    else:
        entries = await launches.redis.xrange(launches.stream, min=f"({question.after}",
                                              count=question.limit)
    return json(LaunchList(_launches(entries)))


ROUTE = Documented("GET", "/launches", keyed(recent), Operation(
    id="listLaunches",
    summary="Pools launched: the latest, or those after a launch's id, oldest first",
    description="Without `after`, the latest `limit` launches; with it, the launches after "
    "that one, up to `limit`. Ask again with the last `id` to follow launches as they come.",
    parameters=(
        query("after", {"type": "string", "pattern": "^[0-9]+-[0-9]+$"},
              "The `id` of the last launch seen"),
        query("limit", {"type": "integer", "minimum": 1, "maximum": MOST, "default": LATEST},
              "The most launches in the answer"),
    ),
    responses={
        200: Answer("the launches", LaunchList),
        400: error("a parameter out of its range (`after`: `cursor`, `limit`: `range`)"),
        503: unavailable("the event stream"),
    },
))
