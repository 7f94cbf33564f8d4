"""Places in the log: a stream entry id, and a vector of them, one per partition.

The log is split into partitions, so a reader's place is where it stands in each
partition. A follower of /orders/stream is handed its vector as
an opaque token after every status, and resumes from it.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec


class StreamId(msgspec.Struct, frozen=True, order=True):
    """A stream entry id; compares as two integers, never as text."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, raw: bytes | str) -> StreamId:
        text = raw.decode() if isinstance(raw, bytes) else raw
        ms, _, seq = text.partition("-")
        return cls(int(ms), int(seq or 0))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


ORIGIN = StreamId(0, 0)


class Positions(msgspec.Struct, frozen=True):
    """Where a reader stands in each partition of the log (``ORIGIN``: before its first
    entry)."""

    ids: tuple[StreamId, ...]

    @classmethod
    def origin(cls, count: int) -> Positions:
        return cls((ORIGIN,) * count)

    @classmethod
    def of(cls, ids: Iterable[StreamId]) -> Positions:
        return cls(tuple(ids))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, partition: int) -> StreamId:
        return self.ids[partition]

    def advanced(self, partition: int, to: StreamId) -> Positions:
        ids = list(self.ids)
        ids[partition] = to
        return Positions(tuple(ids))

    def token(self) -> str:
        """Digits only, shaped as a stream id (``<integer>-<partitions>``), so anything
        that took a stream id as a position still takes the token as one."""
        base = min(i.ms for i in self.ids)
        packed = bytearray(b"\x01")
        packed += base.to_bytes(8, "big")
        for stream_id in self.ids:
            packed += _varint(stream_id.ms - base) + _varint(stream_id.seq)
        return f"{int.from_bytes(packed, 'big')}-{len(self.ids)}"

    @classmethod
    def parse(cls, text: str, count: int) -> Positions:
        """A token; ``ValueError`` when ``text`` is not one."""
        return cls.from_id(StreamId.parse(text.strip()), count)

    @classmethod
    def from_id(cls, given: StreamId, count: int) -> Positions:
        """The positions a token read as a ``StreamId`` stands for (``ValueError`` when it
        is not a token). A token of another partition count resumes from its oldest part
        everywhere: ids are times, so nothing later is missed (some statuses may come
        twice)."""
        raw = given.ms.to_bytes((given.ms.bit_length() + 7) // 8, "big")
        if len(raw) < 9 or raw[0] != 1:
            raise ValueError("not a position")
        base = int.from_bytes(raw[1:9], "big")
        numbers = _read_varints(raw[9:])
        if len(numbers) % 2 or len(numbers) // 2 != given.seq:
            raise ValueError("not a position")
        ids = tuple(StreamId(base + numbers[i], numbers[i + 1])
                    for i in range(0, len(numbers), 2))
        if len(ids) != count:
            return cls((min(ids),) * count)
        return cls(ids)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varints(raw: bytes) -> list[int]:
    numbers: list[int] = []
    value = shift = 0
    for byte in raw:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            numbers.append(value)
            value = shift = 0
    if shift:
        raise ValueError("not a position")
    return numbers
