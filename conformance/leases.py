"""Check 4, live: the lease guarantees (L-1 .. L-5 in the conformance notes, etcd `api.md`).

Each function runs one small scenario against the server, under the run's key prefix, and
returns the violations it found. Expected error texts and codes come from `spec.errors`.

* `check_grant_and_time_to_live`: a grant answers an id and a TTL no smaller than asked (the
  server may raise it to its minimum, 2 s for etcd's defaults; `minimum_ttl_seconds` checks that
  exactly when known); TimeToLive reports that granted TTL and the attached keys.
* `check_unknown_lease_answers`: TimeToLive of an unknown lease answers TTL -1, keep-alive
  answers TTL 0, revoke fails NotFound "requested lease not found", and a put with it fails
  the same way (wire notes §0.6, L-5).
* `check_keep_alive_extends`: keep-alive answers the granted TTL and restores the remaining time.
* `check_revoke_deletes_keys`: revoking deletes every attached key at one revision, one DELETE
  event each, in key order, and the lease is gone (L-3).
* `check_lease_across_leader_change` (launched clusters): the lease outlives its leader;
* `check_expiry_deletes_keys`: without keep-alives the lease ends, no earlier than its TTL
  after the grant was sent, and its keys go as on revoke (L-3, L-4).
"""

from __future__ import annotations

import contextlib
import time

from conformance.client import EtcdClient, RequestFailed
from conformance.launcher import LaunchedCluster
from conformance.watch.recording import DELETE, Watcher, WatchRecording
from etcdpb.etcdserverpb import rpc_pb2
from spec.errors import EtcdError

UNKNOWN_LEASE_ID = 0x7E7E_0000_0000_0001


def expect_error(failure: RequestFailed, expected: EtcdError, action: str) -> list[str]:
    if failure.details == expected.message and failure.code.value[0] == int(expected.grpc_code):
        return []
    return [
        f"{action}: got {failure.code.name} {failure.details!r}, expected "
        f"{expected.grpc_code.name} {expected.message!r}"
    ]


def check_grant_and_time_to_live(
    client: EtcdClient, prefix: bytes, minimum_ttl_seconds: int | None = None
) -> list[str]:
    violations = []
    granted = client.lease_grant(rpc_pb2.LeaseGrantRequest(TTL=1))
    if granted.ID <= 0:
        violations.append(f"grant answered id {granted.ID}")
    if granted.TTL < 1:
        violations.append(f"grant of TTL 1 answered TTL {granted.TTL}")
    if minimum_ttl_seconds is not None and minimum_ttl_seconds != granted.TTL:
        violations.append(
            f"grant of TTL 1 answered {granted.TTL}, not the minimum {minimum_ttl_seconds}"
        )
    long_lived = client.lease_grant(rpc_pb2.LeaseGrantRequest(TTL=60))
    if long_lived.TTL != 60:
        violations.append(f"grant of TTL 60 answered TTL {long_lived.TTL}")
    key = prefix + b"lease/ttl"
    client.put(rpc_pb2.PutRequest(key=key, value=b"v", lease=long_lived.ID))
    answer = client.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=long_lived.ID, keys=True))
    if answer.grantedTTL != 60 or not 0 < answer.TTL <= 60:
        violations.append(f"time-to-live answered TTL {answer.TTL}, granted {answer.grantedTTL}")
    if list(answer.keys) != [key]:
        violations.append(f"time-to-live listed keys {list(answer.keys)}, expected [{key!r}]")
    listed = {status.ID for status in client.lease_leases().leases}
    if long_lived.ID not in listed:
        violations.append("LeaseLeases does not list a granted lease")
    for lease in (granted.ID, long_lived.ID):
        client.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=lease))
    return violations


