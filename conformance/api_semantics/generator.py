"""Seeded random KV requests over a few keys under one prefix, in the model's revision space.

Covers the documented KV behaviours (KV-5 .. KV-10 in the conformance notes): single-key and
range reads with limit, sort order and target, keys_only, count_only, revision filters and
historical revisions (including compacted and future ones); puts with prev_kv, ignore_value,
ignore_lease and an unknown lease; deletes of keys and ranges with prev_kv; txns with every
compare target and result, both branches, nested txns, duplicate keys; compaction; and the
request errors (empty key, value with ignore_value). Ranges never leave the prefix, so other
keys on the server do not show.
"""

from __future__ import annotations

import random

import attrs

from spec.mvcc import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    EmptyRequestOp,
    KeyValueRequest,
    LeaseId,
    PutRequest,
    RangeRequest,
    RequestOp,
    Revision,
    SortOrder,
    SortTarget,
    TxnRequest,
)

UNKNOWN_LEASE = LeaseId(0x6E6F_6C65_6173_65)
KEY_COUNT = 6


class RequestGenerator:
    def __init__(self, seed: int, prefix: bytes) -> None:
        self.draw = random.Random(seed)
        self.prefix = prefix
        self.keys = [prefix + f"k{index}".encode() for index in range(KEY_COUNT)]
        self.prefix_end = prefix[:-1] + bytes([prefix[-1] + 1])
        self.values = 0

    def key(self) -> bytes:
        return self.draw.choice(self.keys)

    def value(self) -> bytes:
        self.values += 1
        return self.draw.choice([b"", b"v", b"value-"]) + str(self.values).encode()

    def revision(self, current: int) -> Revision:
        return Revision(
            self.draw.choice([0, 0, 1, current, current + 1, self.draw.randint(1, current + 2)])
        )

    def key_range(self) -> tuple[bytes, bytes]:
        choice = self.draw.random()
        if choice < 0.5:
            return self.key(), b""
        if choice < 0.75:
            return self.prefix, self.prefix_end
        first, second = sorted(self.draw.sample(self.keys, 2))
        return first, second

    def range_request(self, current: int) -> RangeRequest:
        key, range_end = self.key_range()
        draw = self.draw
        return RangeRequest(
            key=key,
            range_end=range_end,
            limit=draw.choice([0, 0, 1, 2, 3]),
            revision=self.revision(current) if draw.random() < 0.3 else Revision(0),
            sort_order=draw.choice(list(SortOrder)) if draw.random() < 0.3 else SortOrder.NONE,
            sort_target=draw.choice(list(SortTarget)) if draw.random() < 0.3 else SortTarget.KEY,
            serializable=draw.random() < 0.2,
            keys_only=draw.random() < 0.15,
            count_only=draw.random() < 0.1,
            min_mod_revision=self.revision(current) if draw.random() < 0.1 else Revision(0),
            max_mod_revision=self.revision(current) if draw.random() < 0.1 else Revision(0),
            min_create_revision=self.revision(current) if draw.random() < 0.1 else Revision(0),
            max_create_revision=self.revision(current) if draw.random() < 0.1 else Revision(0),
        )

    def put_request(self) -> PutRequest:
        draw = self.draw
        choice = draw.random()
        if choice < 0.08:
            return PutRequest(key=self.key(), ignore_value=True, prev_kv=draw.random() < 0.5)
        if choice < 0.12:
            return PutRequest(key=self.key(), value=b"x", ignore_value=True)  # value is provided
        if choice < 0.16:
            return PutRequest(key=self.key(), value=self.value(), ignore_lease=True)
        if choice < 0.19:
            return PutRequest(key=self.key(), value=self.value(), lease=UNKNOWN_LEASE)
        if choice < 0.21:
            return PutRequest(key=b"", value=self.value())  # key is not provided
        return PutRequest(key=self.key(), value=self.value(), prev_kv=draw.random() < 0.4)

    def delete_request(self) -> DeleteRangeRequest:
        key, range_end = self.key_range()
        return DeleteRangeRequest(key=key, range_end=range_end, prev_kv=self.draw.random() < 0.5)

    def compare(self, current: int) -> Compare:
        draw = self.draw
        target = draw.choice(list(CompareTarget))
        compare = Compare(
            result=draw.choice(list(CompareResult)),
            target=target,
            key=self.key(),
            range_end=self.prefix_end if draw.random() < 0.15 else b"",
        )
        match target:
            case CompareTarget.VERSION:
                return attrs.evolve(compare, version=draw.randint(0, 3))
            case CompareTarget.CREATE:
                return attrs.evolve(compare, create_revision=self.revision(current))
            case CompareTarget.MOD:
                return attrs.evolve(compare, mod_revision=self.revision(current))
            case CompareTarget.VALUE:
                return attrs.evolve(compare, value=draw.choice([b"", b"v1", b"value-3"]))
            case CompareTarget.LEASE:
                return attrs.evolve(compare, lease=LeaseId(0))
        raise AssertionError(target)

    def operation(self, current: int, depth: int) -> RequestOp:
        choice = self.draw.random()
        if choice < 0.35:
            return self.range_request(current)
        if choice < 0.75:
            return self.put_request()
        if choice < 0.92 or depth > 0:
            return self.delete_request()
        if choice < 0.97:
            return self.txn_request(current, depth + 1)
        return EmptyRequestOp()

    def txn_request(self, current: int, depth: int = 0) -> TxnRequest:
        draw = self.draw
        return TxnRequest(
            compare=tuple(self.compare(current) for _ in range(draw.randint(0, 2))),
            success=tuple(self.operation(current, depth) for _ in range(draw.randint(0, 3))),
            failure=tuple(self.operation(current, depth) for _ in range(draw.randint(0, 2))),
        )

    def request(self, current: int, compacted: int) -> KeyValueRequest:
        """The next request, given the model's current and compacted revisions."""
        choice = self.draw.random()
        if choice < 0.3:
            return self.range_request(current)
        if choice < 0.6:
            return self.put_request()
        if choice < 0.72:
            return self.delete_request()
        if choice < 0.97:
            return self.txn_request(current)
        low = max(1, compacted)
        return CompactionRequest(
            revision=Revision(self.draw.randint(low, current + 1)), physical=True
        )
