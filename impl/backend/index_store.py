"""The in-memory key index, kept where Python's cycle collector does not have to scan it.

A keyspace of N keys holds N `KeyIndex` objects, each with its generations and revision pairs:
about five container objects per key, all tracked by the cycle collector. A full collection
walks every tracked object with the GIL held, so with 50,000 keys written under `etcdctl check
perf --load m` each member paused for 0.2 to 0.8 s at a time, the slowest client requests of
the run (measured with gc.callbacks on 2026-12-02; freezing the collector's survivors removed
those pauses and the run passed).

So the index is held as plain tuples of ints (`_Packed`): once the collector has seen that a
tuple holds only ints, None and other such tuples it stops tracking it, and a full collection
no longer visits the index at all. Recently written keys stay as `KeyIndex` objects in a
bounded write-back cache, so a key written again and again is not converted on every write;
a key leaves the cache (and is packed) when `cached_keys_max` newer writes have pushed it out.
Each key is in exactly one of the two maps.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Final, cast

from spec.mvcc import KeyIndex, Revision, RevisionPair
from spec.mvcc.key_index import Generation, empty_generation

cached_keys_max: Final = 4096

# (version_count, created or None, (main, sub, main, sub, ...)) for each generation, oldest first
_PackedGeneration = tuple[int, Revision | None, tuple[int, ...]]
_Packed = tuple[_PackedGeneration, ...]
_EMPTY_GENERATION: Final = empty_generation()
_EMPTY_GENERATION_PACKED: Final[_PackedGeneration] = (0, None, ())


def pack(index: KeyIndex) -> _Packed:
    # Written as plain loops: this runs for every key a big delete writes, and nested
    # generator expressions cost three times as much.
    packed = []
    for generation in index.generations:
        if generation is _EMPTY_GENERATION:
            packed.append(_EMPTY_GENERATION_PACKED)  # shared, as the generation itself is
            continue
        flat: list[int] = []
        for pair in generation.revisions:
            flat.append(pair.main)
            flat.append(pair.sub)
        packed.append((generation.version_count, generation.created, tuple(flat)))
    return tuple(packed)


def unpack(key: bytes, packed: _Packed) -> KeyIndex:
    return KeyIndex(key, tuple(_unpack_generation(generation) for generation in packed))


def _unpack_generation(packed: _PackedGeneration) -> Generation:
    if packed == _EMPTY_GENERATION_PACKED:
        return _EMPTY_GENERATION  # a deleted key's current generation (one shared object)
    version_count, created, flat = packed
    mains = cast(tuple[Revision, ...], flat[0::2])
    return Generation(version_count, created, tuple(map(RevisionPair, mains, flat[1::2])))


class KeyIndexStore:
    """key -> `KeyIndex`, most of it packed (see the module docstring)."""

    def __init__(self, cached_keys: int = cached_keys_max) -> None:
        self._cached_keys = cached_keys
        self._recent: OrderedDict[bytes, KeyIndex] = OrderedDict()
        self._packed: dict[bytes, _Packed] = {}

    def __len__(self) -> int:
        return len(self._recent) + len(self._packed)

    def __contains__(self, key: bytes) -> bool:
        return key in self._recent or key in self._packed

    def get(self, key: bytes) -> KeyIndex | None:
        """The key's index (a fresh object when it was packed: reads do not fill the cache)."""
        index = self._recent.get(key)
        if index is not None:
            return index
        packed = self._packed.get(key)
        return None if packed is None else unpack(key, packed)

    def put(self, index: KeyIndex) -> bool:
        """Store `index` as its key's current index, evicting the least recently written one;
        True if the key had no index before."""
        key = index.key
        new = self._recent.pop(key, None) is None and self._packed.pop(key, None) is None
        self._recent[key] = index
        if len(self._recent) > self._cached_keys:
            evicted_key, evicted = self._recent.popitem(last=False)
            self._packed[evicted_key] = pack(evicted)
        return new

    def put_all_packed(self, indexes: Iterable[KeyIndex]) -> None:
        """Store many indexes straight into the packed map (rebuilding the index on open)."""
        for index in indexes:
            self._recent.pop(index.key, None)
            self._packed[index.key] = pack(index)

    def remove(self, key: bytes) -> None:
        if self._recent.pop(key, None) is None:
            del self._packed[key]