def check_unknown_lease_answers(client: EtcdClient, prefix: bytes) -> list[str]:
    violations = []
    answer = client.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=UNKNOWN_LEASE_ID))
    if answer.TTL != -1:
        violations.append(f"time-to-live of an unknown lease answered TTL {answer.TTL}, not -1")
    kept = client.lease_keep_alive_once(UNKNOWN_LEASE_ID)
    if kept.TTL != 0:
        violations.append(f"keep-alive of an unknown lease answered TTL {kept.TTL}, not 0")
    try:
        client.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=UNKNOWN_LEASE_ID))
        violations.append("revoking an unknown lease succeeded")
    except RequestFailed as failure:
        violations += expect_error(failure, EtcdError.LEASE_NOT_FOUND, "revoke of unknown lease")
    try:
        client.put(
            rpc_pb2.PutRequest(key=prefix + b"lease/unknown", value=b"v", lease=UNKNOWN_LEASE_ID)
        )
        violations.append("a put with an unknown lease succeeded")
    except RequestFailed as failure:
        violations += expect_error(failure, EtcdError.LEASE_NOT_FOUND, "put with unknown lease")
    return violations


def check_keep_alive_extends(client: EtcdClient) -> list[str]:
    violations = []
    granted = client.lease_grant(rpc_pb2.LeaseGrantRequest(TTL=5))
    time.sleep(1.5)
    before = client.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=granted.ID))
    kept = client.lease_keep_alive_once(granted.ID)
    after = client.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=granted.ID))
    if kept.TTL != granted.TTL:
        violations.append(f"keep-alive answered TTL {kept.TTL}, not the granted {granted.TTL}")
    if before.TTL > granted.TTL - 1:
        violations.append(f"remaining TTL {before.TTL} did not fall after 1.5 s of {granted.TTL}")
    if after.TTL < granted.TTL - 1:
        violations.append(f"remaining TTL after keep-alive is {after.TTL}, granted {granted.TTL}")
    client.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=granted.ID))
    return violations


def attached_keys_scenario(
    client: EtcdClient, prefix: bytes, name: bytes, ttl_seconds: int
) -> tuple[int, list[bytes], Watcher, int]:
    """Grant a lease, attach three keys, and watch them; returns (lease, keys, watcher, grant
    invocation time)."""
    keys = [prefix + b"lease/" + name + b"/" + suffix for suffix in (b"c", b"a", b"b")]
    range_start = prefix + b"lease/" + name + b"/"
    watcher = Watcher(
        client, WatchRecording(name.decode(), range_start, range_start[:-1] + b"0", 0)
    )
    watcher.wait_until(lambda recording: bool(recording.responses), 5.0)
    grant_call_ns = time.monotonic_ns()
    lease = client.lease_grant(rpc_pb2.LeaseGrantRequest(TTL=ttl_seconds)).ID
    for key in keys:
        client.put(rpc_pb2.PutRequest(key=key, value=b"v", lease=lease))
    return lease, sorted(keys), watcher, grant_call_ns


def deletion_violations(watcher: Watcher, keys: list[bytes], action: str) -> list[str]:
    deletes = [event for event in watcher.recording.events() if event.type == DELETE]
    if sorted(event.key for event in deletes) != keys:
        return [
            f"{action}: delete events for {[e.key for e in deletes]}, expected one each for {keys}"
        ]
    violations = []
    if len({event.revision for event in deletes}) != 1:
        violations.append(f"{action}: keys deleted at revisions {[e.revision for e in deletes]}")
    if [event.key for event in deletes] != keys:
        violations.append(
            f"{action}: keys deleted in order {[e.key for e in deletes]}, not key order"
        )
    responses = [
        response
        for response in watcher.recording.responses
        if any(e.type == DELETE for e in response.events)
    ]
    if len(responses) != 1:
        violations.append(f"{action}: delete events split over {len(responses)} responses")
    return violations


