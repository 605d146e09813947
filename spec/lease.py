"""Leases: grant, revoke, keep-alive, time-to-live, list, expiry and leader change (etcd `lease/lessor.go`).

A lease is a TTL that keys can be attached to; when it ends, its keys are deleted. What is
replicated through Raft (and persisted with the keyspace, as `LeaseRecord`) is only the
lease's id and granted TTL; **when** a lease expires is the leader's business alone
(etcd's "primary lessor"). So this module keeps a `Leases` table, each lease with an expiry
time on the leader's clock or none (`expiry_seconds=None`: "forever", as on followers), and
every function takes the time `now_seconds` as an argument.

    grant(view, leases, request, chosen_id, now)   -> (Outcome[LeaseGrantResponse], Leases)
    revoke(view, leases, request)                  -> (Outcome[LeaseRevokeResponse], Leases)
    keep_alive(leases, request, now)               -> (LeaseKeepAliveResponse, Leases)
    time_to_live(view, leases, request, now)       -> LeaseTimeToLiveResponse
    lease_list(view, leases)                       -> LeaseLeasesResponse
    expired_leases(leases, now)                    -> ids the leader must revoke (through Raft)
    promote(leases, now, extend) / demote(leases)  -> Leases after a leadership change
    checkpoint(leases, checkpoints)                -> Leases with remaining TTLs remembered

Rules, with their etcd source:
* A granted TTL above `lease_ttl_seconds_max` is refused (`too large lease TTL`); one below
  the minimum (1.5 election timeouts, rounded up to seconds: 2 s by default) is raised to it,
  and the response shows the raised TTL. An id already granted is refused (`lease already
  exists`). Id 0 asks the server to choose (`chosen_id`, drawn by the caller: etcd takes a
  request-id generator's next value with the top bit cleared).
* Revoke deletes every key attached to the lease, in key order, in one write (one revision,
  as `DeleteRange`s in one txn), and removes the lease in the same write. Unknown: `requested
  lease not found`.
* Keep-alive restarts the TTL and answers with the **granted** TTL; an unknown or already
  expired lease answers TTL 0 (not an error).
* Time-to-live answers the remaining seconds (truncated) and the granted TTL, and the attached
  keys if asked; an unknown lease answers TTL -1 (not an error).
* On becoming leader (`Promote`), every lease expires at now + election timeout + its
  remaining TTL (the checkpointed one if set, else the full TTL): without checkpoints a leader
  change restarts every lease. On losing leadership (`Demote`) no lease expires.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from spec import constants
from spec.errors import EtcdError
from spec.mvcc.messages import DeleteRangeRequest, ResponseHeader
from spec.mvcc.outcome import Applied, Outcome, Rejected, events_for_changes
from spec.mvcc.revision import LeaseId, lease_none
from spec.mvcc.view import Changes, KeyspaceView, LeaseRecord, OverlayView
from spec.mvcc.write import write_delete_range


# --- Messages (etcdserverpb, field names as in rpc.proto) ---------------------------------------
@attrs.frozen
class LeaseGrantRequest:
    TTL: int = 0
    ID: LeaseId = lease_none


@attrs.frozen
class LeaseGrantResponse:
    header: ResponseHeader = ResponseHeader()
    ID: LeaseId = lease_none
    TTL: int = 0
    error: str = ""


@attrs.frozen
class LeaseRevokeRequest:
    ID: LeaseId = lease_none


@attrs.frozen
class LeaseRevokeResponse:
    header: ResponseHeader = ResponseHeader()


@attrs.frozen
class LeaseKeepAliveRequest:
    ID: LeaseId = lease_none


@attrs.frozen
class LeaseKeepAliveResponse:
    header: ResponseHeader = ResponseHeader()
    ID: LeaseId = lease_none
    TTL: int = 0


@attrs.frozen
class LeaseTimeToLiveRequest:
    ID: LeaseId = lease_none
    keys: bool = False


@attrs.frozen
class LeaseTimeToLiveResponse:
    header: ResponseHeader = ResponseHeader()
    ID: LeaseId = lease_none
    TTL: int = 0
    grantedTTL: int = 0
    keys: tuple[bytes, ...] = ()


@attrs.frozen
class LeaseStatus:
    ID: LeaseId = lease_none


@attrs.frozen
class LeaseLeasesResponse:
    header: ResponseHeader = ResponseHeader()
    leases: tuple[LeaseStatus, ...] = ()


# --- The lessor's table ----------------------------------------------------------------------
@attrs.frozen
class Lease:
    """A granted lease: its TTL, when it expires on the leader's clock, and a checkpointed TTL."""

    id: LeaseId
    ttl_seconds: int
    expiry_seconds: float | None  # None: never (followers, and leaders before promotion)
    remaining_ttl_seconds: int = 0  # checkpointed remaining TTL; 0 means none


