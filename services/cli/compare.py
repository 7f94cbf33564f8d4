"""Two orders projections, compared field by field. Pure: replay reads the rows, this says
where they differ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

# The field named when a whole row is on one side only.
ROW = "(row)"


class Difference(msgspec.Struct, frozen=True, rename="camel"):
    order_id: str
    field: str
    live: Any
    rebuilt: Any


def differences(columns: Sequence[str], live: Mapping[str, Sequence[Any]],
                rebuilt: Mapping[str, Sequence[Any]]) -> list[Difference]:
    """Every differing field of every order, by order id; rows are keyed by order id and
    hold ``columns`` in order."""
    found: list[Difference] = []
    for order_id in sorted(live.keys() | rebuilt.keys()):
        mine, theirs = live.get(order_id), rebuilt.get(order_id)
        if mine is None or theirs is None:
            found.append(Difference(order_id, ROW, "present" if mine else "missing",
                                    "present" if theirs else "missing"))
            continue
        found += [Difference(order_id, name, a, b)
                  for name, a, b in zip(columns, mine, theirs, strict=True) if a != b]
    return found


def summary(found: Sequence[Difference], limit: int = 50) -> list[str]:
    """The first ``limit`` differences, one a line, then how many fields of how many
    orders differ in all."""
    lines = [f"{d.order_id}  {d.field}: live {d.live!r}, rebuilt {d.rebuilt!r}"
             for d in found[:limit]]
    if len(found) > limit:
        lines.append(f"… and {len(found) - limit} more")
    orders = len({d.order_id for d in found})
    lines.append(f"{orders} order(s) differ, {len(found)} field(s) in all")
    return lines
