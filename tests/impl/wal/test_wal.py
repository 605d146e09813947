"""The WAL round-trips what it is given, in etcd's byte format, across segments and snapshots."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from impl.wal import (
    Entry,
    HardState,
    SnapshotPoint,
    Wal,
    WalCorruptError,
    WalExistsError,
    WalLockedError,
    WalNotFoundError,
    WalSnapshotError,
    read_wal,
)
from impl.wal import wal as wal_module
from impl.wal.files import list_segments
from impl.wal.record import (
    RecordType,
    crc32c,
    decode_length_field,
    encode_frame,
    encode_length_field,
)
from tests.impl.wal.helpers import METADATA, write_log


def test_crc32c_is_castagnoli_and_rolls() -> None:
    """CRC-32C check value, and Update(Update(0, a), b) == Update(0, a+b) as etcd's pkg/crc."""
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"world", crc32c(b"hello ")) == crc32c(b"hello world")


@pytest.mark.parametrize("record_bytes", range(1, 40))
def test_length_field_matches_etcd_encode_frame_size(record_bytes: int) -> None:
    """etcd encodeFrameSize: pad to 8 and flag 0x80|pad in the top byte when padding."""
    pad = (8 - record_bytes % 8) % 8
    expected = record_bytes | ((0x80 | pad) << 56) if pad else record_bytes
    assert encode_length_field(record_bytes) == expected
    assert decode_length_field(expected) == (record_bytes, pad)
    assert decode_length_field(expected ^ (1 << 56)) is None


def test_frame_bytes_are_etcds() -> None:
    """A crc record with crc 0 is {type:4, crc:0}: 4 bytes, padded to 8, flag 0x84."""
    frame = encode_frame(RecordType.CRC, 0, None)
    assert frame == struct.pack("<Q", 4 | (0x84 << 56)) + b"\x08\x04\x10\x00" + bytes(4)


def test_round_trip_across_segments(tmp_path: Path) -> None:
    written = write_log(tmp_path / "wal", 600)
    segments = list_segments(tmp_path / "wal")
    assert len(segments) > 3, "the small segment size must force cuts"
    assert [s.sequence for s in segments] == list(range(len(segments)))
    wal, contents = Wal.open(tmp_path / "wal")
    wal.close()
    assert list(contents.entries) == written
    assert contents.metadata == METADATA
    assert contents.hard_state == HardState(term=written[-1].term, vote=1, commit=595)


def test_segment_names_carry_the_next_index(tmp_path: Path) -> None:
    """etcd names a cut segment %016x-%016x with the index after the last entry written."""
    with Wal.create(tmp_path / "wal", METADATA, segment_size_bytes=1 << 20) as wal:
        wal.save(HardState(1, 1, 0), [Entry(1, i) for i in range(1, 0x21)])
        wal.cut()
    names = [s.file_name() for s in list_segments(tmp_path / "wal")]
    assert names == [
        "0000000000000000-0000000000000000.wal",
        "0000000000000001-0000000000000021.wal",
    ]


def test_overwritten_suffix_is_dropped(tmp_path: Path) -> None:
    """etcd ReadAll: an entry at an index already read replaces it and all after it."""
    with Wal.create(tmp_path / "wal", METADATA) as wal:
        wal.save(HardState(1, 1, 1), [Entry(1, i, data=b"old") for i in (1, 2, 3)])
        wal.save(HardState(2, 2, 1), [Entry(2, 2, data=b"new")])
    _, contents = Wal.open(tmp_path / "wal")
    assert [(e.index, e.term, e.data) for e in contents.entries] == [(1, 1, b"old"), (2, 2, b"new")]


def test_open_at_snapshot_returns_entries_after_it(tmp_path: Path) -> None:
    with Wal.create(tmp_path / "wal", METADATA, segment_size_bytes=4096) as wal:
        for index in range(1, 200):
            wal.save(HardState(1, 1, index), [Entry(1, index, data=bytes(50))])
        wal.save_snapshot(SnapshotPoint(150, 1))
        wal.save(HardState(1, 1, 200), [Entry(1, 200)])
        removed = wal.release_to(150, segments_kept_max=2)
    assert removed, "segments wholly before the snapshot are purged beyond the limit"
    with pytest.raises(WalNotFoundError):  # the zero snapshot's segment is gone (etcd too)
        Wal.open(tmp_path / "wal")
    with pytest.raises(WalSnapshotError, match="mismatch"):
        Wal.open(tmp_path / "wal", SnapshotPoint(150, 7))
    wal, contents = Wal.open(tmp_path / "wal", SnapshotPoint(150, 1))
    wal.close()
    assert [e.index for e in contents.entries] == list(range(151, 201))


