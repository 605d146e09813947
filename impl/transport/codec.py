"""Raft messages as bytes: a compact binary form for the hot messages, tagged JSON for the rest.

The four messages a loaded cluster sends by the thousand (AppendRequest, AppendResponse,
HeartbeatRequest, HeartbeatResponse) are binary because tagged JSON with base64 data cost a
leader about a tenth of its Python time. They are packed with `struct`, big-endian, after a byte
of 1 to 4 that names the class. Valid JSON never starts with such a byte (in any encoding
`json.loads` detects), so `decode_message` dispatches on the first byte. Every integer is an
unsigned 64-bit field (`Q`), every flag a byte that must be 0 or 1:

- AppendRequest `01`: sender, recipient, term, previous_index, previous_term, commit (6 `Q`),
  the entry count (`I`), then per entry its term (`Q`), kind (`B`: 0 NORMAL, 1 CONFIGURATION),
  data length (`I`) and the raw data. Indexes are not sent: entry i has index
  previous_index + 1 + i, so a binary append is contiguous by construction.
- AppendResponse `02`: sender, recipient, term, index (4 `Q`), rejected (flag), hint_index,
  hint_term (2 `Q`).
- HeartbeatRequest `03`: sender, recipient, term, commit (4 `Q`), then a flag saying whether a
  read_context follows; when it does it is the rest of the payload.
- HeartbeatResponse `04`: sender, recipient, term (3 `Q`), then read_context as above.

Decoding refuses a binary payload that is short, has bytes left over, holds a flag or kind
outside its values, or whose last entry index would not fit in 64 bits. A member built before
the binary form cannot read it.

A message these cannot carry (an integer outside 0..2**64-1, an append whose entries do not
follow previous_index) and every other class is tagged JSON. There every value is encoded by
its type: an attrs class as `{"@": name, field: value...}`, bytes as `{"b": base64}`, an enum
as `{"e": name, "v": value}`, a frozenset as `{"s": [...]}`, a tuple as a list. Decoding
accepts only the classes and enums listed here, so a peer cannot make this node build anything
else; any malformed input, binary or JSON, raises `FrameError` and never another exception.
"""

from __future__ import annotations

import base64
import enum
import json
import struct
from collections.abc import Callable
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


def encode_message_json(message: Message) -> bytes:
    """`message` in tagged JSON, whatever its class (what `encode_message` falls back to)."""
    return json.dumps(_encode_value(message), separators=(",", ":")).encode()


def encode_message(message: Message) -> bytes:
    """`message` in the binary form when its class has one and its values fit, else tagged JSON."""
    encoder = _BINARY_ENCODERS.get(type(message))
    if encoder is not None:
        try:
            encoded = encoder(message)
        except struct.error:  # an integer outside 0..2**64-1, or not an integer at all
            encoded = None
        if encoded is not None:
            return encoded
    return encode_message_json(message)


def decode_message(payload: bytes) -> Message:
    """The message in `payload`; raises FrameError for anything else (never another exception)."""
    decoder = _BINARY_DECODERS.get(payload[:1])
    if decoder is not None:
        return decoder(payload)
    return _decode_json(payload)


def _decode_json(payload: bytes) -> Message:
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


# The binary form (see the module docstring). Each struct starts with the marker byte.
_APPEND_REQUEST_HEAD: Final = struct.Struct(">B6QI")
_ENTRY_HEAD: Final = struct.Struct(">QBI")
_APPEND_RESPONSE: Final = struct.Struct(">B4QB2Q")
_HEARTBEAT_REQUEST_HEAD: Final = struct.Struct(">B4QB")
_HEARTBEAT_RESPONSE_HEAD: Final = struct.Struct(">B3QB")
_MARKER_APPEND_REQUEST, _MARKER_APPEND_RESPONSE = 1, 2
_MARKER_HEARTBEAT_REQUEST, _MARKER_HEARTBEAT_RESPONSE = 3, 4
_INDEX_MAX: Final = 2**64 - 1
_KIND_CODES: Final = {EntryKind.NORMAL: 0, EntryKind.CONFIGURATION: 1}
_KINDS_BY_CODE: Final = (EntryKind.NORMAL, EntryKind.CONFIGURATION)


def _encode_append_request(message: AppendRequest) -> bytes | None:
    entries = message.entries
    parts = [
        _APPEND_REQUEST_HEAD.pack(
            _MARKER_APPEND_REQUEST, message.sender, message.recipient, message.term,
            message.previous_index, message.previous_term, message.commit, len(entries),
        )
    ]  # fmt: skip
    pack_entry = _ENTRY_HEAD.pack
    index: int = message.previous_index
    for entry in entries:
        index += 1
        kind_code = _KIND_CODES.get(entry.kind)
        if entry.index != index or kind_code is None or type(entry.data) is not bytes:
            return None  # indexes are implied by position, so only contiguous entries fit
        parts.append(pack_entry(entry.term, kind_code, len(entry.data)))
        parts.append(entry.data)
    return b"".join(parts)


