"""HashKV: a CRC-32C of the keyspace's history up to a revision (etcd `mvcc/hash.go`).

The hash starts from the bucket name `key`, then covers, for every stored record with main
revision <= the revision asked for, the record's key (its revision bytes) and value (the
marshalled KeyValue), in revision order. Records removed by compaction are not covered, so two
members agree exactly when they hold the same history since the same compaction. A revision
of 0 or less means the current one; a revision after it, or before the compaction point, is
refused as Range would refuse it.
"""

from __future__ import annotations

from typing import Final

import attrs
import crcmod.predefined

from impl.backend.records import encode_record
from spec.errors import EtcdError
from spec.mvcc import KeyspaceView, Revision
from spec.mvcc.read import read_revision

_crc32c: Final = crcmod.predefined.mkCrcFun("crc-32c")
_BUCKET_NAME: Final = b"key"


@attrs.frozen
class KeyspaceHash:
    hash: int
    revision: Revision
    compact_revision: Revision


def hash_keyspace(view: KeyspaceView, revision: Revision) -> KeyspaceHash | EtcdError:
    """The HashKV answer for `revision` over any keyspace view (in memory or on disk)."""
    at_revision = read_revision(view, revision)
    if isinstance(at_revision, EtcdError):
        return at_revision
    crc = _crc32c(_BUCKET_NAME)
    for record in view.records_from(Revision(0)):
        if record.revision.main > at_revision:
            break
        key, value = encode_record(record)
        crc = _crc32c(key, crc)
        crc = _crc32c(value, crc)
    return KeyspaceHash(crc, at_revision, view.compacted_revision())
