"""etcd's WAL record framing and CRC chain, and the scanner that reads one segment.

A segment is a sequence of frames. Each frame is

    8-byte little-endian length field | walpb.Record{type, crc, data} | zero padding to 8 bytes

The low 56 bits of the length field hold the record's byte length. When padding is needed its
most significant byte is `0x80 | pad_bytes`; otherwise that byte is zero. Frames start on
8-byte boundaries, so the length field never straddles a disk sector and is never torn. A zero
length field marks the end of the written data (what follows is preallocated space).

Every record's `crc` is CRC-32C (Castagnoli) over the `data` of every record since the start of
the WAL, this one included: the chain is carried into each new segment by a crc record that
holds the running value. A crc record read with a running value of 0 (the first segment read)
adopts its value instead of checking it, so a reader may start at any segment.

The scanner is stricter than etcd where a rule about torn writes allows it to be (a torn write
loses whole 512-byte sectors, never bits): see `classify_bad_frame`.
"""

from __future__ import annotations

import enum
import mmap
import struct
import sys
from collections.abc import Callable
from typing import Final, cast

import attrs
import crcmod.predefined
from google.protobuf.message import DecodeError

from etcdpb.walpb import record_pb2
from spec import constants

LENGTH_FIELD_BYTES: Final = 8
FRAME_ALIGNMENT_BYTES: Final = 8
SECTOR_BYTES: Final = 512  # etcd's minSectorSize: the unit a torn write loses
RECORD_LENGTH_MASK: Final = (1 << 56) - 1
# A record larger than this is damage, never a real record (the largest real record is one
# request of at most --max-request-bytes plus framing).
RECORD_BYTES_MAX: Final = constants.wal_record_bytes_max


class RecordType(enum.IntEnum):
    """walpb.Record.type values (etcd wal.go)."""

    METADATA = 1
    ENTRY = 2
    STATE = 3
    CRC = 4
    SNAPSHOT = 5


def _crc_function_from_c_extension() -> Callable[[bytes | memoryview, int], int]:
    """CRC-32C from crcmod's C extension; refuse the pure-Python fallback (100x slower)."""
    crcmod_module = sys.modules["crcmod.crcmod"]
    if not getattr(crcmod_module, "_usingExtension", False):
        raise ImportError("crcmod was installed without its C extension; reinstall crcmod")
    return cast(
        Callable[[bytes | memoryview, int], int], crcmod.predefined.mkPredefinedCrcFun("crc-32c")
    )


_crc32c: Final = _crc_function_from_c_extension()
# The C function and table behind `_crc32c`, called directly in the replay loop (crcmod's
# wrapper adds a Python call per record): crc = f(data, previous ^ ~0, table) ^ ~0.
_crc_defaults: Final = cast(tuple[int, bytes, object], _crc32c.__defaults__)
CRC_C_TABLE: Final = _crc_defaults[1]
CRC_C_FUNCTION: Final = cast(Callable[[bytes, int, bytes], int], _crc_defaults[2])
assert CRC_C_FUNCTION(b"123456789", 0xFFFFFFFF, CRC_C_TABLE) ^ 0xFFFFFFFF == 0xE3069283


def crc32c(data: bytes | memoryview, previous: int = 0) -> int:
    """CRC-32C of `data` continuing from `previous` (Go's crc32.Update with the Castagnoli table)."""
    return _crc32c(data, previous)


LENGTH_FIELD: Final = struct.Struct("<Q")

# A segment's bytes: read into memory, or mapped (slicing either gives bytes).
SegmentBuffer = bytes | mmap.mmap


def pad_bytes_for(record_bytes: int) -> int:
    """Zero bytes that bring a record to the next 8-byte boundary (etcd encodeFrameSize)."""
    return (FRAME_ALIGNMENT_BYTES - record_bytes % FRAME_ALIGNMENT_BYTES) % FRAME_ALIGNMENT_BYTES


def encode_length_field(record_bytes: int) -> int:
    """The length field for a record: length in the low 56 bits, `0x80|pad` in the top byte."""
    assert 0 < record_bytes <= RECORD_BYTES_MAX, record_bytes
    pad = pad_bytes_for(record_bytes)
    return record_bytes | ((0x80 | pad) << 56) if pad else record_bytes