def test_create_refuses_existing_and_open_refuses_missing(tmp_path: Path) -> None:
    write_log(tmp_path / "wal", 3)
    with pytest.raises(WalExistsError):
        Wal.create(tmp_path / "wal", METADATA)
    with pytest.raises(WalNotFoundError):
        Wal.open(tmp_path / "nothing")
    assert not (tmp_path / "wal.tmp").exists(), "the build directory is renamed into place"


def test_second_writer_is_refused(tmp_path: Path) -> None:
    write_log(tmp_path / "wal", 3)
    wal, _ = Wal.open(tmp_path / "wal")
    with pytest.raises(WalLockedError):
        Wal.open(tmp_path / "wal")
    wal.close()


def test_reopen_continues_the_crc_chain(tmp_path: Path) -> None:
    written = write_log(tmp_path / "wal", 20)
    wal, _ = Wal.open(tmp_path / "wal")
    wal.save(HardState(1, 1, 20), [Entry(1, 21, data=b"after reopen")])
    wal.close()
    result = read_wal(tmp_path / "wal")
    assert list(result.contents.entries) == [*written, Entry(1, 21, data=b"after reopen")]


def test_conflicting_metadata_is_corrupt(tmp_path: Path) -> None:
    """etcd: `wal: conflicting metadata found` when segments disagree."""
    write_log(tmp_path / "wal", 300, segment_size_bytes=4096)
    segments = list_segments(tmp_path / "wal")
    path = tmp_path / "wal" / segments[1].file_name()
    data = bytearray(path.read_bytes())
    # The metadata record is the second frame; rewrite it with another node id, CRC-correct.
    from etcdpb.etcdserverpb import etcdserver_pb2

    first_frame_bytes = (
        8 + len(encode_frame(RecordType.CRC, read_crc_record(bytes(data)), None)) - 8
    )
    crc_record_value = read_crc_record(bytes(data))
    other = etcdserver_pb2.Metadata(NodeID=1, ClusterID=METADATA.cluster_id).SerializeToString()
    original = etcdserver_pb2.Metadata(
        NodeID=METADATA.node_id, ClusterID=METADATA.cluster_id
    ).SerializeToString()
    old_frame = encode_frame(RecordType.METADATA, crc32c(original, crc_record_value), original)
    new_frame = encode_frame(RecordType.METADATA, crc32c(other, crc_record_value), other)
    assert data[first_frame_bytes : first_frame_bytes + len(old_frame)] == old_frame
    data[first_frame_bytes : first_frame_bytes + len(old_frame)] = new_frame.ljust(
        len(old_frame), b"\0"
    )
    path.write_bytes(bytes(data))
    with pytest.raises(WalCorruptError):
        read_wal(tmp_path / "wal")


def read_crc_record(segment: bytes) -> int:
    from etcdpb.walpb import record_pb2

    record = record_pb2.Record()
    (length,) = struct.unpack_from("<Q", segment)
    record.ParseFromString(segment[8 : 8 + (length & ((1 << 56) - 1))])
    return record.crc


@pytest.mark.parametrize("threshold_seconds, warned", [(0.0, True), (3600.0, False)])
def test_a_slow_fdatasync_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    threshold_seconds: float, warned: bool,
) -> None:  # fmt: skip
    """etcd warns when an fdatasync takes over a second; a real sync here, the bar moved."""
    monkeypatch.setattr(wal_module, "SLOW_SYNC_SECONDS", threshold_seconds)
    with caplog.at_level("WARNING", logger="etcdref.wal"):
        write_log(tmp_path / "wal", entry_count=3)
    assert any("slow fdatasync" in record.message for record in caplog.records) is warned
