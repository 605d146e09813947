"""Raft messages as bytes: a tagged JSON encoding of spec.raft's message classes.

Every value is encoded by its type: an attrs class as `{"@": name, field: value...}`, bytes
as `{"b": base64}`, an enum as `{"e": name, "v": value}`, a frozenset as `{"s": [...]}`, a
tuple as a list. Decoding accepts only the classes and enums listed here, so a peer cannot
make this node build anything else; any malformed input raises `FrameError`.
"""

from __future__ import annotations

import base64
import enum
import json
from typing import Any, Final

import attrs

from spec.raft.log import Snapshot
from spec.raft.messages import (
    AppendRequest,
    AppendResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    SnapshotRequest,
    TimeoutNow,
    VoteRequest,
    VoteResponse,
)
from spec.raft.types import Entry, EntryKind, Membership

MESSAGE_CLASSES: Final[tuple[type, ...]] = (
    VoteRequest,
    VoteResponse,
    AppendRequest,
    AppendResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    SnapshotRequest,
    TimeoutNow,
    ReadIndexRequest,
    ReadIndexResponse,
)
_CLASSES: Final[dict[str, type]] = {
    cls.__name__: cls for cls in (*MESSAGE_CLASSES, Entry, Snapshot, Membership)
}
_ENUMS: Final[dict[str, type[enum.Enum]]] = {"EntryKind": EntryKind}
_DEPTH_MAX: Final = 8


class FrameError(Exception):
    """A frame or payload that is not a well-formed message; the connection carrying it is closed."""


_PLAIN_TYPES: Final = frozenset({int, bool, str, type(None)})
# attrs class -> its field names, looked up once (messages are encoded at every append).
_FIELD_NAMES: Final[dict[type, tuple[str, ...]]] = {}


def _encode_value(value: object) -> object:
    value_type: Any = type(value)
    if value_type in _PLAIN_TYPES:
        return value
    if value_type is bytes:
        return {"b": base64.b64encode(value).decode("ascii")}  # type: ignore[arg-type]
    names = _FIELD_NAMES.get(value_type)
    if names is None and attrs.has(value_type):
        names = _FIELD_NAMES[value_type] = tuple(field.name for field in attrs.fields(value_type))
    if names is not None:
        encoded: dict[str, object] = {"@": value_type.__name__}
        for name in names:
            encoded[name] = _encode_value(getattr(value, name))
        return encoded
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, enum.Enum):
        return {"e": type(value).__name__, "v": value.value}
    if isinstance(value, frozenset):
        return {"s": sorted(_encode_value(item) for item in value)}  # type: ignore[type-var]
    if isinstance(value, tuple):
        return [_encode_value(item) for item in value]
    if isinstance(value, bool | int | str):
        return value
    raise TypeError(f"cannot encode {type(value).__name__}")


def _decode_value(value: Any, depth: int) -> object:
    if depth > _DEPTH_MAX:
        raise FrameError("message nested too deeply")
    if isinstance(value, list):
        return tuple(_decode_value(item, depth + 1) for item in value)
    if not isinstance(value, dict):
        if value is None or isinstance(value, bool | int | str):
            return value
        raise FrameError(f"unexpected value of type {type(value).__name__}")
    if "b" in value:
        try:
            return base64.b64decode(value["b"], validate=True)
        except (ValueError, TypeError) as error:
            raise FrameError(f"bad base64: {error}") from None
    if "e" in value:
        enum_class = _ENUMS.get(value["e"])
        if enum_class is None:
            raise FrameError(f"unknown enum {value['e']!r}")
        try:
            return enum_class(value.get("v"))
        except ValueError:
            raise FrameError(f"bad value for {value['e']}") from None
    if "s" in value:
        items = value["s"]
        if not isinstance(items, list):
            raise FrameError("a set must be a list")
        try:
            return frozenset(_decode_value(item, depth + 1) for item in items)
        except TypeError:
            raise FrameError("unhashable set item") from None
    cls = _CLASSES.get(value.get("@", ""))
    if cls is None:
        raise FrameError(f"unknown type {value.get('@')!r}")
    arguments = {}
    for name, expected, item_type in _field_checks(cls):
        if name not in value:
            continue
        argument = _decode_value(value[name], depth + 1)
        if expected is not None and (
            not _has_type(argument, expected)
            or (
                item_type is not None
                and not all(_has_type(item, (item_type,)) for item in argument)  # type: ignore[attr-defined]
            )
        ):
            raise FrameError(f"bad {cls.__name__}.{name}")
        arguments[name] = argument
    try:
        return cls(**arguments)
    except (TypeError, AssertionError, ValueError) as error:
        raise FrameError(f"bad {cls.__name__}: {error}") from None


# Annotation text -> the Python types a decoded field may hold (None allowed when listed).
_FIELD_TYPES: Final[dict[str, tuple[type | None, ...]]] = {
    "NodeId": (int,),
    "Term": (int,),
    "LogIndex": (int,),
    "int": (int,),
    "bool": (bool,),
    "bytes": (bytes,),
    "bytes | None": (bytes, None),
    "NodeId | None": (int, None),
    "EntryKind": (EntryKind,),
    "Snapshot": (Snapshot,),
    "Membership": (Membership,),
    "tuple[Entry, ...]": (tuple,),
    "frozenset[NodeId]": (frozenset,),
}
_ITEM_TYPES: Final[dict[str, type]] = {"tuple[Entry, ...]": Entry, "frozenset[NodeId]": int}


_FieldCheck = tuple[str, tuple[type | None, ...] | None, type | None]
_FIELD_CHECKS: Final[dict[type, tuple[_FieldCheck, ...]]] = {}


def _field_checks(cls: type) -> tuple[_FieldCheck, ...]:
    """Each field of `cls` with the types a decoded value may have (looked up once per class)."""
    checks = _FIELD_CHECKS.get(cls)
    if checks is None:
        checks = _FIELD_CHECKS[cls] = tuple(
            (field.name, _FIELD_TYPES.get(str(field.type)), _ITEM_TYPES.get(str(field.type)))
            for field in attrs.fields(cls)
        )
    return checks


def _has_type(value: object, expected: tuple[type | None, ...]) -> bool:
    if value is None:
        return None in expected
    if isinstance(value, bool):
        return bool in expected
    return any(kind is not None and isinstance(value, kind) for kind in expected)


def encode_message(message: Message) -> bytes:
    return json.dumps(_encode_value(message), separators=(",", ":")).encode()


def decode_message(payload: bytes) -> Message:
    """The message in `payload`; raises FrameError for anything else (never another exception)."""
    try:
        raw = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise FrameError(f"not JSON: {error}") from None
    except RecursionError:
        raise FrameError("payload nested too deeply") from None
    try:
        message = _decode_value(raw, 0)
    except RecursionError:
        raise FrameError("message nested too deeply") from None
    if not isinstance(message, MESSAGE_CLASSES):
        raise FrameError(f"not a Raft message: {type(message).__name__}")
    if isinstance(message, AppendRequest):
        # spec.raft asserts this shape (Log.merge_after) rather than refusing it, so a peer's
        # gapped or out-of-order entries would stop the raft loop: refuse the frame here.
        expected = range(
            message.previous_index + 1, message.previous_index + 1 + len(message.entries)
        )
        if [entry.index for entry in message.entries] != list(expected):
            raise FrameError("append entries are not contiguous after previous_index")
    return message  # type: ignore[return-value]
