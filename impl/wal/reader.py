"""Reading a WAL directory: which segments, in what order, and what their records mean.

`read_wal` never changes the directory; it reports a torn tail so the writer (or `etcdref wal
verify`) can decide what to do. The rules mirror etcd's `ReadAll` (server/wal/wal.go) and add
checks etcd does not make, each stated where it is made, so that damage the CRC cannot see
(the record type is outside the CRC) is still caught.
"""

from __future__ import annotations

import enum
import itertools
import mmap
import os
import struct
from pathlib import Path
from typing import Final, NamedTuple

import attrs
from google.protobuf.message import DecodeError

from etcdpb.etcdserverpb import etcdserver_pb2
from etcdpb.raftpb import raft_pb2
from etcdpb.walpb import record_pb2
from impl.collector import collector_paused
from impl.wal.errors import WalCorruptError, WalError, WalNotFoundError, WalSnapshotError
from impl.wal.files import SegmentName, list_segments
from impl.wal.record import (
    CRC_C_FUNCTION,
    CRC_C_TABLE,
    LENGTH_FIELD_BYTES,
    RECORD_BYTES_MAX,
    FrameEnd,
    RecordType,
    SegmentBuffer,
    SegmentScan,
    decode_length_field,
    encode_varint,
    read_frame,
    scan_segment,
)
from impl.wal.types import (
    EMPTY_HARD_STATE,
    ZERO_SNAPSHOT,
    Entry,
    EntryType,
    HardState,
    SnapshotPoint,
    WalContents,
    WalMetadata,
)


class TailState(enum.Enum):
    """What follows the last valid record of the last segment."""

    CLEAN = "clean"  # zeros (preallocated space) or the end of the file
    TORN = "torn"  # a torn write: repair cuts it off, keeping a .broken copy
    GARBAGE = "garbage"  # valid end, then non-zero bytes a torn write left in later sectors


@attrs.frozen(slots=True)
class WalReadResult:
    """A WAL's contents and what the writer needs to continue it."""

    contents: WalContents
    segments: tuple[SegmentName, ...]  # the segments read, oldest first
    tail_path: Path
    tail_valid_bytes: int  # the offset right after the last valid record of the last segment
    tail_state: TailState
    tail_reason: str  # why the tail is not clean ("" when it is)
    running_crc: int  # the CRC chain after the last valid record
    snapshot_found: bool
    last_index: int  # index of the last entry written (0 with none), etcd's w.enti
    snapshot_points: tuple[SnapshotPoint, ...]  # every snapshot record read, in order


def select_segments(
    directory: Path, snapshot_index: int, every_segment: bool = False
) -> list[SegmentName]:
    """The segments to read for a snapshot at `snapshot_index`: the last one whose first index
    is at most it, and every later one; sequence numbers must be contiguous (etcd
    searchIndex and isValidSeq, else `wal: file not found`). `every_segment` selects them all."""
    if not directory.is_dir():
        raise WalNotFoundError(f"wal: directory {directory} does not exist")
    segments = list_segments(directory)
    if not segments:
        raise WalNotFoundError(f"wal: no segment files in {directory}")
    starts = [
        position for position, name in enumerate(segments) if name.first_index <= snapshot_index
    ]
    if every_segment:
        starts = [0]
    if not starts:
        raise WalNotFoundError(
            f"wal: file not found: no segment in {directory} starts at or before index {snapshot_index}"
        )
    selected = segments[starts[-1] :]
    for previous, current in itertools.pairwise(selected):
        if current.sequence != previous.sequence + 1:
            raise WalNotFoundError(
                f"wal: file not found: sequence jumps from {previous.file_name()} to {current.file_name()}"
            )
    return selected


@attrs.define
class _Replay:
    """The state `read_wal` carries from record to record (mutable, local to one read)."""

    snapshot: SnapshotPoint | None  # None: take the point just before the first entry read
    metadata: WalMetadata | None = None
    hard_state: HardState = EMPTY_HARD_STATE
    entries: list[Entry] = attrs.Factory(list)
    snapshot_found: bool = False
    snapshot_points: list[SnapshotPoint] = attrs.Factory(list)
    last_index: int = 0
    entry_term_max: int = 0
    reading_all: bool = False  # read_wal(directory, None): every segment, no snapshot asked for


