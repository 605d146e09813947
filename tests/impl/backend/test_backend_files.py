"""The LMDB keyspace file: what survives a restart, what a crash loses, foreign and damaged
files, defragmentation, sizes, and the HashKV answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lmdb
import pytest

from impl.backend.hash import KeyspaceHash, hash_keyspace
from impl.backend.keyspace import BackendError, LmdbKeyspace
from spec.errors import EtcdError
from spec.mvcc import (
    Applied,
    CompactionRequest,
    DeleteRangeRequest,
    MemoryKeyspace,
    PutRequest,
    RangeRequest,
    Revision,
    apply_request,
)


def apply_any(store: Any, request: Any) -> Any:
    """apply_request, with its outcome left untyped for brevity in examples."""
    return apply_request(store, request)


def write(store: LmdbKeyspace | MemoryKeyspace, *requests: object) -> None:
    for request in requests:
        outcome = apply_any(store, request)
        assert isinstance(outcome, Applied), outcome
        store.apply(outcome.changes)


def test_committed_batches_survive_and_an_uncommitted_one_does_not(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = LmdbKeyspace(path, sync=False)
    write(store, PutRequest(key=b"a", value=b"1"), PutRequest(key=b"b", value=b"2"))
    assert apply_any(store, RangeRequest(key=b"a", range_end=b"\x00")).response.count == 2
    store.commit(consistent_index=7)
    write(store, PutRequest(key=b"c"))
    store._batch.abort()  # a crash before the batch commits
    store._batch = None
    store._environment.close()
    reopened = LmdbKeyspace(path, sync=False)
    assert reopened.consistent_index() == 7
    assert reopened.current_revision() == 3
    answer = apply_any(reopened, RangeRequest(key=b"a", range_end=b"\x00"))
    assert isinstance(answer, Applied) and [kv.key for kv in answer.response.kvs] == [b"a", b"b"]
    reopened.close()


def test_a_marked_consistent_index_goes_with_the_next_commit_of_any_kind(tmp_path: Path) -> None:
    """mark_applied: the index is written in the same transaction as the changes, whether the
    commit is explicit, before a copy, or at close; a crash before it loses both."""
    path = tmp_path / "db"
    store = LmdbKeyspace(path, sync=False)
    write(store, PutRequest(key=b"a"))
    store.mark_applied(5)
    assert store.consistent_index() == 5
    store.copy_to(tmp_path / "copy")  # commits the batch first
    write(store, PutRequest(key=b"b"))
    store.mark_applied(6)
    store._batch.abort()  # a crash before the batch commits
    store._batch = None
    store._environment.close()
    for copy_or_file in (tmp_path / "copy", path):
        reopened = LmdbKeyspace(copy_or_file, sync=False)
        assert (reopened.consistent_index(), reopened.current_revision()) == (5, 2)
        reopened.close()
    store = LmdbKeyspace(path, sync=False)
    write(store, PutRequest(key=b"b"))
    store.mark_applied(6)
    store.close()
    reopened = LmdbKeyspace(path, sync=False)
    assert (reopened.consistent_index(), reopened.current_revision()) == (6, 3)
    reopened.close()


def test_a_file_that_is_not_lmdb_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(BackendError, match=str(path)):
        LmdbKeyspace(path)


def test_a_missing_directory_or_a_directory_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="does not exist"):
        LmdbKeyspace(tmp_path / "absent" / "db")
    with pytest.raises(BackendError, match="is a directory"):
        LmdbKeyspace(tmp_path)


def test_an_lmdb_file_of_someone_else_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "other"
    environment = lmdb.open(str(path), subdir=False, max_dbs=2)
    with environment.begin(write=True) as transaction:
        transaction.put(b"hello", b"world")
    environment.close()
    with pytest.raises(BackendError, match=f"{path}: not an etcdref keyspace"):
        LmdbKeyspace(path)


def test_damaged_pages_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LmdbKeyspace(path, sync=False) as store:
        write(store, *(PutRequest(key=b"k%d" % number, value=b"v" * 100) for number in range(50)))
    data = bytearray(path.read_bytes())
    data[0:8192] = b"\xa5" * 8192  # both meta pages
    path.write_bytes(bytes(data))
    with pytest.raises(BackendError, match=str(path)):
        LmdbKeyspace(path)


def test_compaction_frees_records_and_defragment_shrinks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "db"
    store = LmdbKeyspace(path, sync=False)
    value = b"v" * 2000
    for round_number in range(5):
        write(store, *(PutRequest(key=b"k%d" % number, value=value) for number in range(100)))
        store.commit(round_number)
    records_before = sum(1 for _ in store.records_from(Revision(0)))
    write(store, CompactionRequest(revision=store.current_revision()))
    store.commit()
    assert records_before == 500
    assert sum(1 for _ in store.records_from(Revision(0))) == 100
    size_before = store.size_bytes()
    store.defragment()
    assert store.size_bytes() < size_before / 2
    assert store.size_in_use_bytes() <= store.size_bytes()
    answer = apply_any(store, RangeRequest(key=b"k", range_end=b"l", count_only=True))
    assert isinstance(answer, Applied) and answer.response.count == 100
    store.close()


def test_hash_covers_history_up_to_a_revision(tmp_path: Path) -> None:
    with LmdbKeyspace(tmp_path / "db", sync=False) as store:
        memory = MemoryKeyspace()
        for target in (store, memory):
            write(
                target,
                PutRequest(key=b"a", value=b"1"),
                PutRequest(key=b"b"),
                DeleteRangeRequest(key=b"a"),
            )
        at_three = hash_keyspace(store, Revision(3))
        assert isinstance(at_three, KeyspaceHash) and at_three == hash_keyspace(memory, Revision(3))
        assert at_three != hash_keyspace(store, Revision(4))
        assert hash_keyspace(store, Revision(0)) == hash_keyspace(store, Revision(4))
        assert hash_keyspace(store, Revision(5)) == EtcdError.FUTURE_REVISION
        write(store, PutRequest(key=b"c", value=b"other"))
        write(memory, PutRequest(key=b"c", value=b"different"))
        assert hash_keyspace(store, Revision(5)) != hash_keyspace(memory, Revision(5))
        write(store, CompactionRequest(revision=Revision(4)))
        assert hash_keyspace(store, Revision(3)) == EtcdError.COMPACTED


def test_hash_is_crc32c_of_bucket_name_then_each_record_key_and_value(tmp_path: Path) -> None:
    """The byte layout etcd hashes (mvcc/hash.go), rebuilt here by hand for two records."""
    import crcmod.predefined

    from etcdpb.mvccpb import kv_pb2

    crc32c = crcmod.predefined.mkCrcFun("crc-32c")
    put_bytes = kv_pb2.KeyValue(
        key=b"a", create_revision=2, mod_revision=2, version=1, value=b"1"
    ).SerializeToString()
    tombstone_bytes = kv_pb2.KeyValue(key=b"a").SerializeToString()
    layout = (
        b"key"
        + (2).to_bytes(8, "big")
        + b"_"
        + (0).to_bytes(8, "big")
        + put_bytes
        + (3).to_bytes(8, "big")
        + b"_"
        + (0).to_bytes(8, "big")
        + b"t"
        + tombstone_bytes
    )
    with LmdbKeyspace(tmp_path / "db", sync=False) as store:
        write(
            store,
            PutRequest(key=b"a", value=b"1"),
            DeleteRangeRequest(key=b"a"),
            PutRequest(key=b"b"),
        )
        answer = hash_keyspace(store, Revision(3))
        assert isinstance(answer, KeyspaceHash)
        assert answer.hash == crc32c(layout)
        assert (answer.revision, answer.compact_revision) == (3, -1)


def test_the_size_is_the_file_size_as_of_the_last_commit(tmp_path: Path) -> None:
    """size_bytes is read from the file once per commit (the quota check asks on every write)."""
    path = tmp_path / "db"
    store = LmdbKeyspace(path, sync=False)
    store.commit()
    empty_size = committed_size = store.size_bytes()
    assert empty_size == path.stat().st_size
    for round_number in range(3):
        write(store, *(PutRequest(key=b"k%d" % number, value=b"v" * 2000) for number in range(50)))
        assert store.size_bytes() == committed_size  # this batch is not committed yet
        store.commit(round_number)
        committed_size = store.size_bytes()
        assert committed_size == path.stat().st_size
    assert committed_size > empty_size
    store.close()


def test_each_commit_that_writes_a_batch_reports_its_duration(tmp_path: Path) -> None:
    store = LmdbKeyspace(tmp_path / "db", sync=False)
    durations: list[float] = []
    store.commit_observer = durations.append
    write(store, PutRequest(key=b"a"))
    store.commit()
    store.commit()  # nothing to write: nothing to report
    write(store, PutRequest(key=b"b"))
    store.mark_applied(2)
    store.close()
    assert len(durations) == 2 and all(duration >= 0 for duration in durations)
