"""etcd-format write-ahead log: the Raft log and hard state, durable before they are used.

Byte-compatible with etcd 3.4/3.5 (`member/wal`): see `record` for framing and the CRC chain,
`reader` for replay and the checks that refuse damaged logs, `wal` for the writer (group commit,
segments, repair) and `cli` for `etcdref wal dump|verify`.

API for the Raft node: `Wal.create(dir, metadata)` or `Wal.open(dir, snapshot)` ->
`(wal, WalContents(metadata, hard_state, entries after the snapshot))`; `wal.save(hard_state,
entries)` is durable on return; `wal.save_snapshot(point)`, `wal.cut()`, `wal.release_to(index)`.
"""

from impl.wal.errors import (
    WalCorruptError,
    WalError,
    WalExistsError,
    WalLockedError,
    WalNotFoundError,
    WalSnapshotError,
    WalWriteError,
)
from impl.wal.reader import TailState, WalReadResult, read_wal, valid_snapshot_points
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
from impl.wal.wal import Wal

__all__ = [
    "EMPTY_HARD_STATE",
    "ZERO_SNAPSHOT",
    "Entry",
    "EntryType",
    "HardState",
    "SnapshotPoint",
    "TailState",
    "Wal",
    "WalContents",
    "WalCorruptError",
    "WalError",
    "WalExistsError",
    "WalLockedError",
    "WalMetadata",
    "WalNotFoundError",
    "WalReadResult",
    "WalSnapshotError",
    "WalWriteError",
    "read_wal",
    "valid_snapshot_points",
]