@attrs.frozen
class Leases:
    """Every granted lease by id. Functions return a new table; this one is never changed."""

    by_id: Mapping[LeaseId, Lease] = attrs.field(factory=dict)

    def with_lease(self, lease: Lease) -> Leases:
        return Leases({**self.by_id, lease.id: lease})

    def without(self, lease_id: LeaseId) -> Leases:
        return Leases({key: lease for key, lease in self.by_id.items() if key != lease_id})


def lease_ttl_seconds_minimum(
    election_timeout_ms: int = constants.election_timeout_ms,
) -> int:
    """etcd `minLeaseTTL`: 1.5 election timeouts, rounded up to whole seconds."""
    return math.ceil(3 * election_timeout_ms / 2 / 1000)


def grant(
    view: KeyspaceView,
    leases: Leases,
    request: LeaseGrantRequest,
    chosen_id: LeaseId,
    now_seconds: float | None,
) -> tuple[Outcome[LeaseGrantResponse], Leases]:
    """etcd `lessor.Grant`: too large, then already granted; raise a short TTL to the minimum."""
    lease_id = LeaseId(request.ID or chosen_id)
    assert lease_id != lease_none, "the caller draws a non-zero id"
    ttl_requested_seconds = request.TTL
    if ttl_requested_seconds > constants.lease_ttl_seconds_max:
        return Rejected(EtcdError.LEASE_TTL_TOO_LARGE), leases
    if lease_id in leases.by_id:
        return Rejected(EtcdError.LEASE_EXISTS), leases
    ttl_seconds = max(ttl_requested_seconds, lease_ttl_seconds_minimum())
    expiry = None if now_seconds is None else now_seconds + ttl_seconds
    lease = Lease(lease_id, ttl_seconds, expiry)
    header = ResponseHeader(revision=view.current_revision())
    response = LeaseGrantResponse(header=header, ID=lease_id, TTL=ttl_seconds)
    changes_granted = (LeaseRecord(lease_id, ttl_seconds),)
    return Applied(response, Changes(leases_granted=changes_granted)), leases.with_lease(lease)


def revoke(
    view: KeyspaceView, leases: Leases, request: LeaseRevokeRequest
) -> tuple[Outcome[LeaseRevokeResponse], Leases]:
    """etcd `lessor.Revoke`: delete the attached keys in key order at one revision, drop the lease."""
    if request.ID not in leases.by_id:
        return Rejected(EtcdError.LEASE_NOT_FOUND), leases
    overlay = OverlayView(view)
    for key in view.keys_attached(request.ID):
        write_delete_range(overlay, DeleteRangeRequest(key=key))
    changes = attrs.evolve(overlay.changes(), leases_revoked=(request.ID,))
    header = ResponseHeader(revision=overlay.current_revision())
    applied = Applied(LeaseRevokeResponse(header=header), changes, events_for_changes(changes))
    return applied, leases.without(request.ID)


def keep_alive(
    leases: Leases, request: LeaseKeepAliveRequest, now_seconds: float
) -> tuple[LeaseKeepAliveResponse, Leases]:
    """etcd `lessor.Renew`: restart the TTL and answer the granted TTL; TTL 0 if unknown or expired."""
    lease = leases.by_id.get(request.ID)
    if lease is None or (lease.expiry_seconds is not None and lease.expiry_seconds <= now_seconds):
        return LeaseKeepAliveResponse(ID=request.ID, TTL=0), leases
    renewed = attrs.evolve(
        lease, expiry_seconds=now_seconds + lease.ttl_seconds, remaining_ttl_seconds=0
    )
    response = LeaseKeepAliveResponse(ID=request.ID, TTL=lease.ttl_seconds)
    return response, leases.with_lease(renewed)


