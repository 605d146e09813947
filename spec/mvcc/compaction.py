"""Compact: forget history before a revision (etcd `mvcc/kvstore.go:updateCompactRev`, `key_index.go:compact`).

`Compact(R)` is refused with `ErrCompacted` when R is at or before the last compaction point
and with `ErrFutureRev` when R is after the current revision. Otherwise, for every key, etcd
keeps the latest revision at or before R in the generation alive at R and everything after R;
a generation deleted before R vanishes, and so does a key left with nothing
(`spec.mvcc.key_index.key_index_compact`). Reads at R and later give the same answers as
before; reads before R are refused from now on. Compaction writes no revision: the header
revision is the current one. Whether `physical` is set only changes when etcd answers (after
the background deletion has finished); the spec returns the full list of records to delete,
and the store deletes them in the same write as the new compaction point.
"""

from __future__ import annotations

from spec.errors import EtcdError
from spec.mvcc.key_index import KeyIndex, key_index_compact, tombstone_revisions
from spec.mvcc.messages import CompactionRequest, CompactionResponse, ResponseHeader
from spec.mvcc.outcome import Applied, Outcome, Rejected
from spec.mvcc.view import Changes, KeyspaceView, RecordId


def check_compaction(view: KeyspaceView, request: CompactionRequest) -> EtcdError | None:
    """etcd `updateCompactRev`: only forward, and never past the current revision."""
    if request.revision <= view.compacted_revision():
        return EtcdError.COMPACTED
    if request.revision > view.current_revision():
        return EtcdError.FUTURE_REVISION
    return None


def compact(view: KeyspaceView, request: CompactionRequest) -> Outcome[CompactionResponse]:
    """Compact the keyspace at `request.revision`: new indexes, records and keys to remove."""
    error = check_compaction(view, request)
    if error is not None:
        return Rejected(error)
    indexes: list[KeyIndex] = []
    removed: list[RecordId] = []
    keys_removed: list[bytes] = []
    for index in view.key_indexes(b"", None):
        compacted, dropped = key_index_compact(index, request.revision)
        if compacted is index or (not dropped and compacted == index):
            continue
        tombstones = tombstone_revisions(index)
        removed.extend(RecordId(revision, revision in tombstones) for revision in dropped)
        if compacted is None:
            keys_removed.append(index.key)
        else:
            indexes.append(compacted)
    changes = Changes(
        compacted_revision=request.revision,
        key_indexes=tuple(indexes),
        records_removed=tuple(removed),
        keys_removed=tuple(keys_removed),
    )
    response = CompactionResponse(header=ResponseHeader(revision=view.current_revision()))
    return Applied(response, changes)
