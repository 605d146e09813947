"""Every limit and default in one place; defaults equal etcd 3.4's unless a line says otherwise.

Relations between constants are asserted at import time, each with the reason, so a change
that breaks one fails at once instead of somewhere downstream (DESIGN.md principle 4).
Sources: etcd `embed/config.go`, `etcdmain/help.go`, `etcdserver/raft.go`, `api/v3rpc`.
"""

from typing import Final

# --- Timing (etcd flags --heartbeat-interval and --election-timeout) -------------------------
heartbeat_interval_ms: Final = 100
election_timeout_ms: Final = 1000
# etcd refuses an election timeout shorter than five heartbeats.
election_timeout_heartbeats_min: Final = 5
# Raft in etcd ticks once per heartbeat interval; these are the tick counts etcd derives.
heartbeat_ticks: Final = 1
election_ticks: Final = election_timeout_ms // heartbeat_interval_ms

# --- Raft flow control (etcdserver/raft.go) --------------------------------------------------
raft_message_size_bytes_max: Final = 1024 * 1024
raft_inflight_messages_max: Final = 512
snapshot_catch_up_entries: Final = 5000

# --- Requests (api/v3rpc) --------------------------------------------------------------------
request_size_bytes_max: Final = 1_572_864  # --max-request-bytes, 1.5 MiB
grpc_overhead_bytes: Final = 512 * 1024  # gRPC receive limit = request max + this
txn_operations_max: Final = 128  # --max-txn-ops
apply_gap_entries_max: Final = 5000  # committed - applied beyond this: "too many requests"

# --- Storage ---------------------------------------------------------------------------------
snapshot_count: Final = 100_000  # --snapshot-count (3.4 and 3.5)
snapshots_kept_max: Final = 5  # --max-snapshots
wal_files_kept_max: Final = 5  # --max-wals
wal_segment_size_bytes: Final = 64 * 1000 * 1000
# A WAL record longer than this is damage, not data (etcd 3.4 maxWALEntrySizeLimit, 10 MiB).
wal_record_bytes_max: Final = 10 * 1024 * 1024
backend_quota_bytes: Final = 2 * 1024**3  # --quota-backend-bytes 0 means this
put_cost_overhead_bytes: Final = 256  # quota cost of a put = this + key + value

# --- Leases ----------------------------------------------------------------------------------
# A granted TTL below 1.5 x election timeout (rounded up to whole seconds) is raised to it.
lease_ttl_seconds_min: Final = -(-(3 * election_timeout_ms) // 2000)

assert election_ticks >= election_timeout_heartbeats_min, "election must span 5 heartbeats"
assert request_size_bytes_max < raft_message_size_bytes_max * 2, "a request fits a Raft message"
assert request_size_bytes_max < wal_record_bytes_max, "the largest proposal fits one WAL record"
assert lease_ttl_seconds_min == 2, "etcd's default minimum TTL with a 1 s election timeout"

# --- MVCC and watch (etcd mvcc/watchable_store.go, v3rpc/watch.go) -------------------------
watch_batch_revisions_max: Final = 1000  # watchBatchMaxRevs: revisions per catch-up response
watch_responses_queued_max: Final = 128  # chanBufLen: responses a stream holds for a slow client
watch_stream_buffer_responses: Final = 128  # chanBufLen: a full buffer makes a watcher a victim
watch_progress_notify_interval_ms: Final = 10 * 60 * 1000  # --experimental-watch-progress-notify-interval
watch_fragment_size_bytes: Final = request_size_bytes_max + grpc_overhead_bytes  # split above this

# --- Leases (etcd lease/lessor.go) ------------------------------------------------------------
lease_ttl_seconds_max: Final = 9_000_000_000  # MaxLeaseTTL: a longer TTL is "too large lease TTL"
lease_revoke_per_second_max: Final = 1000  # defaultLeaseRevokeRate
lease_revoke_per_pass_max: Final = lease_revoke_per_second_max // 2  # runLoop checks twice a second
lease_expiry_check_interval_ms: Final = 500
lease_cost_bytes: Final = 64  # quota cost of a LeaseGrant (etcd leaseOverhead)

assert lease_revoke_per_pass_max * 2 == lease_revoke_per_second_max, "two expiry passes a second"
assert watch_fragment_size_bytes > request_size_bytes_max, "a response may exceed a request"
