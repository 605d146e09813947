"""Hand-written examples of etcd's KV rules that the model comparison relies on or cannot see:
request validation (shared by spec and model), txn duplicate-key rules, the range quirks,
compaction's exact retention, and the key index."""

from __future__ import annotations

from typing import Any

import attrs

from spec.errors import EtcdError
from spec.mvcc import (
    Applied,
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    EmptyRequestOp,
    LeaseId,
    MemoryKeyspace,
    PutRequest,
    RangeRequest,
    Rejected,
    Revision,
    RevisionPair,
    SortOrder,
    SortTarget,
    TxnRequest,
    apply_request,
    validate_request,
)
from spec.mvcc.key_index import key_index_compact, key_index_get, key_index_put, key_index_tombstone
from spec.mvcc.transaction import validate_txn_request


def apply_any(store: Any, request: Any) -> Any:
    """apply_request, with its outcome left untyped for brevity in examples."""
    return apply_request(store, request)


def store_with(*requests: Any) -> MemoryKeyspace:
    store = MemoryKeyspace()
    for request in requests:
        outcome = apply_any(store, request)
        assert isinstance(outcome, Applied), outcome
        store.apply(outcome.changes)
    return store


def rejected(store: MemoryKeyspace, request: Any) -> EtcdError:
    outcome = apply_any(store, request)
    assert isinstance(outcome, Rejected), outcome
    return outcome.error


# --- validation -------------------------------------------------------------------------------
def test_empty_keys_are_refused() -> None:
    assert validate_request(RangeRequest()) == EtcdError.EMPTY_KEY
    assert validate_request(PutRequest(value=b"v")) == EtcdError.EMPTY_KEY
    assert validate_request(DeleteRangeRequest()) == EtcdError.EMPTY_KEY
    assert validate_request(TxnRequest(compare=(Compare(key=b""),))) == EtcdError.EMPTY_KEY
    assert validate_request(TxnRequest(success=(PutRequest(),))) == EtcdError.EMPTY_KEY


def test_put_flags_refuse_what_they_ignore() -> None:
    assert (
        validate_request(PutRequest(key=b"k", value=b"v", ignore_value=True))
        == EtcdError.VALUE_PROVIDED
    )
    assert (
        validate_request(PutRequest(key=b"k", lease=LeaseId(5), ignore_lease=True))
        == EtcdError.LEASE_PROVIDED
    )
    assert validate_request(PutRequest(key=b"k", ignore_value=True, ignore_lease=True)) is None


def test_txn_operation_limit_is_128_and_nested_txns_share_it() -> None:
    puts = tuple(PutRequest(key=b"k%d" % number) for number in range(128))
    assert validate_txn_request(TxnRequest(success=puts)) is None
    assert (
        validate_txn_request(TxnRequest(success=(*puts, PutRequest(key=b"x"))))
        == EtcdError.TOO_MANY_OPERATIONS
    )
    compares = tuple(Compare(key=b"c") for _ in range(129))
    assert validate_txn_request(TxnRequest(compare=compares)) == EtcdError.TOO_MANY_OPERATIONS
    inner = TxnRequest(success=tuple(PutRequest(key=b"i%d" % number) for number in range(2)))
    outer = TxnRequest(success=(*puts[:126], inner))  # 127 outer ops leave a budget of 1
    assert validate_txn_request(outer) == EtcdError.TOO_MANY_OPERATIONS
    assert (
        validate_txn_request(
            TxnRequest(success=(*puts[:126], TxnRequest(success=(PutRequest(key=b"i"),))))
        )
        is None
    )


def test_empty_request_op_is_key_not_found() -> None:
    assert validate_request(TxnRequest(failure=(EmptyRequestOp(),))) == EtcdError.KEY_NOT_FOUND


