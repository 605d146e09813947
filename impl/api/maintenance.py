"""Helpers of the Maintenance service: the backend hash, the snapshot stream, leader moves.

* `backend_hash` is etcd's `Hash` RPC (E 3.4 `mvcc/backend/backend.go:Hash`): a CRC-32C over
  every bucket of the backend, bucket name then each key and value, skipping the consistent
  index (which members may reach at different times). etcdref's backend holds other buckets than
  bbolt's (see impl/backend/keyspace.py), so the value differs from etcd's; what carries over
  is the property: members that applied the same entries report the same hash, and any write
  changes it.
* `snapshot_chunks` is etcd's `Snapshot` stream (E 3.4 `etcdserver/api/v3rpc/maintenance.go`):
  a consistent copy of the keyspace file, sent in 32 KiB chunks each carrying the bytes still to
  come, then one last message whose blob is the SHA-256 of everything sent. The file is a whole
  number of 4 KiB LMDB pages, so the total is 32 more than a multiple of 512, which is what
  etcdctl checks (facts §0 item 7). etcdctl 3.4's `snapshot status` and `snapshot restore` read
  bbolt files and cannot read it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import crcmod.predefined

from impl.backend.keyspace import LmdbKeyspace
from impl.backend.records import encode_lease, encode_record, lease_key

SNAPSHOT_CHUNK_BYTES: Final = 32 * 1024  # etcd snapshotSendBufferSize
_crc32c: Final = crcmod.predefined.mkCrcFun("crc-32c")


def backend_hash(keyspace: LmdbKeyspace) -> int:
    """CRC-32C of the keyspace's buckets in name order (`key`, `lease`, `meta`); run it on the
    raft loop, which owns the keyspace."""
    crc = _crc32c(b"key")
    for record in keyspace.records_from(0):  # type: ignore[arg-type]
        key, value = encode_record(record)
        crc = _crc32c(value, _crc32c(key, crc))
    crc = _crc32c(b"lease", crc)
    for lease in keyspace.leases():
        crc = _crc32c(encode_lease(lease), _crc32c(lease_key(lease.id), crc))
    crc = _crc32c(b"meta", crc)
    for name, number in (
        (b"compacted_revision", int(keyspace.compacted_revision())),
        (b"current_revision", int(keyspace.current_revision())),
    ):
        crc = _crc32c(number.to_bytes(8, "big", signed=True), _crc32c(name, crc))
    return int(crc)


def copy_keyspace(keyspace: LmdbKeyspace, directory: Path) -> Path:
    """Write a consistent copy of the keyspace file into `directory` and return its path.

    Runs on the raft loop: the open batch is committed first, and LMDB copies from one read
    transaction, so the copy is the keyspace exactly as of the last applied entry. The backend
    has no public copy method yet, hence the use of its environment here.
    """
    keyspace.commit()
    environment: Any = keyspace._environment
    descriptor, name = tempfile.mkstemp(prefix="snapshot-", suffix=".db.part", dir=directory)
    try:
        environment.copyfd(descriptor)
    except BaseException:
        os.close(descriptor)
        os.unlink(name)
        raise
    os.close(descriptor)
    return Path(name)


def snapshot_chunks(path: Path) -> Iterator[tuple[int, bytes]]:
    """(remaining bytes, blob) for each message of the Snapshot stream of the file at `path`,
    the SHA-256 of the data last with 0 remaining."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    sent = 0
    with open(path, "rb") as file:
        while sent < total:
            blob = file.read(min(SNAPSHOT_CHUNK_BYTES, total - sent))
            if not blob:
                raise OSError(f"{path} ended after {sent} of {total} bytes")
            sent += len(blob)
            digest.update(blob)
            yield total - sent, blob
    yield 0, digest.digest()
