"""Real etcd 3.4's snapshot files load, and our encoder writes the same bytes.

Method: run etcd with --snapshot-count 10, put 25 keys (two snapshots), stop it, load
member/snap with our Snapshotter, re-encode the snapshot and compare with etcd's file, and
open etcd's WAL at the snapshot point it names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from impl.snap import Snapshotter, encode_snapshot_file
from impl.wal import SnapshotPoint, Wal
from tests.impl.wal.test_real_etcd import RealEtcd

pytestmark = pytest.mark.etcd


def test_real_etcd_snapshots_load_and_match_our_bytes(tmp_path: Path) -> None:
    etcd = RealEtcd(tmp_path / "data", extra_flags=("--snapshot-count", "10"))
    try:
        etcd.start()
        for number in range(25):
            etcd.ctl("put", f"key{number}", f"value{number}")
    finally:
        etcd.stop()
    snapshotter = Snapshotter(tmp_path / "data" / "member" / "snap")
    names = snapshotter.snapshot_names()
    assert len(names) >= 2
    snapshot = snapshotter.load()
    assert snapshot is not None and snapshot.index >= 20
    assert len(snapshot.conf_state.voters) == 1
    assert b'"Root"' in snapshot.data  # etcd 3.4 snapshots carry the v2 store as JSON
    assert encode_snapshot_file(snapshot) == (snapshotter.directory / names[0]).read_bytes()
    wal, contents = Wal.open(
        tmp_path / "data" / "member" / "wal", SnapshotPoint(snapshot.index, snapshot.term)
    )
    wal.close()
    assert all(entry.index > snapshot.index for entry in contents.entries)