def test_duplicate_keys_in_a_txn() -> None:
    put_a = PutRequest(key=b"a")
    assert validate_request(TxnRequest(success=(put_a, put_a))) == EtcdError.DUPLICATE_KEY
    delete_range = DeleteRangeRequest(key=b"a", range_end=b"c")
    assert (
        validate_request(TxnRequest(success=(delete_range, PutRequest(key=b"b"))))
        == EtcdError.DUPLICATE_KEY
    )
    assert validate_request(TxnRequest(success=(PutRequest(key=b"c"), delete_range))) is None
    # success and failure are checked separately
    assert validate_request(TxnRequest(success=(put_a,), failure=(put_a,))) is None
    # a nested txn's two branches may put the same key; a sibling's put may not
    nested = TxnRequest(success=(put_a,), failure=(put_a,))
    assert validate_request(TxnRequest(success=(nested,))) is None
    assert validate_request(TxnRequest(success=(nested, put_a))) == EtcdError.DUPLICATE_KEY
    # a delete in a nested txn covers later puts of the outer branch
    nested_delete = TxnRequest(success=(DeleteRangeRequest(key=b"a"),))
    assert validate_request(TxnRequest(success=(nested_delete, put_a))) == EtcdError.DUPLICATE_KEY
    # range_end "\0" is taken literally by etcd's interval check: it covers no key
    from_a = DeleteRangeRequest(key=b"a", range_end=b"\x00")
    assert validate_request(TxnRequest(success=(from_a, PutRequest(key=b"b")))) is None
    # two deletes of one key are fine
    assert (
        validate_request(
            TxnRequest(success=(DeleteRangeRequest(key=b"a"), DeleteRangeRequest(key=b"a")))
        )
        is None
    )


# --- apply-time checks -------------------------------------------------------------------------
def test_put_checks_lease_before_key_but_txn_checks_key_first() -> None:
    store = MemoryKeyspace()
    lonely = PutRequest(key=b"k", lease=LeaseId(7), ignore_value=True)
    assert rejected(store, lonely) == EtcdError.LEASE_NOT_FOUND
    assert rejected(store, TxnRequest(success=(lonely,))) == EtcdError.KEY_NOT_FOUND


def test_txn_checks_see_the_store_before_the_txn() -> None:
    store = MemoryKeyspace()
    create_then_keep = TxnRequest(
        success=(PutRequest(key=b"k", value=b"v"), PutRequest(key=b"j", ignore_value=True))
    )
    assert rejected(store, create_then_keep) == EtcdError.KEY_NOT_FOUND
    future = TxnRequest(
        success=(PutRequest(key=b"k"), RangeRequest(key=b"k", revision=Revision(2)))
    )
    assert rejected(store, future) == EtcdError.FUTURE_REVISION


def test_txn_range_with_negative_revision_after_compaction_is_compacted() -> None:
    store = store_with(
        PutRequest(key=b"k"), PutRequest(key=b"k"), CompactionRequest(revision=Revision(3))
    )
    assert (
        rejected(store, TxnRequest(success=(RangeRequest(key=b"k", revision=Revision(-1)),)))
        == EtcdError.COMPACTED
    )
    outcome = apply_any(store, RangeRequest(key=b"k", revision=Revision(-1)))
    assert isinstance(outcome, Applied)  # a plain range reads the current revision


def test_one_revision_for_all_writes_of_a_txn() -> None:
    store = store_with(PutRequest(key=b"c"))
    outcome = apply_any(
        store,
        TxnRequest(
            success=(PutRequest(key=b"a"), PutRequest(key=b"b"), DeleteRangeRequest(key=b"c"))
        ),
    )
    assert isinstance(outcome, Applied)
    assert [record.revision for record in outcome.changes.records] == [
        RevisionPair(Revision(3), 0),
        RevisionPair(Revision(3), 1),
        RevisionPair(Revision(3), 2),
    ]
    assert outcome.response.header.revision == 3
    assert outcome.response.responses[2].deleted == 1


def test_nested_compares_are_decided_before_the_txn_writes() -> None:
    store = MemoryKeyspace()
    absent = Compare(
        result=CompareResult.EQUAL,
        target=CompareTarget.CREATE,
        key=b"k",
        create_revision=Revision(0),
    )
    nested = TxnRequest(
        compare=(absent,), success=(PutRequest(key=b"yes"),), failure=(PutRequest(key=b"no"),)
    )
    outcome = apply_any(store, TxnRequest(success=(PutRequest(key=b"k"), nested)))
    assert isinstance(outcome, Applied)
    assert [record.key_value.key for record in outcome.changes.records] == [b"k", b"yes"]
    assert outcome.response.responses[1].header.revision == 0  # nested txn headers stay empty