def check_revoke_deletes_keys(client: EtcdClient, prefix: bytes) -> list[str]:
    lease, keys, watcher, _ = attached_keys_scenario(client, prefix, b"revoke", 60)
    try:
        client.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=lease))
        watcher.wait_until(
            lambda recording: sum(e.type == DELETE for e in recording.events()) >= 3, 5.0
        )
        watcher.drain(0.2)
    finally:
        watcher.close()
    violations = deletion_violations(watcher, keys, "revoke")
    remaining = client.range(rpc_pb2.RangeRequest(key=keys[0], range_end=keys[-1] + b"\x00"))
    if remaining.count:
        violations.append(f"revoke left {remaining.count} attached keys")
    if client.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=lease)).TTL != -1:
        violations.append("revoked lease still has a time to live")
    return violations


def check_expiry_deletes_keys(
    client: EtcdClient, prefix: bytes, wait_seconds_max: float = 15.0
) -> list[str]:
    lease, keys, watcher, grant_call_ns = attached_keys_scenario(client, prefix, b"expiry", 2)
    granted_ttl = client.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=lease)).grantedTTL
    try:
        watcher.wait_until(
            lambda recording: sum(e.type == DELETE for e in recording.events()) >= 3,
            wait_seconds_max,
        )
        watcher.drain(0.2)
    finally:
        watcher.close()
    violations = deletion_violations(watcher, keys, "expiry")
    deleted_at = [
        response.received_ns
        for response in watcher.recording.responses
        if any(event.type == DELETE for event in response.events)
    ]
    if deleted_at and deleted_at[0] - grant_call_ns < granted_ttl * 1_000_000_000:
        violations.append(
            f"lease with TTL {granted_ttl} s expired {(deleted_at[0] - grant_call_ns) / 1e9:.2f} s "
            "after the grant was sent"
        )
    if client.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=lease)).TTL != -1:
        violations.append("expired lease still has a time to live")
    return violations


def check_lease_across_leader_change(cluster: LaunchedCluster, prefix: bytes) -> list[str]:
    """L-4 across a leader change (launched clusters of 3 or more): a lease survives the loss
    of the leader that granted it, is not expired early by the new leader (etcd restarts the
    TTL on promotion), keeps being renewable, and its key stays until it is revoked.
    A request that fails after the kill is a violation (etcd answers each within its deadline:
    a follower waits for the new leader); the lease is revoked in any case, so that it cannot
    expire during a later check and write a revision that check does not expect."""
    violations = []
    leader = cluster.leader_index()
    if leader is None or len(cluster.members) < 3:
        return ["no leader found" if leader is None else "needs three members"]
    survivor = cluster.members[(leader + 1) % len(cluster.members)].endpoint
    with EtcdClient(survivor, timeout_seconds=5.0) as client:
        granted = client.lease_grant(rpc_pb2.LeaseGrantRequest(TTL=4))
        key = prefix + b"lease/leader-change"
        client.put(rpc_pb2.PutRequest(key=key, value=b"v", lease=granted.ID))
        cluster.kill(leader)
        revoked = False
        try:
            cluster.wait_until_ready(
                20.0, [member for index, member in enumerate(cluster.members) if index != leader]
            )
            answer = client.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=granted.ID), 10)
            if answer.TTL <= 0:
                violations.append(f"lease lost with the leader (TTL {answer.TTL})")
            kept = client.lease_keep_alive_once(granted.ID, 10)
            if kept.TTL != granted.TTL:
                violations.append(f"keep-alive through the new leader answered TTL {kept.TTL}")
            if not client.range(rpc_pb2.RangeRequest(key=key), 10).kvs:
                violations.append("the leased key vanished after the leader change")
            client.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=granted.ID), 10)
            revoked = True
            if client.range(rpc_pb2.RangeRequest(key=key), 10).kvs:
                violations.append("the leased key survived the revoke")
        except RequestFailed as failure:
            violations.append(
                f"after the leader was killed, {failure.method} through a surviving member "
                f"failed: {failure.code.name}: {' '.join(failure.details.split())[:240]}"
            )
        finally:
            cluster.restart(leader)
            if not revoked:
                with contextlib.suppress(RequestFailed):
                    client.lease_revoke(rpc_pb2.LeaseRevokeRequest(ID=granted.ID), 10)
    return violations
