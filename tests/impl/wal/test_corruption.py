"""Damage is detected, never returned as data: Hypothesis flips bits, truncates and zero-fills.

Method: one WAL of several segments is written once; each example copies it, damages one
segment, and reads it back. Properties:

* a read that succeeds returns a prefix of the entries written, each one intact, and a hard
  state that was written: no damaged entry is ever returned as valid;
* damage to any segment but the last, and any bit flip anywhere, is an error that names the
  file (a WalError; WalCorruptError also gives the offset);
* in the last segment, zero-fill and truncation may read as a torn tail, and then every entry
  whose frame ends before the damage is still returned (nothing valid is discarded), and
  opening for writing repairs it with a `.broken` copy and gives the same entries.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import impl.wal.reader as reader
from etcdpb.raftpb import raft_pb2
from impl.wal import HardState, TailState, Wal, WalCorruptError, WalError, read_wal
from impl.wal.files import list_segments
from impl.wal.record import RecordType, scan_segment
from tests.impl.wal.helpers import write_log

SEGMENT_SIZE_BYTES = 4096


class Original:
    """The undamaged WAL: file bytes, entries, hard states and where each entry's frame ends."""

    def __init__(self, directory: Path) -> None:
        self.entries = write_log(
            directory, 150, batch_size=7, segment_size_bytes=SEGMENT_SIZE_BYTES
        )
        self.states: set[HardState] = set()
        self.files = {
            s.file_name(): (directory / s.file_name()).read_bytes()
            for s in list_segments(directory)
        }
        self.names = sorted(self.files)
        self.data_end: dict[str, int] = {}
        self.entry_frame_end: dict[int, tuple[str, int]] = {}
        running_crc = 0
        for position, name in enumerate(self.names):
            scan = scan_segment(self.files[name], running_crc, tail=position == len(self.names) - 1)
            running_crc = scan.running_crc
            self.data_end[name] = scan.end_offset
            records = scan.records
            for number, (_, record_type, _, data) in enumerate(records):
                if record_type == RecordType.STATE:
                    state = raft_pb2.HardState()
                    state.ParseFromString(data)
                    self.states.add(HardState(state.term, state.vote, state.commit))
                if record_type == RecordType.ENTRY:
                    end = records[number + 1][0] if number + 1 < len(records) else scan.end_offset
                    message = raft_pb2.Entry()
                    message.ParseFromString(data)
                    self.entry_frame_end[message.Index] = (name, end)
        assert len(self.names) >= 3, "the log must span several segments"


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Original:
    return Original(tmp_path_factory.mktemp("original") / "wal")


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def damage(original: Original, scratch: Path, name: str, files: dict[str, bytes]) -> Path:
    directory = scratch / "wal"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir()
    for file_name, data in files.items():
        (directory / file_name).write_bytes(data)
    return directory


def check_read(
    original: Original, directory: Path, name: str, offset: int, tail_may_tear: bool
) -> None:
    """The properties in the module docstring, for damage at (`name`, `offset`); and the
    replay fast path agrees with the rules alone, error for error."""
    assert outcome(directory, fast=True) == outcome(directory, fast=False)
    try:
        result = read_wal(directory)
    except WalError as error:
        assert str(error).startswith("wal: ")
        if isinstance(error, WalCorruptError):
            assert error.path.name in original.files and error.offset >= 0
        return
    entries = list(result.contents.entries)
    assert entries == original.entries[: len(entries)], "a damaged entry was returned as valid"
    assert result.contents.hard_state in original.states
    assert tail_may_tear and name == original.names[-1], f"damage at {name}:{offset} went unnoticed"
    # A cut at a frame boundary reads as a clean, shorter log (as in etcd): no way to tell.
    before_damage = [
        index for index, (file_name, end) in original.entry_frame_end.items()
        if file_name == name and end <= offset
    ]  # fmt: skip
    returned = {entry.index for entry in entries}
    assert set(before_damage) <= returned, "valid entries before the damage were discarded"
    wal, contents = Wal.open(directory, segment_size_bytes=SEGMENT_SIZE_BYTES)
    wal.close()
    assert list(contents.entries) == entries
    broken_copy = directory / (original.names[-1] + ".broken")
    assert broken_copy.exists() == (result.tail_state is not TailState.CLEAN)


def outcome(directory: Path, fast: bool) -> object:
    """What reading gives, as comparable data: the error text, or contents and tail."""
    saved = reader.FAST_REPLAY
    reader.FAST_REPLAY = fast
    try:
        result = read_wal(directory)
    except WalError as error:
        return f"{type(error).__name__}: {error}"
    finally:
        reader.FAST_REPLAY = saved
    return (result.contents, result.tail_state, result.tail_valid_bytes, result.running_crc)