def test_value_compare_on_a_missing_key_is_false() -> None:
    store = MemoryKeyspace()
    not_equal = Compare(
        result=CompareResult.NOT_EQUAL, target=CompareTarget.VALUE, key=b"k", value=b"x"
    )
    outcome = apply_any(store, TxnRequest(compare=(not_equal,)))
    assert isinstance(outcome, Applied)
    assert outcome.response.succeeded is False


# --- range ---------------------------------------------------------------------------------------
def test_sort_target_without_order_sorts_only_the_first_limit_plus_one() -> None:
    """etcd's rangeLimit fetches limit + 1 keys unless sort_order is set; then sorts them."""
    versions = {b"a": 3, b"b": 2, b"c": 1, b"d": 4}
    store = store_with(
        *(PutRequest(key=key) for key, count in versions.items() for _ in range(count))
    )
    by_version = RangeRequest(key=b"a", range_end=b"z", limit=1, sort_target=SortTarget.VERSION)
    outcome = apply_any(store, by_version)
    assert isinstance(outcome, Applied)
    assert [kv.key for kv in outcome.response.kvs] == [b"b"]  # lowest of {a, b}, not c
    assert outcome.response.more and outcome.response.count == 4
    ascending = attrs.evolve(by_version, sort_order=SortOrder.ASCEND)
    outcome = apply_any(store, ascending)
    assert isinstance(outcome, Applied)
    assert [kv.key for kv in outcome.response.kvs] == [b"c"]  # an explicit order fetches all
    descending = attrs.evolve(by_version, sort_order=SortOrder.DESCEND)
    outcome = apply_any(store, descending)
    assert isinstance(outcome, Applied)
    assert [kv.key for kv in outcome.response.kvs] == [b"d"]


def test_range_revision_bounds() -> None:
    store = store_with(
        PutRequest(key=b"k"), PutRequest(key=b"k"), CompactionRequest(revision=Revision(2))
    )
    assert (
        rejected(store, RangeRequest(key=b"k", revision=Revision(4))) == EtcdError.FUTURE_REVISION
    )
    assert rejected(store, RangeRequest(key=b"k", revision=Revision(1))) == EtcdError.COMPACTED
    at_compaction = apply_any(store, RangeRequest(key=b"k", revision=Revision(2)))
    assert isinstance(at_compaction, Applied)
    assert at_compaction.response.kvs[0].version == 1
    assert at_compaction.response.header.revision == 3


# --- compaction -----------------------------------------------------------------------------------
def test_compaction_errors() -> None:
    store = store_with(PutRequest(key=b"k"), CompactionRequest(revision=Revision(2)))
    assert rejected(store, CompactionRequest(revision=Revision(2))) == EtcdError.COMPACTED
    assert rejected(store, CompactionRequest(revision=Revision(3))) == EtcdError.FUTURE_REVISION


def test_compaction_keeps_the_latest_revision_at_or_before_it_and_the_tombstone_at_it() -> None:
    pairs = [RevisionPair(Revision(main), 0) for main in range(10)]
    index = key_index_put(None, b"k", pairs[2])
    index = key_index_put(index, b"k", pairs[3])
    index = key_index_tombstone(index, pairs[4])
    index = key_index_put(index, b"k", pairs[5])
    index = key_index_tombstone(index, pairs[6])
    kept, dropped = key_index_compact(index, Revision(6))
    assert dropped == (pairs[2], pairs[3], pairs[4], pairs[5])
    assert kept is not None and kept.generations[0].revisions == (pairs[6],)  # tombstone at R kept
    gone, dropped = key_index_compact(index, Revision(7))
    assert gone is None and len(dropped) == 5  # deleted before R: the key vanishes
    kept, dropped = key_index_compact(index, Revision(3))
    assert dropped == (pairs[2],)
    assert kept is not None and key_index_get(kept, Revision(3)) == key_index_get(
        index, Revision(3)
    )


def test_delete_resets_version_and_create_revision() -> None:
    store = store_with(
        PutRequest(key=b"k"),
        PutRequest(key=b"k"),
        DeleteRangeRequest(key=b"k"),
        PutRequest(key=b"k"),
    )
    outcome = apply_any(store, RangeRequest(key=b"k"))
    assert isinstance(outcome, Applied)
    kv = outcome.response.kvs[0]
    assert (kv.version, kv.create_revision, kv.mod_revision) == (1, 5, 5)
