"""Snapshot files: etcd's format, durable writes, newest valid one wins, damage is set aside."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from impl.snap import (
    ConfState,
    RaftSnapshot,
    SnapshotError,
    Snapshotter,
    decode_snapshot_file,
    encode_snapshot_file,
    persist_snapshot,
    snapshot_due,
)
from impl.wal import Entry, HardState, SnapshotPoint, Wal, WalSnapshotError, valid_snapshot_points
from impl.wal.files import list_segments
from tests.impl.wal.helpers import METADATA


def snapshot_at(index: int, term: int = 2) -> RaftSnapshot:
    return RaftSnapshot(index, term, ConfState(voters=(1, 2, 3)), f"state at {index}".encode())


def test_round_trip_and_name(tmp_path: Path) -> None:
    snapshotter = Snapshotter(tmp_path / "snap")
    path = snapshotter.save(snapshot_at(0x16))
    assert path.name == "0000000000000002-0000000000000016.snap"
    assert snapshotter.load() == snapshot_at(0x16)
    assert not list((tmp_path / "snap").glob("*.tmp")), "the temp file is renamed into place"


def test_newest_valid_wins_and_damaged_ones_are_set_aside(tmp_path: Path) -> None:
    snapshotter = Snapshotter(tmp_path)
    for index in (10, 20, 30):
        snapshotter.save(snapshot_at(index))
    newest = tmp_path / "0000000000000002-000000000000001e.snap"
    content = bytearray(newest.read_bytes())
    content[-3] ^= 0x01
    newest.write_bytes(bytes(content))
    loaded = snapshotter.load()
    assert loaded == snapshot_at(20)
    assert (tmp_path / (newest.name + ".broken")).exists() and not newest.exists()


def test_no_snapshot_and_empty_snapshot(tmp_path: Path) -> None:
    assert Snapshotter(tmp_path / "absent").load() is None
    with pytest.raises(SnapshotError, match="empty snapshot"):
        decode_snapshot_file(tmp_path / "x.snap", b"")


@given(position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_every_bit_flip_is_refused(position: int, bit: int) -> None:
    """The CRC covers the raft snapshot; the envelope's own fields fail to parse or mismatch."""
    content = bytearray(encode_snapshot_file(snapshot_at(7)))
    content[position % len(content)] ^= 1 << bit
    try:
        decoded = decode_snapshot_file(Path("x.snap"), bytes(content))
    except SnapshotError:
        return
    assert decoded == snapshot_at(7), "a damaged snapshot was returned as valid"


def test_purge_keeps_the_newest(tmp_path: Path) -> None:
    snapshotter = Snapshotter(tmp_path)
    for index in range(1, 9):
        snapshotter.save(snapshot_at(index))
    removed = snapshotter.purge(snapshots_kept_max=5)
    assert [p.name[-6:-5] for p in removed] == ["3", "2", "1"]
    assert len(snapshotter.snapshot_names()) == 5


def test_snapshot_due_follows_etcds_trigger() -> None:
    """etcd: snapshot when applied - snapshot index > --snapshot-count (strictly)."""
    assert not snapshot_due(100_000, 0)
    assert snapshot_due(100_001, 0)
    assert snapshot_due(25, 10, snapshot_count=10) and not snapshot_due(20, 10, snapshot_count=10)


def test_persist_snapshot_records_it_and_releases_old_segments(tmp_path: Path) -> None:
    """Snapshot file first, WAL record second, then old segments and snapshots go; a restart
    loads the newest snapshot and opens the WAL at it."""
    snapshotter = Snapshotter(tmp_path / "snap")
    wal = Wal.create(tmp_path / "wal", METADATA, segment_size_bytes=2048)
    index = 0
    for round_number in range(1, 8):
        for _ in range(60):
            index += 1
            wal.save(HardState(2, 1, index), [Entry(2, index, data=bytes(20))])
        persist_snapshot(snapshotter, wal, snapshot_at(index), wal_files_kept_max=3,
                         snapshots_kept_max=2)  # fmt: skip
        assert len(snapshotter.snapshot_names()) == min(round_number, 2)
    wal.close()
    assert len(list_segments(tmp_path / "wal")) <= 4  # 3 kept, plus the tail's own segment
    loaded = snapshotter.load()
    assert loaded is not None and loaded.index == index
    reopened, contents = Wal.open(tmp_path / "wal", SnapshotPoint(loaded.index, loaded.term))
    reopened.close()
    assert contents.entries == ()
    assert contents.hard_state == HardState(2, 1, index)


def test_restart_after_a_crash_between_snapshot_file_and_wal_record(tmp_path: Path) -> None:
    """etcd writes the snapshot file before its WAL record; a crash in between leaves a file
    the WAL cannot be opened at. The newest snapshot the WAL recorded is used instead (etcd
    3.5 LoadNewestAvailable), and the plain newest file would fail, as in etcd 3.4."""
    snapshotter = Snapshotter(tmp_path / "snap")
    wal = Wal.create(tmp_path / "wal", METADATA)
    for index in range(1, 31):
        wal.save(HardState(2, 1, index), [Entry(2, index, data=b"x")])
        if index == 10:
            persist_snapshot(snapshotter, wal, snapshot_at(10))
    snapshotter.save(snapshot_at(30))  # the crash: no WAL record for 30
    wal.close()
    points = valid_snapshot_points(tmp_path / "wal")
    assert SnapshotPoint(10, 2) in points and SnapshotPoint(30, 2) not in points
    assert snapshotter.load() == snapshot_at(30)
    with pytest.raises(WalSnapshotError):
        Wal.open(tmp_path / "wal", SnapshotPoint(30, 2))
    chosen = snapshotter.load_newest_available(points)
    assert chosen == snapshot_at(10)
    reopened, contents = Wal.open(tmp_path / "wal", SnapshotPoint(chosen.index, chosen.term))
    reopened.close()
    assert [e.index for e in contents.entries] == list(range(11, 31))
    assert (tmp_path / "snap" / "0000000000000002-000000000000001e.snap").exists()
