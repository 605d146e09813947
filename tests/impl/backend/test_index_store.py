"""The packed key index: exact round trips, and a full collection that does not scan it."""

from __future__ import annotations

import gc

from hypothesis import given
from hypothesis import strategies as st

from impl.backend.index_store import KeyIndexStore, pack, unpack
from spec.mvcc import KeyIndex, Revision, RevisionPair
from spec.mvcc.key_index import key_index_restore


@st.composite
def key_indexes(draw: st.DrawFn) -> KeyIndex:
    """An index built the way the keyspace builds one: puts and deletes at rising revisions."""
    index: KeyIndex | None = None
    main = draw(st.integers(1, 1_000))
    for tombstone in draw(st.lists(st.booleans(), min_size=1, max_size=12)):
        main += draw(st.integers(1, 2**40))
        revision = RevisionPair(Revision(main), draw(st.integers(0, 3)))
        created = Revision(draw(st.integers(1, main)))
        index = key_index_restore(index, b"k", revision, tombstone, created, draw(st.integers(1, 9)))
    assert index is not None
    return index


@given(key_indexes())
def test_pack_then_unpack_gives_the_same_index(index: KeyIndex) -> None:
    assert unpack(index.key, pack(index)) == index


@given(st.lists(key_indexes(), min_size=1, max_size=20), st.integers(0, 3))
def test_the_store_returns_the_last_index_put_for_each_key(
    indexes: list[KeyIndex], cached_keys: int
) -> None:
    store = KeyIndexStore(cached_keys)
    latest: dict[bytes, KeyIndex] = {}
    for number, index in enumerate(indexes):
        index = KeyIndex(b"k%d" % (number % 5), index.generations)
        store.put(index)
        latest[index.key] = index
    assert len(store) == len(latest)
    for key, index in latest.items():
        assert store.get(key) == index
    store.remove(b"k0")
    assert b"k0" not in store and store.get(b"k0") is None


def test_a_full_collection_does_not_track_packed_indexes() -> None:
    """20,000 keys add well under one tracked object per key once the collector has seen them."""
    keys = 20_000
    store = KeyIndexStore(cached_keys=100)
    gc.collect()
    before = len(gc.get_objects())
    for number in range(keys):
        revision = RevisionPair(Revision(number + 2), 0)
        store.put(key_index_restore(None, b"key-%d" % number, revision, False, revision.main, 1))
    gc.collect()
    gc.collect()
    tracked = len(gc.get_objects()) - before
    assert tracked < keys // 10, f"{tracked} new tracked objects for {keys} keys"
