"""When to snapshot, and the order in which a snapshot is made durable.

etcd (server.go triggerSnapshot, storage.go SaveSnap, raft.go): once more than
--snapshot-count entries were applied since the last snapshot, it writes the snapshot file
first, then the WAL's snapshot record, then releases the WAL segments before the snapshot and
purges old files beyond --max-wals and --max-snapshots.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from impl.snap.snapshotter import RaftSnapshot, Snapshotter
from impl.wal import SnapshotPoint, Wal
from spec import constants


def snapshot_due(
    applied_index: int, snapshot_index: int, snapshot_count: int = constants.snapshot_count
) -> bool:
    """etcd triggerSnapshot: snapshot when `applied - last snapshot > --snapshot-count`."""
    return applied_index - snapshot_index > snapshot_count


@attrs.frozen(slots=True)
class SnapshotPersisted:
    """What persisting a snapshot wrote and removed."""

    snapshot_file: Path
    wal_segments_removed: tuple[Path, ...]
    snapshot_files_removed: tuple[Path, ...]


def persist_snapshot(
    snapshotter: Snapshotter,
    wal: Wal,
    snapshot: RaftSnapshot,
    wal_files_kept_max: int = constants.wal_files_kept_max,
    snapshots_kept_max: int = constants.snapshots_kept_max,
) -> SnapshotPersisted:
    """Make a snapshot durable and trim what it makes unnecessary, in etcd's order:

    1. the snapshot file (so a WAL record never names a snapshot that is not on disk);
    2. the WAL snapshot record, synced (a restart opens the WAL at this point);
    3. WAL segments wholly before the snapshot, beyond `wal_files_kept_max`;
    4. snapshot files beyond `snapshots_kept_max`.
    """
    snapshot_file = snapshotter.save(snapshot)
    wal.save_snapshot(SnapshotPoint(snapshot.index, snapshot.term))
    removed_segments = wal.release_to(snapshot.index, segments_kept_max=wal_files_kept_max)
    removed_snapshots = snapshotter.purge(snapshots_kept_max)
    return SnapshotPersisted(snapshot_file, tuple(removed_segments), tuple(removed_snapshots))