def decode_length_field(value: int) -> tuple[int, int] | None:
    """(record bytes, pad bytes), or None when the field is not one etcd could have written.

    etcd sets the flag byte exactly when padding is needed, and the pad always equals the one
    the length implies, so any other combination is damage.
    """
    flag_byte = value >> 56
    record_bytes = value & RECORD_LENGTH_MASK
    pad = pad_bytes_for(record_bytes)
    if flag_byte == 0:
        return (record_bytes, 0) if pad == 0 else None
    if flag_byte == 0x80 | pad and pad != 0:
        return record_bytes, pad
    return None


def encode_frame(record_type: int, crc: int, data: bytes | None) -> bytes:
    """One framed record. `data=None` omits the field, as etcd does for crc records."""
    record = record_pb2.Record(type=record_type, crc=crc)
    if data is not None:
        record.data = data
    body = record.SerializeToString()
    pad = pad_bytes_for(len(body))
    return LENGTH_FIELD.pack(encode_length_field(len(body))) + body + bytes(pad)


class FrameEnd(enum.Enum):
    """How a scan of one segment stopped."""

    END = "end"  # end of file, or a zero length field with only zeros after it in its sector
    TORN = "torn"  # a frame a torn write explains; the segment's data ends before it
    CORRUPT = "corrupt"  # damage no torn write explains
    PAUSED = "paused"  # `max_records` were read; the scan may continue from `end_offset`


@attrs.frozen(slots=True)
class SegmentScan:
    """The outcome of scanning one segment: its valid records, then where and why it stopped.

    `records` holds (offset, type, crc, data) for every frame up to `end_offset` (data is b""
    for crc records); `running_crc` is the chain value after the last of them.
    """

    records: list[tuple[int, int, int, bytes]]
    end: FrameEnd
    end_offset: int
    running_crc: int
    reason: str = ""


def _all_zero(buffer: SegmentBuffer, start: int, stop: int) -> bool:
    """Whether buffer[start:stop] holds only zero bytes (at most a sector: copied to count)."""
    return buffer[start:stop].count(0) == stop - start


_KNOWN_RECORD_TYPES: Final = frozenset(int(record_type) for record_type in RecordType)


