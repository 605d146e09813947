"""spec.lease: grant, revoke, keep-alive, time-to-live, list, expiry and leader change.

Revoke and put-with-lease are also compared against models.kv in the MVCC state machine
(tests/spec/mvcc/harness.py); here are the rules that involve time, and expiry against a naive
model of the leader's clock.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from spec import constants
from spec.errors import EtcdError
from spec.lease import (
    Lease,
    LeaseCheckpoint,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    Leases,
    LeaseTimeToLiveRequest,
    checkpoint,
    demote,
    expired_leases,
    grant,
    keep_alive,
    lease_list,
    lease_ttl_seconds_minimum,
    promote,
    recover,
    revoke,
    time_to_live,
)
from spec.mvcc import Applied, EventType, LeaseId, MemoryKeyspace, PutRequest, Rejected, put


def granted(
    store: MemoryKeyspace, leases: Leases, lease: int, ttl: int, now: float | None = 0.0
) -> Leases:
    outcome, leases = grant(
        store, leases, LeaseGrantRequest(TTL=ttl, ID=LeaseId(lease)), LeaseId(1), now
    )
    assert isinstance(outcome, Applied)
    store.apply(outcome.changes)
    return leases


def test_minimum_ttl_is_one_and_a_half_election_timeouts_rounded_up() -> None:
    assert lease_ttl_seconds_minimum() == 2 == constants.lease_ttl_seconds_min
    assert lease_ttl_seconds_minimum(election_timeout_ms=5000) == 8


def test_grant_raises_short_ttls_and_refuses_long_or_taken_ones() -> None:
    store = MemoryKeyspace()
    outcome, leases = grant(
        store, Leases(), LeaseGrantRequest(TTL=-5, ID=LeaseId(0)), LeaseId(42), 10.0
    )
    assert isinstance(outcome, Applied)
    assert (outcome.response.ID, outcome.response.TTL) == (42, 2)
    assert leases.by_id[LeaseId(42)].expiry_seconds == 12.0
    store.apply(outcome.changes)
    assert store.lease(LeaseId(42)) is not None
    again, _ = grant(store, leases, LeaseGrantRequest(TTL=60, ID=LeaseId(42)), LeaseId(1), 10.0)
    assert again == Rejected(EtcdError.LEASE_EXISTS)
    too_long = LeaseGrantRequest(TTL=constants.lease_ttl_seconds_max + 1, ID=LeaseId(42))
    assert grant(store, leases, too_long, LeaseId(1), 10.0)[0] == Rejected(
        EtcdError.LEASE_TTL_TOO_LARGE
    )


def test_follower_grants_never_expire() -> None:
    leases = granted(MemoryKeyspace(), Leases(), 5, 10, now=None)
    assert leases.by_id[LeaseId(5)].expiry_seconds is None
    assert expired_leases(leases, 1e12) == ()


def test_revoke_deletes_attached_keys_in_key_order_at_one_revision() -> None:
    store = MemoryKeyspace()
    leases = granted(store, Leases(), 5, 10)
    for key in (b"c", b"a", b"b"):
        outcome = put(store, PutRequest(key=key, lease=LeaseId(5)))
        assert isinstance(outcome, Applied)
        store.apply(outcome.changes)
    revoked, leases = revoke(store, leases, LeaseRevokeRequest(ID=LeaseId(5)))
    assert isinstance(revoked, Applied)
    assert [event.kv.key for event in revoked.events] == [b"a", b"b", b"c"]
    assert {event.type for event in revoked.events} == {EventType.DELETE}
    assert {event.kv.mod_revision for event in revoked.events} == {5}
    assert revoked.response.header.revision == 5
    store.apply(revoked.changes)
    assert store.lease(LeaseId(5)) is None and LeaseId(5) not in leases.by_id
    assert revoke(store, leases, LeaseRevokeRequest(ID=LeaseId(5)))[0] == Rejected(
        EtcdError.LEASE_NOT_FOUND
    )


def test_keep_alive_answers_the_granted_ttl_or_zero() -> None:
    store = MemoryKeyspace()
    leases = granted(store, Leases(), 5, 10, now=0.0)
    response, leases = keep_alive(leases, LeaseKeepAliveRequest(ID=LeaseId(5)), 4.0)
    assert response.TTL == 10 and leases.by_id[LeaseId(5)].expiry_seconds == 14.0
    assert keep_alive(leases, LeaseKeepAliveRequest(ID=LeaseId(6)), 4.0)[0].TTL == 0
    assert keep_alive(leases, LeaseKeepAliveRequest(ID=LeaseId(5)), 14.0)[0].TTL == 0  # expired


def test_time_to_live() -> None:
    store = MemoryKeyspace()
    leases = granted(store, Leases(), 5, 10, now=0.0)
    outcome = put(store, PutRequest(key=b"k", lease=LeaseId(5)))
    assert isinstance(outcome, Applied)
    store.apply(outcome.changes)
    answer = time_to_live(store, leases, LeaseTimeToLiveRequest(ID=LeaseId(5), keys=True), 3.5)
    assert (answer.TTL, answer.grantedTTL, answer.keys) == (6, 10, (b"k",))
    unknown = time_to_live(store, leases, LeaseTimeToLiveRequest(ID=LeaseId(9)), 3.5)
    assert (unknown.TTL, unknown.grantedTTL) == (-1, 0)


def test_lease_list_and_recovery() -> None:
    store = MemoryKeyspace()
    leases = granted(store, Leases(), 7, 30)
    leases = granted(store, leases, 5, 10)
    assert [status.ID for status in lease_list(store, leases).leases] == [5, 7]
    recovered = recover(store)
    assert {lease.id: lease.ttl_seconds for lease in recovered.by_id.values()} == {5: 10, 7: 30}
    assert all(lease.expiry_seconds is None for lease in recovered.by_id.values())


def test_checkpoint_remembers_remaining_ttl_for_the_next_leader() -> None:
    leases = Leases({LeaseId(1): Lease(LeaseId(1), 60, None)})
    checkpointed = checkpoint(
        leases, (LeaseCheckpoint(LeaseId(1), 7), LeaseCheckpoint(LeaseId(9), 3))
    )
    assert checkpointed.by_id[LeaseId(1)].remaining_ttl_seconds == 7
    assert LeaseId(9) not in checkpointed.by_id
    assert promote(checkpointed, 10.0, 1.0).by_id[LeaseId(1)].expiry_seconds == 18.0
    renewed = keep_alive(
        promote(checkpointed, 10.0, 1.0), LeaseKeepAliveRequest(ID=LeaseId(1)), 11.0
    )[1]
    assert renewed.by_id[LeaseId(1)].remaining_ttl_seconds == 0  # a keep-alive clears it


def test_promote_restarts_every_lease_and_demote_stops_expiry() -> None:
    leases = Leases(
        {
            LeaseId(1): Lease(LeaseId(1), 10, 3.0),
            LeaseId(2): Lease(LeaseId(2), 10, 3.0, remaining_ttl_seconds=4),
        }
    )
    promoted = promote(leases, 100.0, 1.0)
    assert promoted.by_id[LeaseId(1)].expiry_seconds == 111.0
    assert promoted.by_id[LeaseId(2)].expiry_seconds == 105.0
    assert all(lease.expiry_seconds is None for lease in demote(promoted).by_id.values())


expiries = st.dictionaries(
    st.integers(1, 30).map(LeaseId), st.one_of(st.none(), st.integers(0, 20)), max_size=12
)


@given(expiries=expiries, now=st.integers(0, 20), limit=st.integers(1, 5))
def test_expired_leases_against_a_naive_clock(
    expiries: dict[LeaseId, int | None], now: int, limit: int
) -> None:
    """Expired = expiry at or before now; soonest first (then id), at most `limit` per pass."""
    leases = Leases({lease: Lease(lease, 5, expiry) for lease, expiry in expiries.items()})
    due = sorted(
        (expiry, lease)
        for lease, expiry in expiries.items()
        if expiry is not None and expiry <= now
    )
    assert expired_leases(leases, now, limit) == tuple(lease for _, lease in due[:limit])
