"""The persisted keyspace: spec.mvcc's `KeyspaceView` over an LMDB file.

LMDB is a copy-on-write B+tree in one memory-mapped file, as bbolt is for etcd. The file holds
three named databases:

    key    revision (17 or 18 bytes, see records.py) -> marshalled mvccpb.KeyValue
    lease  lease id (8 bytes)                         -> (id, TTL)
    meta   format, current_revision, compacted_revision, consistent_index, and the host's own
           records under `host/` (the member table: written and committed with the batch)

The key index is not stored: it is rebuilt on open by replaying every record through
`spec.mvcc.key_index` (as etcd rebuilds its in-memory btree index from the `key` bucket).

**Writes are batched.** `apply(changes)` writes one operation's changes into the batch's open
write transaction (reads in between see them); `commit(consistent_index)` records the Raft
index of the last applied entry and commits, all atomically: after a crash the file holds the
keyspace exactly as of some consistent index, never half a batch. Physical compaction is part
of the same write (the records a compaction removes are deleted with it). `defragment()`
copies the live pages to a fresh file and swaps it in.

One thread uses a `LmdbKeyspace`; the writer is also the reader.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import lmdb

from impl.backend.index_store import KeyIndexStore, cached_keys_max
from impl.backend.records import (
    RecordFormatError,
    decode_key_value,
    decode_lease,
    decode_record,
    encode_key_value,
    encode_lease,
    lease_key,
    revision_key,
    revision_key_prefix,
)
from spec.mvcc import (
    Changes,
    KeyIndex,
    KeyValue,
    LeaseId,
    LeaseRecord,
    Record,
    Revision,
    RevisionPair,
    compacted_revision_none,
    lease_none,
    store_revision_initial,
)
from spec.mvcc.key_index import key_index_restore

FORMAT_MARKER: Final = b"etcdref keyspace v1"
map_size_bytes_default: Final = 10 * 1024**3  # etcd's initial mmap size
_SIGNED = struct.Struct(">q")
_META_FORMAT = b"format"
_META_CURRENT = b"current_revision"
_META_COMPACTED = b"compacted_revision"
_META_CONSISTENT_INDEX = b"consistent_index"
_META_HOST_PREFIX = b"host/"


class BackendError(Exception):
    """The backend file cannot be used; the message names the file and why."""


class _SortedKeys:
    """Keys in order, with inserts buffered and merged on the next ordered read (cheap bulk loads)."""

    def __init__(self) -> None:
        self._sorted: list[bytes] = []
        self._pending: set[bytes] = set()

    def add(self, key: bytes) -> None:
        self._pending.add(key)

    def remove_all(self, keys: set[bytes]) -> None:
        self._pending -= keys
        if keys:
            self._sorted = [key for key in self._sorted if key not in keys]

    def between(self, start: bytes, end: bytes | None) -> list[bytes]:
        if self._pending:
            self._sorted.extend(self._pending)
            self._sorted.sort()
            self._pending.clear()
        low = bisect.bisect_left(self._sorted, start)
        high = len(self._sorted) if end is None else bisect.bisect_left(self._sorted, end)
        return self._sorted[low:high]


def read_host_records(path: Path, names: list[bytes]) -> dict[bytes, bytes | None]:
    """The host's records in the keyspace file at `path`, read without writing anything (no
    lock file either): for checking whose data directory this is before opening it."""
    if not path.is_file():
        return dict.fromkeys(names)
    try:
        environment = lmdb.open(
            str(path), subdir=False, readonly=True, lock=False, max_dbs=4, readahead=False
        )
    except lmdb.Error as error:
        raise BackendError(f"{path}: not an etcdref keyspace (LMDB refused it: {error})") from error
    try:
        with environment.begin() as transaction:
            meta = environment.open_db(b"meta", txn=transaction, create=False)
            found = {name: transaction.get(_META_HOST_PREFIX + name, db=meta) for name in names}
    except lmdb.Error as error:
        raise BackendError(f"{path}: damaged keyspace file ({error})") from error
    finally:
        environment.close()
    return {name: None if value is None else bytes(value) for name, value in found.items()}


class LmdbKeyspace:
    """A `KeyspaceView` persisted in one LMDB file, with batched atomic writes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sync: bool = True,
        map_size_bytes: int = map_size_bytes_default,
        cached_key_indexes: int = cached_keys_max,
    ) -> None:
        self.path = Path(path)
        self._sync = sync
        self._map_size_bytes = map_size_bytes
        self._batch: Any = None  # the open write transaction of the current batch
        self._snapshot: Any = None  # a read transaction reused until the next write
        self._indexes = KeyIndexStore(cached_key_indexes)
        self._keys = _SortedKeys()
        self._leases: dict[LeaseId, LeaseRecord] = {}
        self._attached: dict[LeaseId, set[bytes]] = {}
        self._size_bytes: int | None = None  # the file's size as of the last commit, once read
        self._attach()
        self._current_revision, self._compacted_revision, self._consistent_index = self._read_meta()
        self._current_revision_in_batch = self._current_revision  # as the open batch records it
        # Told how long each commit that wrote a batch took (etcd's backend commit histogram).
        self.commit_observer: Callable[[float], None] | None = None
        self._consistent_index_in_batch = self._consistent_index
        self._rebuild()

    # --- opening -------------------------------------------------------------------------------
    def _attach(self) -> None:
        """Open the file and keep its database handles (on start, and after defragmenting)."""
        self._environment, self._databases = self._open()
        self._records_db = self._databases[b"key"]
        self._leases_db = self._databases[b"lease"]
        self._meta_db = self._databases[b"meta"]
        self._size_bytes = None

    def _open(self) -> tuple[Any, dict[bytes, Any]]:
        if not self.path.parent.is_dir():
            raise BackendError(f"{self.path}: its directory {self.path.parent} does not exist")
        if self.path.is_dir():
            raise BackendError(f"{self.path}: is a directory, not a keyspace file")
        try:
            environment = lmdb.open(
                str(self.path),
                subdir=False,
                max_dbs=4,
                map_size=self._map_size_bytes,
                sync=self._sync,
                readahead=False,
            )
        except lmdb.Error as error:
            raise BackendError(
                f"{self.path}: not an etcdref keyspace (LMDB refused it: {error})"
            ) from error
        try:
            with environment.begin(write=True) as transaction:
                main = transaction.cursor()
                names = [name for name, _ in main]
                unexpected = [name for name in names if name not in (b"key", b"lease", b"meta")]
                if unexpected:
                    raise BackendError(
                        f"{self.path}: not an etcdref keyspace (it holds {unexpected!r})"
                    )
                databases = {
                    name: environment.open_db(name, txn=transaction)
                    for name in (b"key", b"lease", b"meta")
                }
                marker = transaction.get(_META_FORMAT, db=databases[b"meta"])
                if marker is None and names:
                    raise BackendError(f"{self.path}: not an etcdref keyspace (no format marker)")
                if marker is None:
                    transaction.put(_META_FORMAT, FORMAT_MARKER, db=databases[b"meta"])
                elif marker != FORMAT_MARKER:
                    raise BackendError(f"{self.path}: unknown keyspace format {marker!r}")
        except lmdb.Error as error:
            environment.close()
            raise BackendError(f"{self.path}: damaged keyspace file ({error})") from error
        except BackendError:
            environment.close()
            raise
        return environment, databases

    def _read_meta(self) -> tuple[Revision, Revision, int]:
        with self._environment.begin(db=self._databases[b"meta"]) as transaction:
            current = transaction.get(_META_CURRENT)
            compacted = transaction.get(_META_COMPACTED)
            consistent = transaction.get(_META_CONSISTENT_INDEX)
        return (
            Revision(_SIGNED.unpack(current)[0]) if current else store_revision_initial,
            Revision(_SIGNED.unpack(compacted)[0]) if compacted else compacted_revision_none,
            _SIGNED.unpack(consistent)[0] if consistent else 0,
        )

    def _rebuild(self) -> None:
        """Replay every record into a fresh key index (spec functions), and load the leases."""
        current_lease: dict[bytes, LeaseId] = {}
        indexes: dict[bytes, KeyIndex] = {}
        with self._environment.begin() as transaction:
            for key, value in transaction.cursor(db=self._databases[b"key"]):
                try:
                    record = decode_record(bytes(key), bytes(value))
                except RecordFormatError as error:
                    raise BackendError(f"{self.path}: damaged record: {error}") from error
                self._index_record(record, indexes, current_lease)
            for _, value in transaction.cursor(db=self._databases[b"lease"]):
                lease = decode_lease(bytes(value))
                self._leases[lease.id] = lease
        self._indexes.put_all_packed(indexes.values())
        for key, lease_id in current_lease.items():
            if lease_id != lease_none:
                self._attached.setdefault(lease_id, set()).add(key)

    def _index_record(
        self,
        record: Record,
        indexes: dict[bytes, KeyIndex],
        current_lease: dict[bytes, LeaseId],
    ) -> None:
        key = record.key_value.key
        index = indexes.get(key)
        indexes[key] = key_index_restore(
            index,
            key,
            record.revision,
            record.tombstone,
            record.key_value.create_revision,
            record.key_value.version,
        )
        current_lease[key] = lease_none if record.tombstone else record.key_value.lease
        if index is None:
            self._keys.add(key)

    # --- writing ---------------------------------------------------------------------------------
    def apply(self, changes: Changes) -> None:
        """Write one operation's changes into the current batch (opened if needed). The new
        current revision is recorded in the batch once, when it commits."""
        self._drop_snapshot()
        if self._batch is None:
            self._batch = self._environment.begin(write=True)
        batch = self._batch
        records, leases, meta = self._records_db, self._leases_db, self._meta_db
        if changes.revision is not None:
            assert changes.revision == self._current_revision + 1, "one revision per write"
            self._current_revision = changes.revision
        for record in changes.records:
            batch.put(
                revision_key(record.revision, record.tombstone),
                encode_key_value(record.key_value),
                db=records,
            )
        for index in changes.key_indexes:
            if self._indexes.put(index):
                self._keys.add(index.key)
        for move in changes.lease_moves:
            if move.lease_detached != lease_none:
                self._attached.get(move.lease_detached, set()).discard(move.key)
            if move.lease_attached != lease_none:
                self._attached.setdefault(move.lease_attached, set()).add(move.key)
        for lease in changes.leases_granted:
            self._leases[lease.id] = lease
            batch.put(lease_key(lease.id), encode_lease(lease), db=leases)
        for lease_id in changes.leases_revoked:
            del self._leases[lease_id]
            self._attached.pop(lease_id, None)
            batch.delete(lease_key(lease_id), db=leases)
        if changes.compacted_revision is not None:
            self._compacted_revision = changes.compacted_revision
            batch.put(_META_COMPACTED, _SIGNED.pack(changes.compacted_revision), db=meta)
        for record_id in changes.records_removed:
            deleted = batch.delete(
                revision_key(record_id.revision, record_id.tombstone), db=records
            )
            assert deleted, "compaction removes only stored records"
        if changes.keys_removed:
            for key in changes.keys_removed:
                self._indexes.remove(key)
            self._keys.remove_all(set(changes.keys_removed))

    def mark_applied(self, consistent_index: int) -> None:
        """The batch now holds the changes of every Raft entry through `consistent_index`.

        The index is stored by whichever commit comes next (an explicit one, or the one before a
        copy, a defragmentation or closing), in the same transaction as those changes: the file
        never holds an entry's changes without its index, nor the index without the changes.
        """
        self._consistent_index = consistent_index

    def uncommitted_entries(self) -> int:
        """How many Raft entries were marked applied since the file last recorded an index."""
        return self._consistent_index - self._consistent_index_in_batch

    def commit(self, consistent_index: int | None = None) -> None:
        """End the batch: record the consistent index (if given, else the last one marked
        applied) with it and commit atomically."""
        self._drop_snapshot()
        if self._current_revision != self._current_revision_in_batch:
            assert self._batch is not None, "the revision moves only by a write to the batch"
            self._batch.put(_META_CURRENT, _SIGNED.pack(self._current_revision), db=self._meta_db)
            self._current_revision_in_batch = self._current_revision
        if consistent_index is not None:
            self._consistent_index = consistent_index
        if self._consistent_index != self._consistent_index_in_batch:
            if self._batch is None:
                self._batch = self._environment.begin(write=True)
            self._batch.put(
                _META_CONSISTENT_INDEX, _SIGNED.pack(self._consistent_index), db=self._meta_db
            )
            self._consistent_index_in_batch = self._consistent_index
        if self._batch is not None:
            started = time.perf_counter()
            self._batch.commit()
            if self.commit_observer is not None:
                self.commit_observer(time.perf_counter() - started)
            self._batch = None
            self._size_bytes = None

    def consistent_index(self) -> int:
        """The Raft index of the last entry whose changes the keyspace holds (0 if none); they
        are in the file once the batch commits (`mark_applied`)."""
        return self._consistent_index

    def put_host_record(self, name: bytes, value: bytes) -> None:
        """Write one of the host's records (such as the member table) into the current batch."""
        self._drop_snapshot()
        if self._batch is None:
            self._batch = self._environment.begin(write=True)
        self._batch.put(_META_HOST_PREFIX + name, value, db=self._meta_db)

    def host_record(self, name: bytes) -> bytes | None:
        """One of the host's records, as last written (None if never)."""
        value = self._reader().get(_META_HOST_PREFIX + name, db=self._meta_db)
        return None if value is None else bytes(value)

    def close(self) -> None:
        """Commit the open batch and close the file."""
        self.commit()
        self._drop_snapshot()
        self._environment.close()

    def __enter__(self) -> LmdbKeyspace:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # --- maintenance -------------------------------------------------------------------------------
    def defragment(self) -> None:
        """Copy the live pages into a new file and swap it in (etcd `Defragment`)."""
        self.commit()
        temporary = self.path.with_name(self.path.name + ".defrag")
        temporary.unlink(missing_ok=True)
        self._environment.copy(str(temporary), compact=True)
        self._environment.close()
        os.replace(temporary, self.path)
        self._attach()

    def copy_to(self, path: Path) -> None:
        """Write a consistent copy of the keyspace, as of the last commit, to a new file at `path`
        (LMDB copies from one read transaction; the open batch is committed first)."""
        self.commit()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            self._environment.copyfd(descriptor)
            os.fsync(descriptor)
        except BaseException:
            os.close(descriptor)
            path.unlink(missing_ok=True)
            raise
        os.close(descriptor)

    def size_bytes(self) -> int:
        """The file's size as of the last commit (etcd Status `dbSize`, and what the quota is
        checked against). Read from the file once per commit, not on every call: the node checks
        the quota for every write it applies. etcd too measures its backend when it commits a
        batch (`batchTx.commit` sets `backend.size`), not when asked."""
        if self._size_bytes is None:
            self._size_bytes = self.path.stat().st_size
        return self._size_bytes

    def size_in_use_bytes(self) -> int:
        """Bytes of pages in use (etcd Status `dbSizeInUse`): the file minus its free pages."""
        information = self._environment.info()
        page_size = self._environment.stat()["psize"]
        return int((information["last_pgno"] + 1) * page_size)

    # --- the KeyspaceView protocol ---------------------------------------------------------------
    def _reader(self) -> Any:
        """The open batch if there is one (its writes must be seen), else a read snapshot that
        stays valid until the next write (saves one LMDB transaction per record read)."""
        if self._batch is not None:
            return self._batch
        if self._snapshot is None:
            self._snapshot = self._environment.begin()
        return self._snapshot

    def _drop_snapshot(self) -> None:
        if self._snapshot is not None:
            self._snapshot.abort()
            self._snapshot = None

    def current_revision(self) -> Revision:
        return self._current_revision

    def compacted_revision(self) -> Revision:
        return self._compacted_revision

    def key_index(self, key: bytes) -> KeyIndex | None:
        return self._indexes.get(key)

    def key_indexes(self, start: bytes, end: bytes | None) -> Iterator[KeyIndex]:
        for key in self._keys.between(start, end):
            index = self._indexes.get(key)
            assert index is not None, "every listed key has an index"
            yield index

    def record(self, revision: RevisionPair) -> KeyValue:
        data = self._reader().get(revision_key(revision, False), db=self._records_db)
        assert data is not None, f"no live record at {revision}"
        return decode_key_value(bytes(data))

    def records_from(self, revision: Revision) -> Iterator[Record]:
        """Records from `revision` on, read lazily: consume them before the next write."""
        reader = self._reader()
        cursor = reader.cursor(db=self._records_db)
        if not cursor.set_range(revision_key_prefix(revision)):
            return
        for key, value in cursor:
            yield decode_record(bytes(key), bytes(value))

    def lease(self, lease: LeaseId) -> LeaseRecord | None:
        return self._leases.get(lease)

    def leases(self) -> Iterator[LeaseRecord]:
        for lease_id in sorted(self._leases):
            yield self._leases[lease_id]

    def keys_attached(self, lease: LeaseId) -> tuple[bytes, ...]:
        return tuple(sorted(self._attached.get(lease, ())))