def scan_segment(
    buffer: SegmentBuffer,
    running_crc: int,
    tail: bool,
    start_offset: int = 0,
    max_records: int | None = None,
) -> SegmentScan:
    """Read frames from the start of a segment, checking framing and the CRC chain.

    Stops at the end of the data, or at the first damaged frame. In the last segment (`tail`)
    a damaged frame that a torn write explains ends the data (`TORN`); anywhere else any
    damage is `CORRUPT` (etcd decoder.go: only the last file may hold a torn entry).

    `start_offset` continues a scan that paused after `max_records` records. `read_frame`
    only accepts or rejects; `frame_problem` says why a frame was rejected, check by check.
    """
    records: list[tuple[int, int, int, bytes]] = []
    record = record_pb2.Record()
    size = len(buffer)
    offset = start_offset
    while offset + LENGTH_FIELD_BYTES <= size:
        if max_records is not None and len(records) >= max_records:
            return SegmentScan(records, FrameEnd.PAUSED, offset, running_crc)
        if LENGTH_FIELD.unpack_from(buffer, offset)[0] == 0:
            sector_end = min(size, (offset // SECTOR_BYTES + 1) * SECTOR_BYTES)
            if not _all_zero(buffer, offset, sector_end):
                reason = "zero length field followed by data in the same sector"
                return SegmentScan(records, FrameEnd.CORRUPT, offset, running_crc, reason)
            return SegmentScan(records, FrameEnd.END, offset, running_crc)
        frame = read_frame(buffer, offset, running_crc, record)
        if frame is None:
            problem = frame_problem(buffer, offset, running_crc)
            end_kind = classify_bad_frame(buffer, offset, running_crc) if tail else FrameEnd.CORRUPT
            return SegmentScan(records, end_kind, offset, running_crc, problem)
        record_type, running_crc, data, next_offset = frame
        records.append((offset, record_type, running_crc, data))
        offset = next_offset
    if offset < size:
        end_kind = FrameEnd.TORN if tail else FrameEnd.CORRUPT
        return SegmentScan(
            records, end_kind, offset, running_crc, "partial length field at end of file"
        )
    return SegmentScan(records, FrameEnd.END, offset, running_crc)


def read_frame(
    buffer: SegmentBuffer, offset: int, running_crc: int, record: record_pb2.Record
) -> tuple[int, int, bytes, int] | None:
    """The frame at `offset`, if it holds a valid record continuing the chain at `running_crc`:
    (record type, chain value after it, data, offset of the next frame). None for anything
    else, a zero length field included. `record` is scratch space for the parse (reused
    because creating a message costs more than parsing a small one).

    Crc records have no data (b""); a crc record read with a chain value of 0 adopts its value.
    """
    size = len(buffer)
    (value,) = LENGTH_FIELD.unpack_from(buffer, offset)
    record_bytes = value & RECORD_LENGTH_MASK
    flag = value >> 56
    pad = flag & 7
    pad_needed = -record_bytes & 7
    start = offset + LENGTH_FIELD_BYTES
    end = start + record_bytes
    if not (
        ((flag == 0x80 | pad_needed and pad_needed) if flag else not pad_needed)
        and 0 < record_bytes <= RECORD_BYTES_MAX
        and end + pad <= size
        and (pad == 0 or LENGTH_FIELD.unpack_from(buffer, end + pad - 8)[0] >> (64 - 8 * pad) == 0)
    ):
        return None
    # The record's first 8 bytes: 0x08, type (one byte), 0x10, the crc varint. etcd's 5-byte
    # uint32 varint ends below 0x10; else bits would be thrown away unseen.
    (header,) = LENGTH_FIELD.unpack_from(buffer, start)
    record_type = (header >> 8) & 0xFF
    if (
        header & 0xFF00FF != 0x100008
        or record_type not in _KNOWN_RECORD_TYPES
        or (header & 0x80808080000000 == 0x80808080000000 and header >> 60)
    ):
        return None
    try:
        record.ParseFromString(buffer[start:end])
    except DecodeError:
        return None
    if record.type != record_type:  # a second type field: not etcd's bytes
        return None
    stored_crc = record.crc
    if record_type == RecordType.CRC:
        if running_crc != 0 and stored_crc != running_crc:
            return None
        return record_type, stored_crc, b"", end + pad
    data = record.data
    if stored_crc != CRC_C_FUNCTION(data, running_crc ^ 0xFFFFFFFF, CRC_C_TABLE) ^ 0xFFFFFFFF:
        return None
    return record_type, stored_crc, data, end + pad


def frame_problem(buffer: SegmentBuffer, offset: int, running_crc: int) -> str:
    """Why the frame at `offset` is not a valid record continuing the chain at `running_crc`,
    one rule at a time: the rules `scan_segment` applies in its fast loop."""
    size = len(buffer)
    (value,) = LENGTH_FIELD.unpack_from(buffer, offset)
    decoded = decode_length_field(value)
    if decoded is None:
        return f"malformed length field {value:#018x}"
    record_bytes, pad = decoded
    start = offset + LENGTH_FIELD_BYTES
    end = start + record_bytes
    if record_bytes > RECORD_BYTES_MAX or end + pad > size:
        return f"record length {record_bytes} runs past the end of the file or the limit"
    if buffer[end : end + pad].count(0) != pad:
        return "non-zero bytes in the padding"
    record = record_pb2.Record()
    try:
        record.ParseFromString(buffer[start:end])
    except DecodeError:
        return "record does not decode as walpb.Record"
    if record.type not in _KNOWN_RECORD_TYPES:
        return f"unexpected record type {record.type}"
    crc_bytes = buffer[start + 3 : start + 8]
    if (
        buffer[start] != 0x08
        or buffer[start + 1] != record.type
        or buffer[start + 2] != 0x10
        or (all(b & 0x80 for b in crc_bytes[:4]) and crc_bytes[4] > 0x0F)
    ):
        # etcd writes the type (one byte) then the crc from start+2, once each; a 5-byte
        # uint32 varint ends in a byte below 0x10. Anything else decodes with bits thrown away.
        return "record header is not encoded as etcd encodes it"
    if record.type == RecordType.CRC:
        if running_crc != 0 and record.crc != running_crc:
            return (
                f"crc mismatch: crc record holds {record.crc:#010x}, chain is {running_crc:#010x}"
            )
        raise AssertionError("frame_problem called on a valid crc record")
    chained = crc32c(record.data, running_crc)
    if record.crc != chained:
        return f"crc mismatch: record holds {record.crc:#010x}, chain gives {chained:#010x}"
    raise AssertionError("frame_problem called on a valid record")


def classify_bad_frame(buffer: SegmentBuffer, offset: int, running_crc: int) -> FrameEnd:
    """Whether a damaged frame in the last segment is a torn write (`TORN`) or damage.

    etcd (decoder.go isTornEntry) calls a bad last-file record torn when any 512-byte-sector
    chunk of it is all zeros, or when the file ends inside it. A torn write loses whole sectors
    and never tears the 8-byte length field, so this is stricter in three ways:
    a malformed length field is damage; a record that is intact under the length its own
    header implies means the length field was damaged; and a zero chunk only counts when the
    whole sector is zero, and the sector is not the one holding the length field.
    """
    size = len(buffer)
    (value,) = LENGTH_FIELD.unpack_from(buffer, offset)
    decoded = decode_length_field(value)
    if decoded is None:
        return FrameEnd.CORRUPT
    record_bytes, pad = decoded
    if record_bytes > RECORD_BYTES_MAX:
        return FrameEnd.CORRUPT
    start = offset + LENGTH_FIELD_BYTES
    if _intact_under_implied_length(buffer, start, running_crc, record_bytes):
        return FrameEnd.CORRUPT
    if start + record_bytes + pad > size:
        return FrameEnd.TORN
    first_sector = offset // SECTOR_BYTES + 1
    last_sector = (start + record_bytes - 1) // SECTOR_BYTES
    for sector in range(first_sector, last_sector + 1):
        sector_start = sector * SECTOR_BYTES
        if _all_zero(buffer, sector_start, min(size, sector_start + SECTOR_BYTES)):
            return FrameEnd.TORN
    return FrameEnd.CORRUPT


def encode_varint(value: int) -> bytes:
    """A protobuf varint: 7 bits per byte, least significant first, high bit on all but the last."""
    assert value >= 0, value
    encoded = bytearray()
    while value >= 0x80:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    encoded.append(value)
    return bytes(encoded)


def _read_varint(buffer: SegmentBuffer, position: int) -> tuple[int, int] | None:
    """(value, next position) of a protobuf varint, or None if it is cut off or too long."""
    value = 0
    for shift in range(0, 70, 7):
        if position >= len(buffer):
            return None
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
    return None


def _implied_record_bytes(buffer: SegmentBuffer, start: int) -> int | None:
    """The length a walpb.Record starting at `start` has by its own fields, as etcd writes them
    (type, crc, then data if present), or None if the bytes do not begin such a record."""
    position = start
    for expected_tag in (0x08, 0x10):
        if position >= len(buffer) or buffer[position] != expected_tag:
            return None
        varint = _read_varint(buffer, position + 1)
        if varint is None:
            return None
        position = varint[1]
    if position < len(buffer) and buffer[position] == 0x1A:
        varint = _read_varint(buffer, position + 1)
        if varint is None:
            return None
        data_bytes, position = varint
        position += data_bytes
    return position - start


def _intact_under_implied_length(
    buffer: SegmentBuffer, start: int, running_crc: int, claimed_bytes: int
) -> bool:
    """True when the record at `start` decodes and chains under a length other than the claimed
    one: the record is whole, so its length field is what was damaged."""
    implied = _implied_record_bytes(buffer, start)
    if implied is None or implied == claimed_bytes or start + implied > len(buffer):
        return False
    record = record_pb2.Record()
    try:
        record.ParseFromString(buffer[start : start + implied])
    except DecodeError:
        return False
    if record.type not in _KNOWN_RECORD_TYPES:
        return False
    if record.type == RecordType.CRC:
        return running_crc == 0 or record.crc == running_crc
    return record.crc == crc32c(record.data, running_crc)
