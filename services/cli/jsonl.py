"""The export format: JSON Lines, one event per line, in stream order, exactly as the log
stores it, with its stream position:

    {"stream":"1764000000000-0","event":{"type":"OrderRequested","orderId":"…","seq":1,…}}

``event`` is the stored JSON itself (its version included), so a file replays and audits
exactly as the log it came from; events of older versions are upcast when read, as the
log's are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from shared.events import decode
from shared.stream import Entry, StreamId


class Line(msgspec.Struct, frozen=True):
    stream: str
    event: msgspec.Raw


class _Owner(msgspec.Struct, rename="camel"):
    order_id: str


class FormatError(ValueError):
    """A line that is not an exported event."""


_lines = msgspec.json.Decoder(Line)
_owner = msgspec.json.Decoder(_Owner)


def line(stream_ms: int, stream_seq: int, data: str) -> str:
    """One exported line from a stored row: ``data`` is written untouched."""
    return f'{{"stream":"{stream_ms}-{stream_seq}","event":{data}}}\n'


def parse(text: bytes | str) -> Entry:
    try:
        parsed = _lines.decode(text)
        return Entry(StreamId.parse(parsed.stream), decode(parsed.event))
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
        raise FormatError(str(error)) from None


def read(path: Path, keep: Callable[[str], bool] | None = None) -> Iterator[Entry]:
    """Every event of an export, in file order; blank lines are skipped. With ``keep``,
    only the events of the orders it keeps (decided before decoding the rest)."""
    with path.open("rb") as file:
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                if keep is not None and not keep(_owner.decode(_lines.decode(text).event)
                                                 .order_id):
                    continue
                yield parse(text)
            except (FormatError, msgspec.DecodeError, msgspec.ValidationError) as error:
                raise FormatError(f"{path}:{number}: {error}") from None
