"""Seeded random KV requests over a few keys under one prefix, in the model's revision space.

Covers the documented KV behaviours (KV-5 .. KV-10 in the conformance notes): single-key and
range reads with limit, sort order and target, keys_only, count_only, revision filters and
historical revisions (including compacted and future ones); puts with prev_kv, ignore_value,
ignore_lease and an unknown lease; deletes of keys and ranges with prev_kv; txns with every
compare target and result, both branches, nested txns, duplicate keys; compaction; and the
request errors (empty key, value with ignore_value). Ranges never leave the prefix, so other
keys on the server do not show.

With `leases_and_watches` the stream also holds lease and watch requests (L-1 .. L-5, W-8 ..
W-10): grants with a given id and a long TTL (10 minutes to an hour, so nothing expires during
a run), a TTL above etcd's maximum, an id already granted, revoke of a live and of an unknown
lease, time-to-live with and without keys and of an unknown lease, the list of leases,
keep-alive, puts (also inside txns) attached to a live or a revoked lease, lease compares; and
watches of a key or range from a past, the current, the next or a compacted revision, with
filters and prev_kv. Lease ids are `lease_id_base + n`: a run picks a base of its own, so its
grants meet no lease already on the server. Without the flag the random stream is exactly the
KV-only one (the committed `kv-seed-*` vectors).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import attrs

from conformance.api_semantics.oracle import ApiRequest, LeaseLeasesRequest, LeaseRequest
from spec import constants
from spec.lease import (
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
)
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
from spec.watch import FilterType, WatchCreateRequest

UNKNOWN_LEASE = LeaseId(0x6E6F_6C65_6173_65)
KEY_COUNT = 6
LEASE_ID_BASE_DEFAULT = 0x7665_6300_0000  # the committed vectors' lease ids follow this
LEASE_TTL_CHOICES_SECONDS = (600, 900, 1800, 3600)


class RequestGenerator:
    def __init__(
        self,
        seed: int,
        prefix: bytes,
        leases_and_watches: bool = False,
        lease_id_base: int = LEASE_ID_BASE_DEFAULT,
    ) -> None:
        self.draw = random.Random(seed)
        self.prefix = prefix
        self.keys = [prefix + f"k{index}".encode() for index in range(KEY_COUNT)]
        self.prefix_end = prefix[:-1] + bytes([prefix[-1] + 1])
        self.values = 0
        self.leases_and_watches = leases_and_watches
        self.lease_id_base = lease_id_base
        self.lease_ids_issued: list[LeaseId] = []
        self.live_leases: Sequence[LeaseId] = ()
        self.leases_with_keys: Sequence[LeaseId] = ()

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
        if self.leases_and_watches and self.lease_ids_issued and draw.random() < 0.5:
            return PutRequest(key=self.key(), value=self.value(), lease=self.lease_to_use())
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
                lease = self.lease_to_use() if self.leases_and_watches else LeaseId(0)
                return attrs.evolve(compare, lease=lease)
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

    def request(
        self, current: int, compacted: int, leases: Mapping[LeaseId, int] | None = None
    ) -> ApiRequest:
        """The next request, given the model's current and compacted revisions and the live
        leases with the number of keys attached to each."""
        leases = leases or {}
        self.live_leases = sorted(leases)
        self.leases_with_keys = sorted(lease for lease, count in leases.items() if count)
        if self.leases_and_watches:
            choice = self.draw.random()
            if choice < 0.14:
                return self.lease_request()
            if choice < 0.2:
                return self.watch_request(current, compacted)
        return self.key_value_request(current, compacted)

    def key_value_request(self, current: int, compacted: int) -> KeyValueRequest:
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

    # --- Leases ---------------------------------------------------------------------------------
    def dead_lease(self) -> LeaseId:
        """An id that is not granted: revoked, refused, or never used."""
        dead = [lease for lease in self.lease_ids_issued if lease not in self.live_leases]
        return self.draw.choice(dead) if dead and self.draw.random() < 0.7 else UNKNOWN_LEASE

    def lease_to_use(self) -> LeaseId:
        """Mostly a live lease (or none), sometimes one that is not granted (an error)."""
        choice = self.draw.random()
        if self.live_leases and choice < 0.75:
            return self.draw.choice(self.live_leases)
        return LeaseId(0) if choice < 0.85 else self.dead_lease()

    def live_lease(self) -> LeaseId:
        """A live lease, preferably one with keys (revoke and time-to-live show them)."""
        if self.leases_with_keys and self.draw.random() < 0.7:
            return self.draw.choice(self.leases_with_keys)
        return self.draw.choice(self.live_leases)

    def new_lease_id(self) -> LeaseId:
        lease = LeaseId(self.lease_id_base + len(self.lease_ids_issued) + 1)
        self.lease_ids_issued.append(lease)
        return lease

    def lease_request(self) -> LeaseRequest:
        draw = self.draw
        live = self.live_leases
        choice = draw.random()
        if choice < 0.3 or not live:
            ttl = draw.choice(LEASE_TTL_CHOICES_SECONDS)
            if draw.random() < 0.07:
                ttl = constants.lease_ttl_seconds_max + 1  # too large lease TTL
            revoked = [lease for lease in self.lease_ids_issued if lease not in live]
            if revoked and draw.random() < 0.1:
                return LeaseGrantRequest(TTL=ttl, ID=draw.choice(revoked))  # an id may return
            return LeaseGrantRequest(TTL=ttl, ID=self.new_lease_id())
        if choice < 0.36:
            return LeaseGrantRequest(TTL=600, ID=draw.choice(live))  # lease already exists
        if choice < 0.5:
            return LeaseRevokeRequest(ID=self.live_lease())
        if choice < 0.55:
            return LeaseRevokeRequest(ID=self.dead_lease())
        if choice < 0.72:
            return LeaseTimeToLiveRequest(ID=self.live_lease(), keys=draw.random() < 0.7)
        if choice < 0.76:
            return LeaseTimeToLiveRequest(ID=self.dead_lease(), keys=draw.random() < 0.5)
        if choice < 0.88:
            return LeaseLeasesRequest()
        lease = draw.choice(live) if draw.random() < 0.8 else self.dead_lease()
        return LeaseKeepAliveRequest(ID=lease)

    # --- Watches --------------------------------------------------------------------------------
    def watch_request(self, current: int, compacted: int) -> WatchCreateRequest:
        draw = self.draw
        key, range_end = self.key_range()
        low = max(1, compacted)
        past = draw.randint(low, max(low, current))
        start = draw.choice([max(1, low - 1), low, past, past, current, current + 1])
        filters = draw.choice([(), (), (FilterType.NOPUT,), (FilterType.NODELETE,)])
        return WatchCreateRequest(
            key=key,
            range_end=range_end,
            start_revision=Revision(start),
            filters=filters,
            prev_kv=draw.random() < 0.5,
        )