def _decode_append_request(payload: bytes) -> AppendRequest:
    end = len(payload)
    if end < _APPEND_REQUEST_HEAD.size:
        raise FrameError("binary append request too short")
    (_, sender, recipient, term, previous_index, previous_term, commit, count) = (
        _APPEND_REQUEST_HEAD.unpack_from(payload)
    )
    offset = _APPEND_REQUEST_HEAD.size
    entry_head_size = _ENTRY_HEAD.size
    if previous_index + count > _INDEX_MAX:
        raise FrameError("binary append's entry indexes exceed 64 bits")
    unpack_entry = _ENTRY_HEAD.unpack_from
    entries = []
    index = previous_index
    for _ in range(count):
        index += 1
        if end - offset < entry_head_size:
            raise FrameError("binary append truncated in an entry header")
        entry_term, kind_code, length = unpack_entry(payload, offset)
        offset += entry_head_size
        if kind_code >= len(_KINDS_BY_CODE):
            raise FrameError(f"binary append has an entry of unknown kind {kind_code}")
        entries.append(
            Entry(entry_term, index, _KINDS_BY_CODE[kind_code], payload[offset : offset + length])
        )
        offset += length
    # Data that runs past the end left `offset` past it too: refused here or by the next header.
    if offset != end:
        raise FrameError("binary append is truncated or has trailing bytes")
    return AppendRequest(
        sender, recipient, term, previous_index, previous_term, tuple(entries), commit
    )


def _encode_append_response(message: AppendResponse) -> bytes:
    return _APPEND_RESPONSE.pack(
        _MARKER_APPEND_RESPONSE, message.sender, message.recipient, message.term, message.index,
        message.rejected, message.hint_index, message.hint_term,
    )  # fmt: skip


def _decode_append_response(payload: bytes) -> AppendResponse:
    if len(payload) != _APPEND_RESPONSE.size:
        raise FrameError(f"a binary append response is {_APPEND_RESPONSE.size} bytes")
    _, sender, recipient, term, index, rejected, hint_index, hint_term = _APPEND_RESPONSE.unpack(
        payload
    )
    return AppendResponse(sender, recipient, term, index, _flag(rejected), hint_index, hint_term)


def _flag(value: int) -> bool:
    if value > 1:
        raise FrameError(f"a binary flag is 0 or 1, not {value}")
    return value == 1


def _pack_heartbeat(
    head: struct.Struct, fields: tuple[int, ...], context: bytes | None
) -> bytes | None:
    """`fields` (marker first) packed by `head` with the has-context flag, then the context."""
    packed = head.pack(*fields, context is not None)
    if context is None:
        return packed
    return packed + context if type(context) is bytes else None


def _unpack_heartbeat(payload: bytes, head: struct.Struct) -> tuple[tuple[Any, ...], bytes | None]:
    """The integer fields after the marker, and the read_context (None when the flag says so)."""
    if len(payload) < head.size:
        raise FrameError("binary heartbeat too short")
    *fields, has_context = head.unpack_from(payload)
    if _flag(has_context):
        return tuple(fields[1:]), payload[head.size :]
    if len(payload) != head.size:
        raise FrameError("binary heartbeat without a context has trailing bytes")
    return tuple(fields[1:]), None


def _encode_heartbeat_request(message: HeartbeatRequest) -> bytes | None:
    fields = (
        _MARKER_HEARTBEAT_REQUEST,
        message.sender,
        message.recipient,
        message.term,
        message.commit,
    )
    return _pack_heartbeat(_HEARTBEAT_REQUEST_HEAD, fields, message.read_context)


def _decode_heartbeat_request(payload: bytes) -> HeartbeatRequest:
    (sender, recipient, term, commit), context = _unpack_heartbeat(payload, _HEARTBEAT_REQUEST_HEAD)
    return HeartbeatRequest(sender, recipient, term, commit, context)


def _encode_heartbeat_response(message: HeartbeatResponse) -> bytes | None:
    fields = (_MARKER_HEARTBEAT_RESPONSE, message.sender, message.recipient, message.term)
    return _pack_heartbeat(_HEARTBEAT_RESPONSE_HEAD, fields, message.read_context)


def _decode_heartbeat_response(payload: bytes) -> HeartbeatResponse:
    (sender, recipient, term), context = _unpack_heartbeat(payload, _HEARTBEAT_RESPONSE_HEAD)
    return HeartbeatResponse(sender, recipient, term, context)


_BINARY_ENCODERS: Final[dict[type, Callable[[Any], bytes | None]]] = {
    AppendRequest: _encode_append_request,
    AppendResponse: _encode_append_response,
    HeartbeatRequest: _encode_heartbeat_request,
    HeartbeatResponse: _encode_heartbeat_response,
}
_BINARY_DECODERS: Final[dict[bytes, Callable[[bytes], Message]]] = {
    bytes([_MARKER_APPEND_REQUEST]): _decode_append_request,
    bytes([_MARKER_APPEND_RESPONSE]): _decode_append_response,
    bytes([_MARKER_HEARTBEAT_REQUEST]): _decode_heartbeat_request,
    bytes([_MARKER_HEARTBEAT_RESPONSE]): _decode_heartbeat_response,
}