@given(data=st.data())
def test_bit_flips_are_always_detected(
    original: Original, scratch: Path, data: st.DataObject
) -> None:
    name = original.names[data.draw(st.integers(0, len(original.names) - 1), label="segment")]
    offset = data.draw(st.integers(0, original.data_end[name] - 1), label="offset")
    bit = data.draw(st.integers(0, 7), label="bit")
    files = dict(original.files)
    damaged = bytearray(files[name])
    damaged[offset] ^= 1 << bit
    files[name] = bytes(damaged)
    check_read(original, damage(original, scratch, name, files), name, offset, tail_may_tear=False)


@given(data=st.data())
def test_zero_fill_is_detected_or_a_torn_tail(
    original: Original, scratch: Path, data: st.DataObject
) -> None:
    name = original.names[data.draw(st.integers(0, len(original.names) - 1), label="segment")]
    offset = data.draw(st.integers(0, original.data_end[name] - 1), label="offset")
    length = data.draw(st.integers(1, 1024), label="length")
    files = dict(original.files)
    damaged = bytearray(files[name])
    end = min(len(damaged), offset + length)
    if damaged[offset:end] == bytes(end - offset):
        return  # nothing changed
    damaged[offset:end] = bytes(end - offset)
    files[name] = bytes(damaged)
    check_read(original, damage(original, scratch, name, files), name, offset, tail_may_tear=True)


@given(data=st.data())
def test_truncation_is_detected_or_a_torn_tail(
    original: Original, scratch: Path, data: st.DataObject
) -> None:
    name = original.names[data.draw(st.integers(0, len(original.names) - 1), label="segment")]
    length = data.draw(st.integers(0, original.data_end[name] - 1), label="new length")
    files = dict(original.files)
    files[name] = files[name][:length]
    check_read(original, damage(original, scratch, name, files), name, length, tail_may_tear=True)


def test_error_names_file_and_offset(original: Original, scratch: Path) -> None:
    """A clear error: the file and byte offset of the first bad frame."""
    name = original.names[1]
    files = dict(original.files)
    damaged = bytearray(files[name])
    damaged[200] ^= 0x10
    files[name] = bytes(damaged)
    with pytest.raises(WalCorruptError, match=rf"{name} at offset \d+") as caught:
        read_wal(damage(original, scratch, name, files))
    assert caught.value.offset <= 200


def type_byte_damage_misses(original: Original, scratch: Path) -> list[str]:
    """Flip each of the low three bits of every record's type (the CRC does not cover it) in
    every segment; return the damage that went unnoticed or returned bad data."""
    misses: list[str] = []
    for name in original.names:
        scan = scan_segment(original.files[name], 0, tail=False)
        for offset, _, _, _ in scan.records:
            type_offset = offset + 9  # length field (8), tag 0x08, then the type varint
            for bit in range(3):
                files = dict(original.files)
                damaged = bytearray(files[name])
                damaged[type_offset] ^= 1 << bit
                files[name] = bytes(damaged)
                directory = damage(original, scratch, name, files)
                try:
                    check_read(original, directory, name, type_offset, tail_may_tear=False)
                except AssertionError as failure:
                    misses.append(f"{name}:{type_offset} bit {bit}: {str(failure).splitlines()[0]}")
    return misses


def test_record_type_damage_is_detected(original: Original, scratch: Path) -> None:
    """A record's type is outside the CRC (etcd's format); the log's shape catches a change."""
    assert type_byte_damage_misses(original, scratch) == []


def test_type_sweep_catches_a_reader_without_shape_checks(
    original: Original, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeded bug: a reader that trusts any state record, as etcd's does."""

    def trusting_apply_state(replay: reader._Replay, path: Path, offset: int, data: bytes) -> None:
        message = raft_pb2.HardState()
        message.ParseFromString(data)
        replay.hard_state = HardState(message.term, message.vote, message.commit)

    monkeypatch.setattr(reader, "_apply_state", trusting_apply_state)
    assert type_byte_damage_misses(original, scratch) != []


def test_bit_flip_sweep_catches_etcds_lax_torn_rule(
    original: Original, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeded bug: calling every bad frame in the last segment torn silently drops entries
    that a bit flip damaged; the bit-flip property must notice."""
    import impl.wal.record as record

    monkeypatch.setattr(record, "classify_bad_frame", lambda *arguments: record.FrameEnd.TORN)
    name = original.names[-1]
    misses = 0
    for offset in range(0, original.data_end[name], 97):
        files = dict(original.files)
        damaged = bytearray(files[name])
        damaged[offset] ^= 0x04
        files[name] = bytes(damaged)
        try:
            check_read(
                original, damage(original, scratch, name, files), name, offset, tail_may_tear=False
            )
        except AssertionError:
            misses += 1
    assert misses > 0
