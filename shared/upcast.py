"""Reading events written at any schema version: the one read path's machinery.

An event type's current version is the default of its ``v`` field; a stored event without
``v`` was written before versions existed and is version 1. An upcaster turns one version's
wire shape (the JSON object, camelCase keys) into the next one's, so an event of any age is
read as the current class: from Redis, PostgreSQL, an export or the API alike.

Reading stays one parse for every type that never changed; a type with more than one version
costs a second, small parse of the envelope (msgspec skips the payload), and an old event a
third, through the upcasters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class _Envelope(msgspec.Struct):
    type: str
    v: int = 1


_envelope = msgspec.json.Decoder(_Envelope)


class UnknownVersion(ValueError):
    """An event newer than this code: written by a newer release."""


def version_of(event_type: type[msgspec.Struct]) -> int:
    """The version a class writes: its ``v`` field's default."""
    (field,) = (f for f in msgspec.structs.fields(event_type) if f.name == "v")
    assert isinstance(field.default, int)
    return field.default


def tag_of(event_type: type[msgspec.Struct]) -> str:
    tag = event_type.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


class Schema:
    """The event classes a reader decodes into, one per type at its current version, and
    the upcasters from every older version: ``upcasters[(type, n)]`` turns version n into
    n + 1."""

    def __init__(self, types: Sequence[type[msgspec.Struct]],
                 upcasters: Mapping[tuple[str, int], Upcaster] | None = None) -> None:
        self.types = {tag_of(t): t for t in types}
        self.versions = {tag: version_of(t) for tag, t in self.types.items()}
        self.upcasters = dict(upcasters or {})
        for tag, version in self.versions.items():
            missing = [n for n in range(1, version) if (tag, n) not in self.upcasters]
            if missing:
                raise ValueError(f"{tag} v{version} has no upcaster from v{missing[0]}")
        self._versioned = tuple(t for tag, t in self.types.items() if self.versions[tag] > 1)
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
            _union(list(self.types.values())))

    def evolve(self, event_type: type[msgspec.Struct], upcaster: Upcaster) -> Schema:
        """This schema with the next version of one type: ``event_type`` carries the same
        tag, a ``v`` default one higher, and ``upcaster`` turns the previous version into
        it."""
        tag = tag_of(event_type)
        if version_of(event_type) != self.versions[tag] + 1:
            raise ValueError(f"{event_type.__name__} must be version {self.versions[tag] + 1}")
        types = [event_type if t == tag else cls for t, cls in self.types.items()]
        return Schema(types, {**self.upcasters, (tag, self.versions[tag]): upcaster})

    def decode(self, data: bytes | str) -> Any:
        try:
            event = self._decoder.decode(data)
        except msgspec.ValidationError:
            # Maybe an older shape of a versioned type; if not, this raises as well.
            return self._upcast(data)
        if self._versioned and isinstance(event, self._versioned):
            envelope = _envelope.decode(data)
            if envelope.v != self.versions[envelope.type]:
                return self._upcast(data)
        return event

    def _upcast(self, data: bytes | str) -> Any:
        raw = msgspec.json.decode(data)
        if not isinstance(raw, dict) or raw.get("type") not in self.versions:
            return self._decoder.decode(data)  # raises the decoder's own error
        tag, version = raw["type"], int(raw.get("v", 1))
        current = self.versions[tag]
        if version > current:
            raise UnknownVersion(f"{tag} v{version} is newer than this code (v{current})")
        while version < current:
            raw = self.upcasters[(tag, version)](raw)
            version += 1
            raw["v"] = version
        return self._decoder.decode(msgspec.json.encode(raw))


def _union(types: list[type[msgspec.Struct]]) -> Any:
    union: Any = types[0]
    for t in types[1:]:
        union = union | t
    return union
