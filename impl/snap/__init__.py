"""etcd-format Raft snapshot files and the snapshot policy (every --snapshot-count entries).

`Snapshotter(dir)` saves and loads `%016x-%016x.snap` files; `persist_snapshot` writes one and
records it in the WAL in etcd's order, then releases old WAL segments and snapshot files.
"""

from impl.snap.policy import SnapshotPersisted, persist_snapshot, snapshot_due
from impl.snap.snapshotter import (
    ConfState,
    RaftSnapshot,
    SnapshotError,
    Snapshotter,
    decode_snapshot_file,
    encode_snapshot_file,
    snapshot_file_name,
)

__all__ = [
    "ConfState",
    "RaftSnapshot",
    "SnapshotError",
    "SnapshotPersisted",
    "Snapshotter",
    "decode_snapshot_file",
    "encode_snapshot_file",
    "persist_snapshot",
    "snapshot_due",
    "snapshot_file_name",
]