def time_to_live(
    view: KeyspaceView, leases: Leases, request: LeaseTimeToLiveRequest, now_seconds: float
) -> LeaseTimeToLiveResponse:
    """etcd `v3rpc/lease.go:LeaseTimeToLive`: remaining whole seconds (truncated), or TTL -1 if unknown.

    The keys are listed in key order here; etcd lists them in Go map order (unspecified), so
    compare them as a set."""
    header = ResponseHeader(revision=view.current_revision())
    lease = leases.by_id.get(request.ID)
    if lease is None:
        return LeaseTimeToLiveResponse(header=header, ID=request.ID, TTL=-1)
    if lease.expiry_seconds is None:
        remaining = lease.ttl_seconds
    else:
        remaining = math.trunc(lease.expiry_seconds - now_seconds)
    keys = view.keys_attached(request.ID) if request.keys else ()
    return LeaseTimeToLiveResponse(
        header=header, ID=request.ID, TTL=remaining, grantedTTL=lease.ttl_seconds, keys=keys
    )


def lease_list(view: KeyspaceView, leases: Leases) -> LeaseLeasesResponse:
    """etcd `lessor.Leases`: every granted lease, soonest expiry first (then by id)."""
    ordered = sorted(leases.by_id.values(), key=_expiry_order)
    header = ResponseHeader(revision=view.current_revision())
    return LeaseLeasesResponse(
        header=header, leases=tuple(LeaseStatus(lease.id) for lease in ordered)
    )


def expired_leases(
    leases: Leases,
    now_seconds: float,
    limit: int = constants.lease_revoke_per_pass_max,
) -> tuple[LeaseId, ...]:
    """etcd `lessor.findExpiredLeases`: leases past expiry, soonest first, at most `limit` a pass."""
    expired = [
        lease
        for lease in leases.by_id.values()
        if lease.expiry_seconds is not None and lease.expiry_seconds <= now_seconds
    ]
    return tuple(lease.id for lease in sorted(expired, key=_expiry_order)[:limit])


def promote(leases: Leases, now_seconds: float, extend_seconds: float) -> Leases:
    """etcd `lessor.Promote`: every lease restarts at now + extend + its remaining TTL."""
    promoted = {
        lease_id: attrs.evolve(
            lease,
            expiry_seconds=now_seconds
            + extend_seconds
            + (lease.remaining_ttl_seconds or lease.ttl_seconds),
        )
        for lease_id, lease in leases.by_id.items()
    }
    return Leases(promoted)


def demote(leases: Leases) -> Leases:
    """etcd `lessor.Demote`: a follower never expires a lease."""
    return Leases(
        {key: attrs.evolve(lease, expiry_seconds=None) for key, lease in leases.by_id.items()}
    )


@attrs.frozen
class LeaseCheckpoint:
    ID: LeaseId = lease_none
    remaining_TTL: int = 0


def checkpoint(leases: Leases, checkpoints: tuple[LeaseCheckpoint, ...]) -> Leases:
    """etcd `lessor.Checkpoint` (applied through Raft): remember each lease's remaining TTL, so
    a new leader restarts it from there instead of from the full TTL; unknown ids are ignored."""
    updated = dict(leases.by_id)
    for point in checkpoints:
        lease = updated.get(point.ID)
        if lease is not None:
            updated[point.ID] = attrs.evolve(lease, remaining_ttl_seconds=point.remaining_TTL)
    return Leases(updated)


def recover(view: KeyspaceView) -> Leases:
    """etcd lessor recovery: the persisted leases, with no expiry until this member leads."""
    minimum = lease_ttl_seconds_minimum()
    return Leases(
        {
            record.id: Lease(record.id, max(record.ttl_seconds, minimum), None)
            for record in view.leases()
        }
    )


def _expiry_order(lease: Lease) -> tuple[float, int]:
    return (math.inf if lease.expiry_seconds is None else lease.expiry_seconds, lease.id)
