"""The key index: for one key, every revision at which it was written, grouped into generations.

A **generation** is one life of a key: it starts with the put that creates the key and ends
with the delete (the **tombstone**) that removes it. The last generation of a key is the
current one; it is empty when the key is deleted now. From etcd `mvcc/key_index.go`:

    put(2); put(3); delete(4); put(5); delete(6)
    -> generations  [{created 2, revisions 2 3 4(tombstone)}, {created 5, revisions 5 6(t)}, {}]

Each generation remembers how many writes it has seen (`version_count`, etcd's `ver`, which
counts the tombstone too), so a key's version at any revision can be recovered even after
compaction has dropped the older revisions of the generation.

The functions here are pure: each returns a new KeyIndex. A key that has never been written,
or whose whole history was compacted away, has no KeyIndex at all (None).
"""

from __future__ import annotations

from typing import Final

import attrs

from spec.mvcc.revision import Revision, RevisionPair


@attrs.frozen
class Generation:
    """One life of a key: created at `created`, written at each of `revisions` (oldest first)."""

    version_count: int
    created: Revision | None
    revisions: tuple[RevisionPair, ...]

    @property
    def is_empty(self) -> bool:
        return not self.revisions


@attrs.frozen
class KeyIndex:
    """Every generation of one key, oldest first; the last one is the key's current life."""

    key: bytes
    generations: tuple[Generation, ...]

    def __attrs_post_init__(self) -> None:
        assert self.generations, "a key index always has a current generation"
        for generation in self.generations[:-1]:
            assert not generation.is_empty, "only the current generation may be empty"

    @property
    def modified(self) -> RevisionPair:
        """The revision of the key's most recent write (put or tombstone)."""
        for generation in reversed(self.generations):
            if generation.revisions:
                return generation.revisions[-1]
        raise AssertionError("a key index holds at least one revision")


@attrs.frozen
class KeyAt:
    """What the index knows of a key at one revision: its last write, creation and version."""

    modified: RevisionPair
    created: Revision
    version: int


_EMPTY_GENERATION: Final = Generation(version_count=0, created=None, revisions=())


def empty_generation() -> Generation:
    """The current generation of a deleted key (frozen, so every index shares this one object)."""
    return _EMPTY_GENERATION


def key_index_put(index: KeyIndex | None, key: bytes, revision: RevisionPair) -> KeyIndex:
    """Record a put: append to the current generation, which starts a life if it was empty.

    etcd `keyIndex.put`: revisions only grow, and every put raises the generation's version.
    """
    if index is None:
        return KeyIndex(key=key, generations=(Generation(1, revision.main, (revision,)),))
    assert index.key == key
    return KeyIndex(key=key, generations=_generations_with_put(index, revision))


def key_index_tombstone(index: KeyIndex, revision: RevisionPair) -> KeyIndex:
    """Record a delete: the tombstone ends the current generation and a new empty one begins.

    etcd `keyIndex.tombstone`; deleting a key that does not exist now is not a write at all
    (the caller must not call this then). The tombstone is written to the generation as a put
    is, so it counts in `version_count`.
    """
    assert not index.generations[-1].is_empty, "only a live key can be deleted"
    ended = _generations_with_put(index, revision)
    return KeyIndex(key=index.key, generations=(*ended, empty_generation()))


def _generations_with_put(index: KeyIndex, revision: RevisionPair) -> tuple[Generation, ...]:
    """`index`'s generations with `revision` appended to the current one (starting it if empty)."""
    assert not _has_revisions(index) or revision > index.modified, "revisions only grow"
    current = index.generations[-1]
    created = current.created if current.created is not None else revision.main
    grown = Generation(current.version_count + 1, created, (*current.revisions, revision))
    return (*index.generations[:-1], grown)


def key_index_get(index: KeyIndex, at_revision: Revision) -> KeyAt | None:
    """The key's state at `at_revision`, or None if it did not exist then.

    etcd `keyIndex.get` / `findGeneration`: find the generation alive at that revision; a
    revision at or after a generation's tombstone (and before the next put) sees no key.
    """
    last = len(index.generations) - 1
    for position in range(last, -1, -1):
        generation = index.generations[position]
        if generation.is_empty:
            continue
        if position != last and generation.revisions[-1].main <= at_revision:
            return None
        if generation.revisions[0].main <= at_revision:
            return _key_at_in_generation(generation, at_revision)
    return None


