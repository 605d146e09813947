"""The LMDB keyspace against the in-memory one and the model, across batches, reopen and defrag.

The state machine of tests/spec/mvcc/harness.py runs every operation on both stores: each
outcome (response, changes, events) and each watch delivery must be identical on both, and
match the model. Extra rules commit the LMDB batch with a consistent index, close and reopen
the file (the key index is then rebuilt from the records), defragment it, and compare HashKV.
The LMDB store caches only 2 key indexes as objects, so most reads go through the packed form.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from impl.backend.hash import hash_keyspace
from impl.backend.keyspace import LmdbKeyspace
from spec.mvcc import MemoryKeyspace, Revision
from tests.spec.mvcc.harness import MvccComparison


class LmdbAgainstMemory(MvccComparison):
    def make_stores(self) -> list[Any]:
        self.directory = Path(tempfile.mkdtemp(prefix="etcdref-backend-"))
        self.consistent_index = 0
        return [MemoryKeyspace(), LmdbKeyspace(self.directory / "db", sync=False, cached_key_indexes=2)]

    @property
    def lmdb(self) -> LmdbKeyspace:
        store = self.stores[1]
        assert isinstance(store, LmdbKeyspace)
        return store

    @rule()
    def commit_batch(self) -> None:
        self.consistent_index += 1
        self.lmdb.commit(self.consistent_index)

    @rule()
    def reopen(self) -> None:
        """Close (committing the batch) and open again: the index is rebuilt from the file."""
        self.lmdb.close()
        self.stores[1] = LmdbKeyspace(self.directory / "db", sync=False, cached_key_indexes=2)
        assert self.lmdb.consistent_index() == self.consistent_index
        for key_index in self.stores[0].key_indexes(b"", None):
            assert self.lmdb.key_index(key_index.key) == key_index, (
                "rebuilt index equals the live one"
            )
        assert list(self.lmdb.key_indexes(b"", None)) == list(self.stores[0].key_indexes(b"", None))
        assert list(self.lmdb.leases()) == list(self.stores[0].leases())

    @rule(offset=st.integers(0, 3))
    def compact_and_reopen(self, offset: int) -> None:
        """A compaction, then a restart: the rebuilt index must match what compaction left."""
        self.compact(offset)
        self.reopen()

    @rule()
    def defragment(self) -> None:
        self.lmdb.defragment()

    @rule(offset=st.integers(0, 8))
    def views_agree(self, offset: int) -> None:
        """Every method of the view protocol answers the same on both stores."""
        memory, lmdb = self.stores
        revision = Revision(max(0, self.model.current_revision - offset))
        assert list(lmdb.records_from(revision)) == list(memory.records_from(revision))
        assert list(lmdb.key_indexes(b"a", b"b")) == list(memory.key_indexes(b"a", b"b"))
        for lease in (1, 2, 3):
            assert lmdb.keys_attached(lease) == memory.keys_attached(lease)
            assert lmdb.lease(lease) == memory.lease(lease)

    @rule(offset=st.integers(-1, 6))
    def hash_agrees(self, offset: int) -> None:
        revision = Revision(self.model.current_revision - offset)
        hashes = [hash_keyspace(store, revision) for store in self.stores]
        assert hashes[0] == hashes[1]

    def teardown(self) -> None:
        self.lmdb.close()
        shutil.rmtree(self.directory, ignore_errors=True)


# Disk-backed steps are slower: run 60 % of the profile's examples (60 in `ci`).
_profile = settings.default
assert _profile is not None
LmdbAgainstMemory.TestCase.settings = settings(
    LmdbAgainstMemory.TestCase.settings, max_examples=_profile.max_examples * 6 // 10
)
TestLmdbAgainstMemory = LmdbAgainstMemory.TestCase
