"""etcd-format write-ahead log: the Raft log and hard state, durable before they are used.

Byte-compatible with etcd 3.4/3.5 (`member/wal`): see `record` for framing and the CRC chain,
`reader` for replay and the checks that refuse damaged logs, `wal` for the writer (group commit,
segments, repair) and `cli` for `etcdref wal dump|verify`.

Where etcd's reader guesses, this one refuses (each rule is stated where it is checked): a
damaged frame in the last segment counts as a torn write only if a whole 512-byte sector of
it is zero or the file ends inside it, so a flipped bit is refused rather than cut off (unless
the record's own data holds a whole zero sector); record headers and
padding must be exactly as etcd writes them; and because a record's type lies outside the
CRC, the log's shape is checked too (contiguous indexes, non-decreasing terms, hard states
whose term never falls). A clean etcd WAL passes all of these (tested against etcd 3.4).

API for the Raft node: `Wal.create(dir, metadata)` or `Wal.open(dir, snapshot)` ->
`(wal, WalContents(metadata, hard_state, entries after the snapshot))`; `wal.save(hard_state,
entries)` is durable on return (or `queue_save` now and `wait_durable(ticket)` later, to send
messages meanwhile); `wal.save_snapshot(point)`, `wal.cut()`, `wal.release_to(index)`. On
restart, open at the newest snapshot `valid_snapshot_points(dir)` allows (impl.snap).
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