def _key_at_in_generation(generation: Generation, at_revision: Revision) -> KeyAt:
    for later_count, revision in enumerate(reversed(generation.revisions)):
        if revision.main <= at_revision:
            assert generation.created is not None
            version = generation.version_count - later_count
            return KeyAt(modified=revision, created=generation.created, version=version)
    raise AssertionError("the caller checked that the generation started by at_revision")


def key_index_compact(
    index: KeyIndex, at_revision: Revision
) -> tuple[KeyIndex | None, tuple[RevisionPair, ...]]:
    """Forget history before `at_revision`: return the trimmed index and the revisions dropped.

    What etcd keeps (`keyIndex.compact`, with the fix of etcd PR #18274 in 3.4.34 / 3.5.16):
    every revision after `at_revision`, plus the latest revision at or before it in the
    generation alive then. A generation whose tombstone is before `at_revision` is dropped
    whole; a tombstone exactly at `at_revision` is kept (so a watch from that revision still
    sees the delete). A key left with nothing but an empty generation disappears (None).
    """
    only = index.generations[0]
    if len(index.generations) == 1 and (
        len(only.revisions) < 2 or only.revisions[1].main > at_revision
    ):
        return index, ()  # one life, nothing before its latest revision <= at_revision
    dropped: list[RevisionPair] = []
    generations = list(index.generations)
    while len(generations) > 1 and generations[0].revisions[-1].main < at_revision:
        dropped.extend(generations.pop(0).revisions)
    first = generations[0]
    keep_from = 0
    for position, revision in enumerate(first.revisions):
        if revision.main <= at_revision:
            keep_from = position
    dropped.extend(first.revisions[:keep_from])
    generations[0] = attrs.evolve(first, revisions=first.revisions[keep_from:])
    if len(generations) > 1 and len(generations[0].revisions) == 1:
        generations[0] = lone_tombstone_generation(generations[0].revisions[0])
    if len(generations) == 1 and generations[0].is_empty:
        return None, tuple(dropped)
    return KeyIndex(key=index.key, generations=tuple(generations)), tuple(dropped)


def key_index_keep(index: KeyIndex, at_revision: Revision) -> RevisionPair | None:
    """The revision a compaction at `at_revision` would keep at or before it (etcd `keyIndex.keep`).

    It is the latest revision at or before `at_revision` in the first generation not deleted by
    then; a generation whose tombstone is at or before `at_revision` is passed over (so, unlike
    `key_index_compact` since etcd 3.4.34 / 3.5.16, a tombstone exactly there is not kept).
    etcd's HashKV uses this set (see impl/backend/hash.py).
    """
    generations = index.generations
    position = 0
    while (
        position < len(generations) - 1 and generations[position].revisions[-1].main <= at_revision
    ):
        position += 1
    for revision in reversed(generations[position].revisions):
        if revision.main <= at_revision:
            return revision
    return None


def lone_tombstone_generation(tombstone: RevisionPair) -> Generation:
    """An ended life of which compaction kept only the tombstone (kept when it is exactly at the
    compaction revision). Its version and creation can no longer be read by anyone, and a
    rebuilt index cannot know them, so both compaction and `key_index_restore` set them to 1
    and the tombstone's revision."""
    return Generation(version_count=1, created=tombstone.main, revisions=(tombstone,))


def key_index_restore(
    index: KeyIndex | None,
    key: bytes,
    revision: RevisionPair,
    tombstone: bool,
    created: Revision,
    version: int,
) -> KeyIndex:
    """Rebuild an index from stored records, oldest first (etcd `keyIndex.restore`).

    Compaction may have dropped the start of a life, so a record that begins one restores the
    life's creation revision and version from the stored key-value instead of counting.
    """
    starts_life = index is None or index.generations[-1].is_empty
    if not starts_life:
        assert index is not None
        if tombstone:
            return key_index_tombstone(index, revision)
        return key_index_put(index, key, revision)
    ended = () if index is None else index.generations[:-1]
    if tombstone:
        return KeyIndex(key, (*ended, lone_tombstone_generation(revision), empty_generation()))
    return KeyIndex(key, (*ended, Generation(version, created, (revision,))))


def tombstone_revisions(index: KeyIndex) -> frozenset[RevisionPair]:
    """The revisions in `index` that are deletes: the last one of every ended generation."""
    return frozenset(generation.revisions[-1] for generation in index.generations[:-1])


def _has_revisions(index: KeyIndex) -> bool:
    # Only the last generation may be empty (KeyIndex checks it), so the first one tells.
    return len(index.generations) > 1 or not index.generations[0].is_empty
