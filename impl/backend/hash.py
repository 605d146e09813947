"""HashKV: a CRC-32C of the keyspace's history up to a revision (etcd `mvcc/kvstore.go:HashByRev`).

The hash starts from the bucket name `key`, then covers, in revision order, the stored key
(revision bytes) and value (marshalled KeyValue) of every record with main revision <= the
revision R asked for, except records at or before the compaction point that a compaction at R
would not keep (`spec.mvcc.key_index.key_index_keep`); when no key has a revision to keep, etcd
skips nothing. So members that compacted at different points, or whose background compaction
has not finished, still agree. Checked against etcd 3.4.23 byte for byte
(tests/impl/backend/test_hash_against_etcd.py).

R of 0 means the current revision; R at or before the compaction point is `ErrCompacted` (note:
at the point itself too, unlike Range) and R after the current revision `ErrFutureRev`.
"""

from __future__ import annotations

from typing import Final

import attrs
import crcmod.predefined

from impl.backend.records import encode_record
from spec.errors import EtcdError
from spec.mvcc import KeyspaceView, Revision
from spec.mvcc.key_index import key_index_keep

_crc32c: Final = crcmod.predefined.mkCrcFun("crc-32c")
_BUCKET_NAME: Final = b"key"


@attrs.frozen
class KeyspaceHash:
    hash: int
    revision: Revision
    compact_revision: Revision


def hash_keyspace(view: KeyspaceView, revision: Revision) -> KeyspaceHash | EtcdError:
    """The HashKV answer for `revision` over any keyspace view (in memory or on disk)."""
    compacted = view.compacted_revision()
    current = view.current_revision()
    if 0 < revision <= compacted:
        return EtcdError.COMPACTED
    if revision > current:
        return EtcdError.FUTURE_REVISION
    at_revision = current if revision <= 0 else revision
    keep = set()
    for index in view.key_indexes(b"", None):
        kept = key_index_keep(index, at_revision)
        if kept is not None:
            keep.add(kept)
    crc = _crc32c(_BUCKET_NAME)
    for record in view.records_from(Revision(0)):
        if record.revision.main > at_revision:
            break
        if record.revision.main <= compacted and keep and record.revision not in keep:
            continue
        key, value = encode_record(record)
        crc = _crc32c(key, crc)
        crc = _crc32c(value, crc)
    return KeyspaceHash(crc, at_revision, compacted)