def read_wal(directory: Path, snapshot: SnapshotPoint | None = ZERO_SNAPSHOT) -> WalReadResult:
    """Read every record from the snapshot's segment on; raise on anything but a torn tail.

    `snapshot=None` reads every segment in the directory and returns every entry from the
    first one found, without requiring a snapshot record (for `etcdref wal verify`).

    Mirrors etcd ReadAll: the last hard state wins; entries at or below the snapshot index are
    skipped; an entry at an index already read replaces it and everything after it (a new
    leader overwrote an uncommitted suffix). The snapshot record must be found, with the same
    term (etcd ErrSnapshotNotFound, ErrSnapshotMismatch).
    """
    # Replay builds one object per entry; the cyclic GC would rescan them all again and again
    # while the list grows (no cycles are created here), so it is paused for the read.
    with collector_paused():
        return _read_wal(directory, snapshot)


def _read_wal(directory: Path, snapshot: SnapshotPoint | None) -> WalReadResult:
    """`read_wal` without the GC pause: segment by segment, tail state from the last one."""
    if snapshot is None:
        segments = select_segments(directory, -1, every_segment=True)
        replay = _Replay(None, snapshot_found=True, reading_all=True)
    else:
        segments = select_segments(directory, snapshot.index)
        replay = _Replay(snapshot)
    running_crc = 0
    tail_path = directory / segments[-1].file_name()
    tail_valid_bytes = 0
    tail_state, tail_reason = TailState.CLEAN, ""
    for position, segment in enumerate(segments):
        path = directory / segment.file_name()
        is_tail = position == len(segments) - 1
        if not is_tail:
            mapped = _map_file(path)
            try:
                running_crc = _replay_segment(replay, path, mapped, running_crc, False).running_crc
            finally:
                if isinstance(mapped, mmap.mmap):
                    mapped.close()
        else:
            buffer = _read_file(path)
            scan = _replay_segment(replay, path, buffer, running_crc, True)
            running_crc = scan.running_crc
            tail_valid_bytes = scan.end_offset
            if scan.end is FrameEnd.TORN:
                tail_state, tail_reason = TailState.TORN, scan.reason
            elif buffer.count(0, scan.end_offset) != len(buffer) - scan.end_offset:
                tail_state, tail_reason = TailState.GARBAGE, "non-zero bytes after the last record"
    if replay.metadata is None:  # unreachable: _replay_segment demands one per segment
        raise WalCorruptError(tail_path, 0, "no metadata record")
    if not replay.snapshot_found:
        wanted = snapshot or ZERO_SNAPSHOT
        raise WalSnapshotError(
            f"wal: snapshot not found: no snapshot record for index {wanted.index} term {wanted.term}"
        )
    contents = WalContents(replay.metadata, replay.hard_state, tuple(replay.entries))
    return WalReadResult(
        contents,
        tuple(segments),
        tail_path,
        tail_valid_bytes,
        tail_state,
        tail_reason,
        running_crc,
        replay.snapshot_found,
        replay.last_index,
        tuple(replay.snapshot_points),
    )


def _read_file(path: Path) -> bytes:
    """A whole segment (at most the segment size) as bytes; an OSError becomes a WalError."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise WalError(f"wal: cannot read {path}: {error.strerror or error}") from None


def _map_file(path: Path) -> SegmentBuffer:
    """A segment other than the last, mapped read-only (b"" when empty); close it after use.

    For speed: reading a 64 MB segment copies it into freshly allocated memory, about 40 ms
    here, 6 to 8% of its replay; mapping it copies nothing. Only the last segment is ever
    truncated (torn-tail repair, and etcd's cut of the segment it was writing), and a file
    that shrank under a mapping would kill the reader with SIGBUS, so the last one is read.
    """
    try:
        with path.open("rb") as file:
            if os.fstat(file.fileno()).st_size == 0:
                return b""
            return mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as error:
        raise WalError(f"wal: cannot read {path}: {error.strerror or error}") from None


_SEGMENT_HEADER = (RecordType.CRC, RecordType.METADATA)


def _replay_segment(
    replay: _Replay, path: Path, buffer: SegmentBuffer, running_crc: int, tail: bool
) -> SegmentScan:
    """Apply one segment's records in order and say how it ends (END or TORN; CORRUPT raises).

    Every segment etcd writes begins with a crc record and then a metadata record (wal.go
    Create and cut); one that does not was damaged or is not a WAL segment. After those,
    runs of ordinary entry and state records go through `_replay_run`; any other record,
    and any record that path declines, is read by `scan_segment` and applied by
    `_apply_record`, which are the rules.
    """
    offset = 0
    seen = 0
    while True:
        if seen >= len(_SEGMENT_HEADER) and FAST_REPLAY:
            offset, running_crc = _replay_run(replay, path, buffer, offset, running_crc)
        scan = scan_segment(buffer, running_crc, tail, start_offset=offset, max_records=1)
        if scan.end is FrameEnd.CORRUPT:
            raise WalCorruptError(path, scan.end_offset, scan.reason)
        for record_offset, record_type, _, data in scan.records:
            if seen < len(_SEGMENT_HEADER) and record_type != _SEGMENT_HEADER[seen]:
                raise WalCorruptError(path, record_offset, _NO_HEADER)
            _apply_record(replay, path, record_offset, record_type, data)
            seen += 1
        running_crc, offset = scan.running_crc, scan.end_offset
        if scan.end is not FrameEnd.PAUSED:
            if seen < len(_SEGMENT_HEADER):
                raise WalCorruptError(path, offset, _NO_HEADER)
            return scan


_NO_HEADER = "segment does not begin with a crc record and a metadata record"

# The fast path below can be switched off to compare it with the rules (tests do).
FAST_REPLAY = True


def _replay_run(
    replay: _Replay, path: Path, buffer: SegmentBuffer, offset: int, running_crc: int
) -> tuple[int, int]:
    """Apply consecutive entry and state records from `offset` as fast as Python allows;
    return where it stopped and the CRC chain there.

    The replay hot path: most of a log is normal entries appended in order, one term after
    another. An entry is taken here only when its bytes are exactly those etcd writes for a
    normal entry with the next index and the last entry's term: the loop compares the bytes
    its `_EntryLayout` fixes (framing, tags, lengths, type, term), the index and the padding,
    and computes and compares the CRC, so every check `read_frame` and `_apply_entry` would
    make holds. State records are read by `read_frame` and applied by `_apply_state`. At any
    other record it stops, and the caller reads that record by the rules (a new term, a conf
    change, an overwrite, damage), so this path may be slower than them but never laxer.

    For speed, per record: no protobuf parse, no Python call, no attrs `__init__`, and no
    more integer operations than the checks need (each costs about as much as a C call).
    """
    snapshot = replay.snapshot
    entries = replay.entries
    if snapshot is None or replay.last_index != snapshot.index + len(entries):
        return offset, running_crc
    # Speed: what the loop calls is bound to a local name (an attribute lookup per record
    # costs as much as a check), and a frame's length field and record header are read in
    # one unpack.
    unpack_two, from_bytes = _TWO_WORDS.unpack_from, int.from_bytes
    crc_update, crc_table = CRC_C_FUNCTION, CRC_C_TABLE
    append, new_tuple = entries.append, tuple.__new__
    state_type, normal = int(RecordType.STATE), int(EntryType.NORMAL)  # enum lookups are slow
    record = record_pb2.Record()
    term = entries[-1].term if entries else 0
    next_index = replay.last_index + 1
    index_varint, index_bytes = _varint_field(next_index)
    # The layouts seen so far, for this term and index width, by key (see `_new_layout`).
    # For speed, the one in use stays unpacked in locals until a frame's key differs.
    layouts: dict[int, _EntryLayout] = {}
    layout_key: int | None = None
    # The chain as crcmod's C function carries it (all bits inverted), and the tables that
    # turn that into the 5-byte varint of the CRC (see `_crc_varint_tables`).
    register = running_crc ^ 0xFFFFFFFF
    varint_low, varint_middle, varint_high = _CRC_VARINT_TABLES
    size = len(buffer)
    last_frame_start = size - 16  # a frame takes 16 bytes at least
    try:
        while offset <= last_frame_start:
            length_field, header = unpack_two(buffer, offset)
            if header & _FIVE_BYTE_CRC_ENTRY_MASK == _FIVE_BYTE_CRC_ENTRY:  # 15 in 16 entries
                crc_varint = header >> 24
                key = length_field
            elif header & _FOUR_BYTE_CRC_ENTRY_MASK == _FOUR_BYTE_CRC_ENTRY:
                crc_varint = header >> 24 & 0xFFFFFFFF | 0x80000000  # in its 5-byte form
                key = -length_field
            else:
                key = 0
            if key != layout_key:
                layout_key = key
                (frame_bytes, record_end, padding, fields_at, fields, index_shift, data_at,
                 payload_at) = layouts.get(key) or _new_layout(layouts, key, term, index_bytes)  # fmt: skip
            if frame_bytes:  # a layout fits
                end = offset + record_end
                next_offset = offset + frame_bytes
                payload_start = offset + payload_at
                if (
                    next_offset <= size
                    and buffer[end:next_offset] == padding
                    and from_bytes(buffer[offset + fields_at : payload_start], "little")
                    == fields | index_varint << index_shift
                ):
                    after = crc_update(buffer[offset + data_at : end], register, crc_table)
                    if (
                        varint_low[after & 0x7FF]
                        | varint_middle[after >> 11 & 0x7FF]
                        | varint_high[after >> 22]
                        == crc_varint
                    ):
                        # Entry is a NamedTuple: tuple.__new__ builds it without a Python call.
                        payload = buffer[payload_start:end]
                        append(new_tuple(Entry, (term, next_index, normal, payload)))
                        register = after
                        offset = next_offset
                        next_index += 1
                        if index_varint & 0x7F != 0x7F:  # the first byte holds the low 7 bits
                            index_varint += 1
                        else:
                            index_varint, width = _varint_field(next_index)
                            if width != index_bytes:
                                index_bytes = width
                                layouts, layout_key = {}, None
                        continue
            # Not a normal entry continuing the log: a state record, or back to the rules.
            frame = read_frame(buffer, offset, register ^ 0xFFFFFFFF, record)
            if frame is None or frame[0] != state_type:
                break
            _, running_crc, data, next_offset = frame
            replay.last_index = next_index - 1
            _apply_state(replay, path, offset, data)
            register, offset = running_crc ^ 0xFFFFFFFF, next_offset
    except (DecodeError, struct.error):
        pass  # the frame at `offset` goes to the rules, which name the problem
    replay.last_index = next_index - 1
    return offset, register ^ 0xFFFFFFFF


# Two little-endian words: a frame's length field and the first 8 bytes of its record.
_TWO_WORDS: Final = struct.Struct("<QQ")
# The first 3 bytes of an entry record as etcd writes it: tag 1 (type) = 2, then tag 2 (crc).
_ENTRY_RECORD_START: Final = 0x100208
# An entry record whose crc varint takes 5 bytes, as every crc of 2**28 or more does: four
# bytes with the continuation bit set, then one below 0x10 (a uint32 has 4 bits left for it).
_FIVE_BYTE_CRC_ENTRY_MASK: Final = 0xF0_80_80_80_80_FF_FF_FF
_FIVE_BYTE_CRC_ENTRY: Final = 0x00_80_80_80_80_00_00_00 | _ENTRY_RECORD_START
# One whose crc takes 4 bytes (from 2**21 to 2**28), followed by the data's tag.
_FOUR_BYTE_CRC_ENTRY_MASK: Final = 0xFF_80_80_80_80_FF_FF_FF
_FOUR_BYTE_CRC_ENTRY: Final = 0x1A_00_80_80_80_00_00_00 | _ENTRY_RECORD_START


class _EntryLayout(NamedTuple):
    """Where the parts of one shape of entry record lie, as offsets from the frame's start.

    An entry record as etcd writes it (a walpb.Record holding a raftpb.Entry) is

        08 02 10 <crc> 1A <data length> | 08 00 10 <term> 18 <index> [22 <payload length> <payload>]

    where the part after | is the data the CRC covers, varints are minimal, and the payload
    part is left out when it is empty. Given the length field, the crc's width, the term and
    the index's width, every byte but the crc, the index and the payload is fixed, so the hot
    path compares bytes instead of decoding fields (and accepts nothing protobuf would decode
    differently).
    """

    frame_bytes: int  # length field, record and padding: where the next frame starts
    record_end: int
    padding: bytes  # the zeros expected after the record
    # The bytes from `fields_at` to `payload_at` (data tag to payload length), read as a
    # little-endian integer, are `fields` with the index varint shifted by `index_shift`.
    fields_at: int
    fields: int
    index_shift: int
    data_at: int  # the raftpb.Entry
    payload_at: int


def _spread_7_bits(value: int) -> int:
    """`value` cut into 7-bit groups, one per byte from the least significant: a varint
    without its continuation bits, read as a little-endian integer."""
    spread = 0
    for group in range(0, 10):
        spread |= (value >> 7 * group & 0x7F) << 8 * group
    return spread


def _crc_varint_tables() -> tuple[list[int], list[int], list[int]]:
    """Three tables that give a CRC's 5-byte varint (continuation bits on the first four
    bytes, as etcd writes any uint32 of 2**28 or more) from crcmod's register (the CRC with
    all bits inverted): OR the entries for register bits 0-10, 11-21 and 22-31.

    For speed: the hot loop compares the record's crc bytes with this instead of decoding
    them, since every integer operation on 40-bit values costs about as much as a lookup,
    and decoding takes 14 of them.
    """
    return (
        [_spread_7_bits(bits ^ 0x7FF) | 0x80808080 for bits in range(1 << 11)],
        [_spread_7_bits((bits ^ 0x7FF) << 11) for bits in range(1 << 11)],
        [_spread_7_bits((bits ^ 0x3FF) << 22) for bits in range(1 << 10)],
    )


_CRC_VARINT_TABLES: Final = _crc_varint_tables()

# A layout no frame fits (frame_bytes 0): for a frame no normal entry of the term fits.
_NO_LAYOUT: Final = _EntryLayout(0, 0, b"", 0, 0, 0, 0, 0)


def _new_layout(
    layouts: dict[int, _EntryLayout], key: int, term: int, index_bytes: int
) -> _EntryLayout:
    """Work out the layout for a key seen for the first time, and remember it. The key is
    the frame's length field for a record whose crc varint takes 5 bytes, minus it for 4
    bytes, and 0 for a record that is not an entry of either kind."""
    layout = _NO_LAYOUT
    if key != 0:
        crc_bytes = 5 if key > 0 else 4
        layout = _entry_layout(abs(key), crc_bytes, term, index_bytes) or _NO_LAYOUT
    layouts[key] = layout
    return layout


def _entry_layout(
    length_field: int, crc_bytes: int, term: int, index_bytes: int
) -> _EntryLayout | None:
    """The layout of a normal entry of `term`, with an index of `index_bytes` and a crc of
    `crc_bytes` varint bytes, in a frame with this length field; None if none fits it."""
    decoded = decode_length_field(length_field)
    if decoded is None or not 0 < decoded[0] <= RECORD_BYTES_MAX or not 1 <= crc_bytes <= 5:
        return None
    record_bytes, pad = decoded
    fields_at = LENGTH_FIELD_BYTES + 3 + crc_bytes  # after 08 02 10 <crc>
    data_bytes = _length_prefixed(record_bytes - 3 - crc_bytes - 1)  # after the 1A tag
    if data_bytes is None:
        return None
    entry_start = b"\x08\x00\x10" + encode_varint(term) + b"\x18"  # type normal, term, index tag
    after_index = data_bytes - len(entry_start) - index_bytes
    if after_index < 0:
        return None
    payload_header = b""  # an empty payload is left out
    if after_index > 0:
        payload_bytes = _length_prefixed(after_index - 1)  # after the 22 tag
        if payload_bytes is None:
            return None
        payload_header = b"\x22" + encode_varint(payload_bytes)
    before_index = b"\x1a" + encode_varint(data_bytes) + entry_start
    fields = before_index + bytes(index_bytes) + payload_header
    record_end = LENGTH_FIELD_BYTES + record_bytes
    return _EntryLayout(
        frame_bytes=record_end + pad,
        record_end=record_end,
        padding=bytes(pad),
        fields_at=fields_at,
        fields=int.from_bytes(fields, "little"),
        index_shift=8 * len(before_index),
        data_at=fields_at + len(before_index) - len(entry_start),
        payload_at=fields_at + len(fields),
    )


def _length_prefixed(total_bytes: int) -> int | None:
    """The n for which a varint of n and then n bytes take `total_bytes`, if there is one."""
    for varint_bytes in range(1, 11):
        length = total_bytes - varint_bytes
        if length >= 0 and len(encode_varint(length)) == varint_bytes:
            return length
    return None


def _varint_field(value: int) -> tuple[int, int]:
    """The varint of `value` read as a little-endian integer, and its width in bytes."""
    encoded = encode_varint(value)
    return int.from_bytes(encoded, "little"), len(encoded)


def _apply_record(replay: _Replay, path: Path, offset: int, record_type: int, data: bytes) -> None:
    """Fold one valid record into the replay state, checking what etcd checks and more."""
    try:
        if record_type == RecordType.ENTRY:
            _apply_entry(replay, path, offset, data)
        elif record_type == RecordType.STATE:
            _apply_state(replay, path, offset, data)
        elif record_type == RecordType.METADATA:
            _apply_metadata(replay, path, offset, data)
        elif record_type == RecordType.SNAPSHOT:
            _apply_snapshot(replay, path, offset, data)
    except DecodeError:
        name = RecordType(record_type).name.lower()
        raise WalCorruptError(path, offset, f"{name} record data does not decode") from None


def _apply_entry(replay: _Replay, path: Path, offset: int, data: bytes) -> None:
    """Entries must continue the log, and be entries as etcd writes them. These checks catch a
    record whose type was damaged (the type is outside the CRC):

    * indexes start at 1 and never jump past last+1 (a hole; etcd would index past its slice);
    * an entry may replace a suffix (a new leader overwrote uncommitted entries, etcd ReadAll);
    * terms never decrease along the log (Raft §5.3, log matching);
    * the type is one raftpb.EntryType knows, written first; conf changes always carry data.
    """
    message = raft_pb2.Entry()
    message.ParseFromString(data)
    index, term, entry_type, payload = message.Index, message.Term, message.Type, message.Data
    if index == 0 or data[0] != 0x08 or data[1] > EntryType.CONF_CHANGE_V2:
        raise WalCorruptError(path, offset, "entry record is not a raftpb.Entry as etcd writes it")
    if entry_type != raft_pb2.EntryNormal and not payload:
        raise WalCorruptError(path, offset, f"conf-change entry {index} has no data")
    if index > replay.last_index + 1 and replay.last_index != 0:
        raise WalCorruptError(
            path, offset, f"entry index {index} leaves a hole after {replay.last_index}"
        )
    if replay.snapshot is None:
        replay.snapshot = SnapshotPoint(index - 1, 0)
    snapshot_index = replay.snapshot.index
    entries = replay.entries
    if index <= snapshot_index:
        # An overwrite at or below the snapshot, written before the snapshot was taken,
        # truncated everything after it, including entries read so far above the snapshot.
        # (etcd ReadAll skips such an entry and keeps that stale suffix.)
        del entries[:]
    else:
        kept = index - snapshot_index - 1
        if kept < len(entries):
            del entries[kept:]
        elif kept > len(entries):
            raise WalCorruptError(
                path,
                offset,
                f"entry index {index} leaves a hole after {snapshot_index + len(entries)}",
            )
        if entries and term < entries[-1].term:
            raise WalCorruptError(
                path,
                offset,
                f"entry {index} has term {term} below the previous entry's {entries[-1].term}",
            )
        entries.append(Entry(term, index, entry_type, payload))
    replay.last_index = index
    if term > replay.entry_term_max:
        replay.entry_term_max = term


def _apply_state(replay: _Replay, path: Path, offset: int, data: bytes) -> None:
    """The last hard state wins. Raft's term only grows (paper §5.1) and a node persists its
    term no later than any entry of that term, so a state record with a lower term than an
    earlier state or entry is damage. etcd writes all three fields, always, so other bytes
    are not a HardState (a damaged record type can make an entry look like one)."""
    message = raft_pb2.HardState()
    message.ParseFromString(data)
    state = HardState(message.term, message.vote, message.commit)
    term_floor = max(replay.hard_state.term, replay.entry_term_max)
    if state.term < term_floor:
        raise WalCorruptError(
            path, offset, f"hard state term {state.term} below term {term_floor} already seen"
        )
    canonical = raft_pb2.HardState(term=state.term, vote=state.vote, commit=state.commit)
    if canonical.SerializeToString() != data:
        raise WalCorruptError(
            path, offset, "state record is not a raftpb.HardState as etcd writes it"
        )
    replay.hard_state = state


def _apply_metadata(replay: _Replay, path: Path, offset: int, data: bytes) -> None:
    """Every segment repeats the same metadata (etcd: `wal: conflicting metadata found`)."""
    message = etcdserver_pb2.Metadata()
    message.ParseFromString(data)
    metadata = WalMetadata(message.NodeID, message.ClusterID)
    if replay.metadata is not None and metadata != replay.metadata:
        raise WalCorruptError(
            path, offset, f"conflicting metadata found: {metadata} after {replay.metadata}"
        )
    replay.metadata = metadata


def _apply_snapshot(replay: _Replay, path: Path, offset: int, data: bytes) -> None:
    """The snapshot record at the requested index must have the requested term (etcd
    ErrSnapshotMismatch)."""
    message = record_pb2.Snapshot()
    message.ParseFromString(data)
    replay.snapshot_points.append(SnapshotPoint(message.index, message.term))
    if 0 < replay.last_index < message.index:
        # A snapshot a follower installed from its leader (Raft §7): it replaces the entries
        # before it, and the log goes on at its index + 1 (etcd writes exactly this, and its
        # ReadAll accepts it; a snapshot the member took itself never passes its last entry).
        # Opened at an older snapshot, the jump stays a hole.
        if replay.reading_all:
            replay.snapshot = SnapshotPoint(message.index, message.term)
            del replay.entries[:]
            replay.last_index = message.index
        elif replay.snapshot is not None and message.index <= replay.snapshot.index:
            replay.last_index = message.index
    if replay.snapshot is None or replay.snapshot_found:
        return
    if message.index == replay.snapshot.index:
        if message.term != replay.snapshot.term:
            raise WalSnapshotError(
                f"wal: snapshot mismatch: {path} offset {offset} records index {message.index} "
                f"with term {message.term}, expected term {replay.snapshot.term}"
            )
        replay.snapshot_found = True


def valid_snapshot_points(directory: Path) -> list[SnapshotPoint]:
    """The snapshot points a restart may open the WAL at: every snapshot record in the WAL
    whose index is committed by the last hard state (etcd 3.5 wal.ValidSnapshotEntries).

    A snapshot file written just before a crash, without its WAL record, is not among them;
    pick the newest snapshot file that is (Snapshotter.load_newest_available).
    """
    result = read_wal(directory, None)
    commit = result.contents.hard_state.commit
    return [point for point in result.snapshot_points if point.index <= commit]


__all__ = ["TailState", "WalReadResult", "read_wal", "select_segments", "valid_snapshot_points"]
