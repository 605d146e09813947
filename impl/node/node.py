"""One etcd member: spec.raft driven by a clock, the WAL, the LMDB keyspace and the peers.

Everything that touches Raft state or the keyspace runs on one thread, the *raft loop*. Other
threads (the ticker, peer readers, gRPC handlers) only put inputs on its queue and wait on
futures. Each turn of the loop:

1. takes every input waiting (up to a bound) and steps the spec once per input, merging the
   outputs: proposals that arrived together become one append, and one fsync (group commit);
2. carries out the merged output in spec.raft.io's order: messages that need not wait are sent;
   snapshot, entries and hard state are saved to the WAL (one write, one fdatasync); then the
   other messages are sent; committed entries are applied to the keyspace, each at most once
   (an entry at or below the keyspace's consistent index was applied before a restart); the
   keyspace's batch, with that index, is committed every 100 ms as etcd's backend does;
3. reports `StorageAcknowledged` and `Applied` back to the spec, carrying out what follows.

Protocol decisions (who leads, what commits, when a read is safe) are the spec's alone.

Membership: a member change is checked against etcd's rules (impl.node.membership) on the
leader's raft loop and proposed as a configuration entry whose context carries the member;
the spec changes Raft's membership when the entry commits, and the node, applying it, changes
the member table (stored in the keyspace), the transport's peers and what MemberList answers.

Snapshots: when the spec sends one, the leader streams a consistent copy of its keyspace with
it (impl.transport); the follower keeps the verified file as `member/snap/<index>.snap.db`,
steps the message, and if the spec installs the snapshot records it (snap file, WAL record)
and swaps the keyspace in; a restart between the two finishes the swap.

Start: the peer port is bound before the data directory is touched; an existing directory must
be the flags' member's (WAL metadata, stored member records), else `NodeError` and no change.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Final

import attrs

from impl.api.alarm import AlarmAction, AlarmRequest, Alarms, AlarmType, BackendQuota
from impl.api.convert import (
    ReplicatedRequest,
    internal_request_in,
    internal_request_out,
    member_attributes_in,
    publish_request_out,
)
from impl.backend.keyspace import BackendError, LmdbKeyspace, read_host_records
from impl.collector import collector_paused
from impl.node.config import NodeConfig, host_port
from impl.node.membership import (
    ClusterInfo,
    Member,
    MemberRequest,
    MembershipChanged,
    MemberTable,
    added_member_id,
    apply_change,
    change_in,
    change_out,
    check_add,
    check_promote,
    check_remove,
    check_update,
    update_in,
    update_out,
    validate_change,
)
from impl.snap import ConfState, RaftSnapshot, Snapshotter, persist_snapshot, snapshot_due
from impl.transport.codec import MESSAGE_CLASSES
from impl.transport.peer import PeerTransport, fetch_cluster_info, frame_bytes_max_for
from impl.wal import Entry as WalEntry
from impl.wal import (
    EntryType,
    SnapshotPoint,
    Wal,
    WalError,
    WalMetadata,
    read_wal,
    valid_snapshot_points,
)
from impl.wal import HardState as WalHardState
from spec import constants, lease, watch
from spec.errors import EtcdError
from spec.mvcc import (
    Applied as MvccApplied,
)
from spec.mvcc import (
    Event,
    RangeRequest,
    apply_request,
    range_keys,
)
from spec.mvcc import (
    Rejected as MvccRejected,
)
from spec.raft.io import (
    NOTHING,
    Applied,
    CompactLog,
    Input,
    Output,
    Propose,
    ProposeBatch,
    ProposeConfigurationChange,
    Receive,
    RefusalReason,
    RequestRead,
    StorageAcknowledged,
    Tick,
    TransferLeadership,
)
from spec.raft.log import Log, Snapshot
from spec.raft.messages import Message, SnapshotRequest
from spec.raft.state import NodeState, PersistedState, initial_state, restart
from spec.raft.step import step
from spec.raft.types import (
    ChangeAction,
    ConfigurationChange,
    Entry,
    EntryKind,
    HardState,
    LogIndex,
    Membership,
    NodeId,
    Role,
    Settings,
    Term,
)

INPUTS_PER_TURN_MAX: Final = 1024
FOLLOW_UP_STEPS_MAX: Final = 16
READ_RETRY_TURNS_MAX: Final = 100
# Inputs waiting for the raft loop beyond which new proposals are refused ("too many requests").
QUEUED_INPUTS_MAX: Final = 20_000
# A member change the spec refused for now (one pending, no commit in this term yet) is tried
# again each tick, up to this many times (about 5 s at the default heartbeat).
CHANGE_RETRY_TICKS_MAX: Final = 50
# The spec's in-memory log is compacted (CompactLog, no snapshot file) once it holds this many
# entries more than the node needs: entries every follower has (or, on a follower, all but this
# many applied ones), yet never more than --experimental-snapshot-catchup-entries behind applied.
# Short logs keep the spec's per-step work (log copies on append, membership_at) small.
LOG_ENTRIES_IN_MEMORY_SLACK: Final = 256
# After a snapshot reached a follower, the same follower gets no other for this long (the spec
# asks again on each heartbeat answer until the follower reports it installed).
SNAPSHOT_RESEND_PAUSE_SECONDS: Final = 3.0
# A member that applied its own removal stops this long after (etcd stopWithDelay), so the
# commit of its removal can still reach the others.
REMOVED_STOP_DELAY_SECONDS: Final = 1.0
# Election timeouts without a leader after which a member asks its peers whether it was removed.
REMOVAL_CHECK_ELECTIONS: Final = 3
# How long a joining member keeps asking the members in --initial-cluster for the cluster.
JOIN_TIMEOUT_SECONDS: Final = 10.0
_RECORD_CLUSTER: Final = b"cluster"
_RECORD_MEMBERS: Final = b"members"
_RECORD_ALARMS: Final = b"alarms"  # the active alarms (impl.api.alarm), as etcd's alarm bucket

log = logging.getLogger("etcdref.node")

# What a request's future resolves to: the spec's response, or one of etcd's errors.
Result = object


class NodeError(Exception):
    """The node cannot start from its data directory or flags; the message says why."""


@attrs.define
class _PendingRead:
    context: bytes
    request: RangeRequest
    future: Future[Result]
    retries: int = 0


WATCH_CATCH_UP_ROUNDS_MAX: Final = 10_000
KEYSPACE_COMMIT_INTERVAL_SECONDS: Final = 0.1  # etcd --backend-batch-interval
KEYSPACE_COMMIT_ENTRIES_MAX: Final = 10_000  # etcd --backend-batch-limit


@attrs.define
class WatchStream:
    """One client's watch stream: its watchers and the responses waiting to be sent."""

    stream_id: int
    watchers: dict[int, watch.Watcher] = attrs.field(factory=dict)
    ids: watch.WatchIds = attrs.field(factory=watch.WatchIds)
    responses: queue.Queue[watch.WatchResponse] = attrs.field(factory=queue.Queue)
    # Watch ids whose creation asked for fragments: read by the sending thread, which splits
    # big responses for them (etcd v3rpc sendFragments); set before any response is queued.
    fragmenting: set[int] = attrs.field(factory=set)

    @property
    def is_full(self) -> bool:
        """The client has not taken `watch_responses_queued_max` responses: its watchers fall
        behind and catch up from history later (spec.watch rule 7), so the queue stays bounded."""
        return self.responses.qsize() >= constants.watch_responses_queued_max


class Node:
    """A running member. `start()` opens the data directory and starts the threads; `stop()` ends them."""

    def __init__(self, config: NodeConfig) -> None:
        config.check()
        self.config = config
        self.member_id = config.member_id
        self.cluster_id = config.cluster_id
        # etcd's member table (names, URLs, learners): replaced whole, so other threads read it freely.
        self.member_table = MemberTable(
            Member(member.member_id, member.name, member.peer_urls) for member in config.members()
        )
        # The voters the cluster was bootstrapped with: every member's log starts from them.
        self.bootstrap_voters = frozenset(member.member_id for member in config.members())
        self.removed = False  # this member applied its own removal
        self.cluster_id_recorded: int | None = None
        self._started = False
        self._change_requests: dict[int, tuple[MemberRequest, int]] = {}  # id -> (request, tries)
        self._changes_to_retry: list[int] = []
        self._snapshot_streams: dict[
            int, float
        ] = {}  # peer -> busy until (monotonic; inf: sending)
        self._received_snapshots: dict[int, Path] = {}  # raft snapshot index -> keyspace file
        self.member_dir = config.data_dir / "member"
        self.wal_dir = self.member_dir / "wal"
        self.snap_dir = self.member_dir / "snap"
        self.settings = Settings(
            election_ticks=config.election_timeout_ms // config.heartbeat_interval_ms,
            heartbeat_ticks=1,
            pre_vote=config.pre_vote,
            check_quorum=True,
        )
        # SimpleQueue: its put and get are C calls (queue.Queue's cost 1.6 us a pair in Python)
        self._inputs: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._waiting_writes: dict[int, Future[Result]] = {}
        self._reads_by_context: dict[bytes, _PendingRead] = {}
        self._reads_ready: list[tuple[int, _PendingRead]] = []
        self._reads_to_retry: list[_PendingRead] = []
        self._request_ids = itertools.count(
            (self.member_id & 0xFFFF) << 48 | (int(time.time() * 1000) & 0xFFFFFFFF) << 8
        )
        self._read_contexts = itertools.count(1)
        self._lock = threading.Lock()
        self.state: NodeState
        self.wal: Wal
        self.keyspace: LmdbKeyspace
        self.snapshotter: Snapshotter
        self._snapshot_index = 0  # index of the newest snapshot persisted (snap file + WAL record)
        self.transport: PeerTransport | None = None
        # Figures the API reads without the raft loop (plain ints: atomic to read).
        self.term = 0
        self.leader: int | None = None
        self.commit_index = 0
        self.applied_index = 0
        self.keyspace_commit_observer: Callable[[float], None] | None = None  # set by metrics
        self._tick_queued = False  # set by the ticker, cleared by the raft loop
        self._keyspace_committed_at = time.monotonic()
        self.is_leader = False
        self.leader_changes_seen = 0  # etcd_server_leader_changes_seen_total
        self.alarms = Alarms()  # NOSPACE / CORRUPT, applied through Raft (impl.api.alarm)
        self.quota = BackendQuota(config.quota_backend_bytes)
        self.on_stopped: Callable[[], None] | None = None
        # Client URLs each member published through Raft (etcd's member attributes).
        self.client_urls: dict[int, list[str]] = {}
        self.leases = lease.Leases()
        self._revoking: dict[int, int] = {}  # lease id -> ticks left before proposing again
        self.watch_streams: dict[int, WatchStream] = {}  # touched only on the raft loop
        self._watch_stream_ids = itertools.count(1)
        self._published = False
        # Set once this member's own attributes (name, client URLs) applied in this run: the
        # client port serves nothing before (etcd serves clients only after ReadyNotify, which
        # publish closes), so no client sees a member table that lacks this member's URLs.
        self.ready = threading.Event()
        self._ticks_until_publish = 0
        self._leaderless_ticks = 0
        self._asking_whether_removed = threading.Event()

    # --- starting and stopping --------------------------------------------------------------

    @property
    def members(self) -> tuple[Member, ...]:
        return self.member_table.members

    @property
    def is_learner(self) -> bool:
        """Whether this member is a learner (it then serves only what etcd serves learners)."""
        member = self.member_table.get(self.member_id)
        return member is not None and member.is_learner

    def start(self) -> None:
        """Listen for peers first (a port in use is refused before the data directory is touched),
        then open or create the data directory, then connect to the other members."""
        listen = host_port(self.config.listen_peer_urls[0])
        try:
            self.transport = PeerTransport(
                listen, {}, self._receive_message, self._receive_proposal,
                snapshot_directory=self.snap_dir, on_snapshot=self._receive_snapshot,
                cluster_info=self.cluster_info,
                cluster_id=lambda: self.cluster_id if self._started else None,
                frame_bytes_max=frame_bytes_max_for(
                    self.config.max_request_bytes, self.settings.entries_per_message_max
                ),
            )  # fmt: skip
        except OSError as error:
            raise NodeError(
                f"cannot listen for peers on {self.config.listen_peer_urls[0]}: {error}"
            ) from None
        try:
            self._open_storage()
        except BaseException:
            self.transport.close()
            raise
        self._started = True  # the cluster id is known: hellos carry it, joiners are answered
        self._connect_peers()
        self._publish()
        log.info(
            "member %x of cluster %x starting: term %d, commit %d, applied %d, %d log entries",
            self.member_id, self.cluster_id, self.state.term, self.state.commit_index,
            self.keyspace.consistent_index(), len(self.state.log.entries),
        )  # fmt: skip
        for target, name in ((self._run_loop, "raft-loop"), (self._run_ticker, "ticker")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _open_storage(self) -> None:
        wal_exists = self.wal_dir.is_dir() and any(self.wal_dir.glob("*.wal"))
        if wal_exists:
            self._open_existing()
        else:
            if self.config.initial_cluster_state == "existing":
                self._take_cluster_from_peers()
            self._create()
        self.leases = lease.recover(self.keyspace)
        self._load_alarms()

    def _create(self) -> None:
        """A new member: the keyspace with the cluster's records first, then the WAL (whose
        existence marks the directory as this member's)."""
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self.snapshotter = Snapshotter(self.snap_dir)
        self.keyspace = self._open_keyspace()
        self._save_cluster_records()
        self.keyspace.commit()
        self.wal = Wal.create(self.wal_dir, WalMetadata(self.member_id, self.cluster_id))
        membership = Membership(frozenset(NodeId(voter) for voter in self.bootstrap_voters))
        seed = int.from_bytes(os.urandom(8), "big")
        self.state = initial_state(NodeId(self.member_id), membership, self.settings, seed)

    def _take_cluster_from_peers(self) -> None:
        """--initial-cluster-state existing: ask the other members listed in --initial-cluster for
        the cluster (etcd GetClusterFromRemotePeers) and take this member's id from it."""
        ours = sorted(self.config.initial_advertise_peer_urls)
        urls = [
            url
            for urls in self.config.initial_cluster.values()
            if sorted(urls) != ours
            for url in urls
        ]
        deadline = time.monotonic() + JOIN_TIMEOUT_SECONDS
        info: ClusterInfo | None = None
        while info is None and time.monotonic() < deadline:
            for url in urls:
                answer = fetch_cluster_info(host_port(url))
                if answer is None:
                    continue
                try:
                    info = ClusterInfo.decode(answer)
                    break
                except ValueError as error:
                    log.warning("%s answered with malformed cluster information: %s", url, error)
            if info is None:
                time.sleep(0.5)
        if info is None:
            raise NodeError(
                "--initial-cluster-state existing: no member in --initial-cluster "
                f"({', '.join(urls) or 'none but this one'}) answered with the cluster's members"
            )
        matching = [member for member in info.table.members if sorted(member.peer_urls) == ours]
        if not matching:
            raise NodeError(
                f"--initial-advertise-peer-urls {','.join(ours)} is not a member of cluster "
                f"{info.cluster_id:x}; add it first: etcdctl member add {self.config.name} "
                f"--peer-urls={','.join(ours)}"
            )
        self.member_id = matching[0].member_id
        self.cluster_id = info.cluster_id
        self.member_table = info.table
        self.bootstrap_voters = info.bootstrap_voters
        log.info(
            "joining cluster %x as member %x (%d members)",
            self.cluster_id, self.member_id, len(info.table.members),
        )  # fmt: skip

    def _open_existing(self) -> None:
        """Restart from the data directory, after checking it belongs to the member the flags describe."""
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self.snapshotter = Snapshotter(self.snap_dir)
        raft_snapshot = self.snapshotter.load_newest_available(valid_snapshot_points(self.wal_dir))
        point = SnapshotPoint()
        if raft_snapshot is not None:
            point = SnapshotPoint(raft_snapshot.index, raft_snapshot.term)
            self._snapshot_index = raft_snapshot.index
        try:  # read only: nothing is repaired before the directory is known to be ours
            metadata = read_wal(self.wal_dir, point).contents.metadata
        except WalError as error:
            raise NodeError(f"{self.wal_dir}: cannot read the WAL: {error}") from None
        if metadata is None:
            raise NodeError(f"{self.wal_dir}: the WAL has no metadata record")
        try:
            records = read_host_records(self.snap_dir / "db", [_RECORD_CLUSTER, _RECORD_MEMBERS])
        except BackendError as error:
            raise NodeError(str(error)) from None
        self._load_cluster_records(records[_RECORD_CLUSTER], records[_RECORD_MEMBERS])
        self._check_identity(metadata.node_id, metadata.cluster_id)
        self.keyspace = self._open_keyspace()
        self.member_id, self.cluster_id = metadata.node_id, metadata.cluster_id
        membership = Membership(frozenset(NodeId(voter) for voter in self.bootstrap_voters))
        snapshot = Snapshot(LogIndex(0), Term(0), membership)
        if raft_snapshot is not None:
            voters = frozenset(NodeId(voter) for voter in raft_snapshot.conf_state.voters)
            learners = frozenset(NodeId(learner) for learner in raft_snapshot.conf_state.learners)
            snapshot = Snapshot(
                LogIndex(raft_snapshot.index), Term(raft_snapshot.term),
                Membership(voters or membership.voters, learners), raft_snapshot.data,
            )  # fmt: skip
        self.wal, contents = Wal.open(self.wal_dir, point)
        entries = tuple(
            Entry(
                Term(entry.term),
                LogIndex(entry.index),
                EntryKind.CONFIGURATION
                if entry.entry_type != EntryType.NORMAL
                else EntryKind.NORMAL,
                entry.data,
            )
            for entry in contents.entries
        )
        stored = contents.hard_state
        hard_state = HardState(
            Term(stored.term), NodeId(stored.vote) if stored.vote else None, LogIndex(stored.commit)
        )
        persisted = PersistedState(hard_state, Log(snapshot, entries))
        seed = int.from_bytes(os.urandom(8), "big")
        self.state = restart(NodeId(self.member_id), persisted, self.settings, seed)
        if snapshot.index > self.keyspace.consistent_index():
            # Stopped after recording a received snapshot but before its keyspace replaced ours.
            received = self.snap_dir / f"{snapshot.index:016x}.snap.db"
            if not received.is_file():
                self._close_storage()
                raise NodeError(
                    f"the keyspace (applied through index {self.keyspace.consistent_index()}) is "
                    f"behind the snapshot at index {snapshot.index}, and {received} is missing"
                )
            log.info("finishing the install of the snapshot at index %d", snapshot.index)
            self._replace_keyspace(received)
        # Left by a stop in the middle of sending or receiving a snapshot (etcd removes its
        # db.tmp* files at start the same way); the directory is known to be ours by now.
        for pattern in ("outgoing-*.db", "incoming-*.part", "*.snap.db"):
            for leftover in self.snap_dir.glob(pattern):
                leftover.unlink(missing_ok=True)

    def _check_identity(self, wal_member_id: int, wal_cluster_id: int) -> None:
        """Refuse a data directory written by another member or another cluster (before anything
        in it is changed): the WAL names its member and cluster; the flags must describe them."""
        data_dir = self.config.data_dir
        ours = sorted(self.config.initial_advertise_peer_urls)
        recorded = self.member_table.get(wal_member_id)
        written_by = (
            f"{data_dir} was written by member {wal_member_id:x} of cluster {wal_cluster_id:x}"
        )
        if wal_member_id in self.member_table.removed:
            raise NodeError(f"{written_by}, which was removed from the cluster; it cannot rejoin")
        same_member = self.config.member_id == wal_member_id or (
            recorded is not None and sorted(recorded.peer_urls) == ours
        )
        if not same_member:
            raise NodeError(
                f"{written_by}, but these flags describe member {self.config.member_id:x} "
                f"(--initial-advertise-peer-urls {','.join(ours)}, --initial-cluster-token "
                f"{self.config.initial_cluster_token}); refusing to start, nothing was changed"
            )
        bootstrapped_here = wal_member_id in self.bootstrap_voters
        if self.cluster_id_recorded not in (None, wal_cluster_id):
            raise NodeError(
                f"{written_by}, but its keyspace belongs to cluster {self.cluster_id_recorded:x}"
            )
        if (
            self.config.initial_cluster_state == "new"
            and bootstrapped_here
            and self.config.cluster_id != wal_cluster_id
        ):
            raise NodeError(
                f"{written_by}, but these flags describe cluster {self.config.cluster_id:x} "
                f"(--initial-cluster {_initial_cluster_text(self.config.initial_cluster)}, "
                f"--initial-cluster-token {self.config.initial_cluster_token}); refusing to "
                "start, nothing was changed"
            )

    def _save_cluster_records(self) -> None:
        record = {"cluster_id": self.cluster_id, "bootstrap_voters": sorted(self.bootstrap_voters)}
        self.keyspace.put_host_record(_RECORD_CLUSTER, json.dumps(record).encode())
        self.keyspace.put_host_record(_RECORD_MEMBERS, self.member_table.encode())
        self.cluster_id_recorded = self.cluster_id

    def _load_cluster_records(self, cluster: bytes | None, members: bytes | None) -> None:
        """The member table and bootstrap voters as the keyspace records them (a keyspace written
        before they were recorded keeps the ones the flags give)."""
        self.cluster_id_recorded = None
        try:
            if cluster is not None:
                record = json.loads(cluster)
                self.cluster_id_recorded = int(record["cluster_id"])
                self.bootstrap_voters = frozenset(
                    int(voter) for voter in record["bootstrap_voters"]
                )
            if members is not None:
                self.member_table = MemberTable.decode(members)
        except (ValueError, KeyError, TypeError) as error:
            raise NodeError(f"{self.snap_dir / 'db'}: damaged member records: {error}") from None
        self.client_urls = {
            member.member_id: list(member.client_urls)
            for member in self.member_table.members
            if member.client_urls
        }

    def _replace_keyspace(self, received: Path) -> None:
        """Swap in a keyspace file received from the leader (etcd openSnapshotBackend)."""
        self.keyspace.close()
        os.replace(received, self.snap_dir / "db")
        directory = os.open(self.snap_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self.keyspace = self._open_keyspace()
        self._load_cluster_records(
            self.keyspace.host_record(_RECORD_CLUSTER), self.keyspace.host_record(_RECORD_MEMBERS)
        )
        self.leases = lease.recover(self.keyspace)
        self._load_alarms()  # the leader's alarms come with its keyspace (etcd restoreAlarms)

    def _connect_peers(self) -> None:
        """Send to every other member at its first peer URL; forget members that left."""
        if self.transport is None:
            return
        wanted = {
            member.member_id: host_port(member.peer_urls[0])
            for member in self.member_table.members
            if member.member_id != self.member_id and member.peer_urls
        }
        for peer_id, address in wanted.items():
            self.transport.set_peer(peer_id, address)
        for peer_id in set(self.transport.peers()) - set(wanted):
            self.transport.remove_peer(peer_id)

    def cluster_info(self) -> bytes | None:
        """What this member tells one that joins (None until it has started)."""
        if not self._started:
            return None
        return ClusterInfo(self.cluster_id, self.member_table, self.bootstrap_voters).encode()

    def stop(self) -> None:
        self._stopping.set()
        self._inputs.put(("wake", None))
        for thread in self._threads:
            thread.join(timeout=5)
        if self.transport is not None:
            self.transport.close()
        self._close_storage()

    def _close_storage(self) -> None:
        for close in (self.wal.close, self.keyspace.close):
            try:
                close()
            except Exception as error:
                log.warning("while closing: %s", error)

    # --- requests from other threads ----------------------------------------------------------

    def next_request_id(self) -> int:
        with self._lock:
            return next(self._request_ids)

    def call(self, function: Callable[[], Result]) -> Future[Result]:
        """Run `function` on the raft loop (where the keyspace and leases live); its result resolves the future."""
        future: Future[Result] = Future()
        self._inputs.put(("call", (function, future)))
        return future

    def propose(self, request: ReplicatedRequest) -> Future[Result]:
        """Propose a write; the future resolves to its response, or an EtcdError."""
        future: Future[Result] = Future()
        request_id = self.next_request_id()
        data = internal_request_out(request_id, request)
        if len(data) > self.config.max_request_bytes:
            future.set_result(EtcdError.REQUEST_TOO_LARGE)
            return future
        behind = self.commit_index - self.applied_index > constants.apply_gap_entries_max
        if behind or self._inputs.qsize() >= QUEUED_INPUTS_MAX:
            future.set_result(EtcdError.TOO_MANY_REQUESTS)  # etcd's limit on the apply backlog
            return future
        with self._lock:
            self._waiting_writes[request_id] = future
        future.add_done_callback(lambda _: self._forget_write(request_id))
        self._inputs.put(("propose", data))
        return future

    def transfer_leadership(self, target: int) -> Future[Result]:
        """Start handing leadership to member `target` (etcd MoveLeader) through spec.raft's
        TransferLeadership input, on the raft loop. Resolves to None once the transfer has
        started (the caller waits for `leader` to become `target`), or to `etcdserver: not
        leader` / `etcdserver: bad leader transferee` when the spec refuses it."""

        def start() -> Result:
            output = self._step(TransferLeadership(NodeId(target)))
            self._carry_out(output)
            for refusal in output.refusals:
                if refusal.reason is RefusalReason.NOT_LEADER:
                    return EtcdError.NOT_LEADER
                return EtcdError.BAD_LEADER_TRANSFEREE
            return None

        return self.call(start)

    def change_membership(self, request: MemberRequest) -> Future[Result]:
        """Add, remove, promote or update a member (the leader only: the Cluster service forwards
        from followers). Resolves to `MembershipChanged` once the change is applied here, or to
        one of etcd's errors."""
        future: Future[Result] = Future()
        request_id = self.next_request_id()
        with self._lock:
            self._waiting_writes[request_id] = future
        future.add_done_callback(lambda _: self._forget_write(request_id))
        self._inputs.put(("change", (request_id, request)))
        return future

    def _forget_write(self, request_id: int) -> None:
        with self._lock:
            self._waiting_writes.pop(request_id, None)

    def read(self, request: RangeRequest) -> Future[Result]:
        """A Range: serializable ones from the local keyspace, others after a ReadIndex round."""
        future: Future[Result] = Future()
        kind = "local-read" if request.serializable else "read"
        self._inputs.put((kind, _PendingRead(b"", request, future)))
        return future

    def _receive_message(self, message: Message) -> None:
        # A removed member that missed its removal (it was down) may still campaign: it is not
        # heard (etcd's peers answer it 410 Gone).
        if message.recipient == self.member_id and message.sender not in self.member_table.removed:
            self._inputs.put(("message", message))

    def _receive_proposal(self, data: bytes) -> None:
        self._inputs.put(("forwarded", data))

    def _receive_snapshot(self, message: SnapshotRequest, path: Path) -> None:
        """A verified keyspace file came with a snapshot message (transport thread): keep it under
        etcd's name for a received snapshot database, and let the raft loop step the message."""
        target = self.snap_dir / f"{message.snapshot.index:016x}.snap.db"
        os.replace(path, target)
        self._inputs.put(("snapshot", (message, target)))

    # --- the ticker -----------------------------------------------------------------------------

    def _run_ticker(self) -> None:
        interval = self.config.heartbeat_interval_ms / 1000
        next_tick = time.monotonic() + interval
        while not self._stopping.is_set():
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stopping.wait(delay)
            next_tick = max(next_tick + interval, time.monotonic())
            # A tick waiting in the queue is not joined by another (Go's time.Ticker drops ticks
            # for a slow receiver, and etcd's raft loop reads one): a raft loop held up by a long
            # apply must not then step a burst of ticks, which would run out election and
            # check-quorum timers before it reads the messages queued meanwhile.
            if not self._tick_queued:
                self._tick_queued = True
                self._inputs.put(("tick", None))

    # --- the raft loop --------------------------------------------------------------------------

    def _run_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    first = self._inputs.get(timeout=0.5)
                except queue.Empty:
                    continue
                batch = [first]
                while len(batch) < INPUTS_PER_TURN_MAX:
                    try:
                        batch.append(self._inputs.get_nowait())
                    except queue.Empty:
                        break
                self._turn(batch)
        except Exception:
            log.exception("raft loop failed; stopping this member")
            self._stopping.set()
            if self.on_stopped is not None:
                self.on_stopped()

    def _turn(self, batch: list[tuple[str, object]]) -> None:
        output = NOTHING
        local_reads: list[_PendingRead] = []
        proposals: list[bytes] = []  # consecutive proposals, stepped as one ProposeBatch
        for kind, payload in batch:
            event: Input | None = None
            if kind in ("propose", "forwarded"):
                assert isinstance(payload, bytes)
                proposals.append(payload)
                continue
            if proposals:
                output = output.then(self._step(ProposeBatch(tuple(proposals))))
                proposals = []
            if kind == "tick":
                self._tick_queued = False
                event = Tick()
                self._commit_keyspace_when_due()
                self._continue_catching_up()
                self._publish_attributes()
                self._expire_leases()
                self._notice_removal()
                if self._reads_to_retry:
                    retry, self._reads_to_retry = self._reads_to_retry, []
                    for pending in retry:
                        output = output.then(self._request_read(pending))
                if self._changes_to_retry:
                    changes, self._changes_to_retry = self._changes_to_retry, []
                    for request_id in changes:
                        output = output.then(self._propose_change(request_id))
            elif kind == "message":
                assert isinstance(payload, MESSAGE_CLASSES)
                event = Receive(payload)  # type: ignore[arg-type]
            elif kind == "read":
                assert isinstance(payload, _PendingRead)
                output = output.then(self._request_read(payload))
            elif kind == "call":
                function: Callable[[], Result]
                future: Future[Result]
                function, future = payload  # type: ignore[misc]
                if not future.done():
                    try:
                        future.set_result(function())
                    except Exception as error:
                        future.set_exception(error)
            elif kind == "local-read":
                assert isinstance(payload, _PendingRead)
                local_reads.append(payload)
            elif kind == "change":
                change_id: int
                change_request: MemberRequest
                change_id, change_request = payload  # type: ignore[misc]
                self._change_requests[change_id] = (change_request, 0)
                output = output.then(self._propose_change(change_id))
            elif kind == "snapshot":
                snapshot_message: SnapshotRequest
                received: Path
                snapshot_message, received = payload  # type: ignore[misc]
                self._received_snapshots[snapshot_message.snapshot.index] = received
                event = Receive(snapshot_message)
            if event is not None:
                output = output.then(self._step(event))
        if proposals:
            output = output.then(self._step(ProposeBatch(tuple(proposals))))
        self._carry_out(output)
        for received in self._received_snapshots.values():
            received.unlink(missing_ok=True)  # not installed: the spec had those entries already
        self._received_snapshots.clear()
        for pending in local_reads:
            self._serve_read(pending)
        self._publish()

    def _step(self, event: Input) -> Output:
        before_role, before_term = self.state.role, self.state.term
        self.state, output = step(self.state, event)
        if self.state.role is not before_role:
            if self.state.role is Role.LEADER:
                extend_seconds = self.config.election_timeout_ms / 1000
                self.leases = lease.promote(self.leases, time.monotonic(), extend_seconds)
            elif before_role is Role.LEADER:
                self.leases = lease.demote(self.leases)
        if self.state.role is not before_role or self.state.term != before_term:
            log.info(
                "term %d: %s -> %s (leader %s)", self.state.term, before_role.value,
                self.state.role.value, f"{self.state.leader:x}" if self.state.leader else "none",
            )  # fmt: skip
        return output

    def _request_read(self, pending: _PendingRead) -> Output:
        pending.context = b"%x-%d" % (self.member_id, next(self._read_contexts))
        self._reads_by_context[pending.context] = pending
        return self._step(RequestRead(pending.context))

    def _carry_out(self, output: Output) -> None:
        for _ in range(FOLLOW_UP_STEPS_MAX):
            if output == NOTHING:
                return
            self._send(output, after_persistence=False)
            self._persist(output)
            self._send(output, after_persistence=True)
            self._handle_refusals(output)
            self._apply(output.committed_entries)
            for ready in output.reads_ready:
                pending = self._reads_by_context.pop(ready.context, None)
                if pending is not None:
                    self._reads_ready.append((ready.index, pending))
            self._serve_ready_reads()
            follow_up = NOTHING
            if output.entries_to_persist or output.snapshot_to_persist is not None:
                follow_up = follow_up.then(
                    self._step(
                        StorageAcknowledged(self.state.log.last_index, self.state.log.last_term)
                    )
                )
            if output.committed_entries:
                follow_up = follow_up.then(self._step(Applied(output.committed_entries[-1].index)))
                follow_up = follow_up.then(self._maybe_compact())
            output = follow_up
        raise AssertionError(f"member {self.member_id:x} kept producing follow-up outputs")

    def _send(self, output: Output, *, after_persistence: bool) -> None:
        assert self.transport is not None
        messages: list[Message] = []
        for outgoing in output.messages:
            if outgoing.after_persistence != after_persistence:
                continue
            if isinstance(outgoing.message, SnapshotRequest):
                self._send_snapshot(outgoing.message)
            else:
                messages.append(outgoing.message)
        if messages:
            self.transport.send_all(messages)

    def _send_snapshot(self, message: SnapshotRequest) -> None:
        """Stream a consistent copy of the keyspace with the snapshot message (etcd
        createMergedSnapshotMessage): the copy holds every applied entry, at least through the
        snapshot's index, so the follower skips the entries it already holds when they arrive."""
        assert self.transport is not None
        peer = message.recipient
        with self._lock:
            if time.monotonic() < self._snapshot_streams.get(peer, 0.0):
                return  # one stream at a time, and a pause after one got through
            self._snapshot_streams[peer] = math.inf
        path = self.snap_dir / f"outgoing-{peer:016x}.db"
        path.unlink(missing_ok=True)
        self.keyspace.copy_to(path)
        log.info(
            "sending snapshot at index %d (keyspace applied through %d) to %x",
            message.snapshot.index, self.keyspace.consistent_index(), peer,
        )  # fmt: skip

        def done(delivered: bool) -> None:
            path.unlink(missing_ok=True)
            pause = SNAPSHOT_RESEND_PAUSE_SECONDS if delivered else 0.0
            with self._lock:
                self._snapshot_streams[peer] = time.monotonic() + pause

        self.transport.send_snapshot(message, path, done)

    def _persist(self, output: Output) -> None:
        snapshot = output.snapshot_to_persist
        if snapshot is not None:
            self._install_snapshot(snapshot)
        hard = output.hard_state_to_persist or self.state.hard_state
        entries = [
            WalEntry(
                entry.term,
                entry.index,
                EntryType.CONF_CHANGE
                if entry.kind is EntryKind.CONFIGURATION
                else EntryType.NORMAL,
                entry.data,
            )
            for entry in output.entries_to_persist
        ]
        if entries or output.hard_state_to_persist is not None:
            self.wal.save(WalHardState(hard.term, hard.vote or 0, hard.commit), entries)

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        """The spec replaced our log by the leader's snapshot: record it (snap file, then WAL
        record), then swap in the keyspace that came with it (etcd applySnapshot)."""
        received = self._received_snapshots.pop(snapshot.index, None)
        assert received is not None, "the spec installs only snapshots that came with a keyspace"
        persist_snapshot(self.snapshotter, self.wal, self._raft_snapshot(snapshot))
        self._snapshot_index = snapshot.index
        self._replace_keyspace(received)
        self.applied_index = self.keyspace.consistent_index()
        self._connect_peers()
        self._resync_watchers()
        log.info(
            "installed snapshot at index %d (term %d): keyspace applied through %d, revision %d",
            snapshot.index, snapshot.term, self.keyspace.consistent_index(),
            self.keyspace.current_revision(),
        )  # fmt: skip

    def _resync_watchers(self) -> None:
        """After the keyspace was replaced, every watcher catches up from it (etcd watchable
        store Restore: synced watchers become unsynced)."""
        for stream in self.watch_streams.values():
            for watch_id, watcher in stream.watchers.items():
                stream.watchers[watch_id] = attrs.evolve(watcher, synced=False)
        self._continue_catching_up()

    def _raft_snapshot(self, snapshot: Snapshot) -> RaftSnapshot:
        conf = ConfState(
            tuple(sorted(snapshot.membership.voters)), tuple(sorted(snapshot.membership.learners))
        )
        return RaftSnapshot(snapshot.index, snapshot.term, conf, snapshot.data)

    def _handle_refusals(self, output: Output) -> None:
        assert self.transport is not None
        forwards: dict[int, list[bytes]] = {}  # leader -> proposals, sent together below
        for refusal in output.refusals:
            request = refusal.request
            if isinstance(request, Propose):
                if refusal.leader is not None and refusal.leader != self.member_id:
                    forwards.setdefault(refusal.leader, []).append(request.data)
                else:
                    self._fail_proposal(
                        request.data,
                        EtcdError.NO_LEADER if refusal.leader is None else EtcdError.LEADER_CHANGED,
                    )
            elif isinstance(request, ProposeConfigurationChange):
                self._change_refused(request.change, refusal.reason.name, refusal.leader)
            elif isinstance(request, RequestRead):
                pending = self._reads_by_context.pop(request.context, None)
                if pending is None:
                    continue
                if refusal.leader is None and refusal.reason.name == "NOT_LEADER":
                    pending.future.set_result(EtcdError.NO_LEADER)
                elif pending.retries < READ_RETRY_TURNS_MAX:
                    pending.retries += 1
                    self._reads_to_retry.append(pending)
                else:
                    pending.future.set_result(EtcdError.TIMEOUT)
        for leader, proposals in forwards.items():
            self.transport.forward_proposals(leader, proposals)

    def _propose_change(self, request_id: int) -> Output:
        """Check a member change as etcd does before proposing it (on the raft loop, so against
        the table as applied so far), then propose it: a configuration entry for add, remove and
        promote, a normal entry for a peer-URL update."""
        request, tries = self._change_requests[request_id]
        if self.state.role is not Role.LEADER:
            self._resolve_change(request_id, EtcdError.NOT_LEADER)
            return NOTHING
        assert self.transport is not None and self.state.leader_state is not None
        table = self.member_table
        connected = self.transport.connected_seconds()
        problem: EtcdError | None
        if request.action == "update":
            problem = check_update(table, request.member_id, request.peer_urls)
            if problem is not None:
                self._resolve_change(request_id, problem)
                return NOTHING
            self._change_requests.pop(request_id)
            return self._step(Propose(update_out(request_id, request.member_id, request.peer_urls)))
        if request.action == "add":
            member = Member(
                added_member_id(request.peer_urls, int(time.time())), "", request.peer_urls,
                is_learner=request.is_learner,
            )  # fmt: skip
            action = ChangeAction.ADD_LEARNER if request.is_learner else ChangeAction.ADD_VOTER
            problem = check_add(table, member, self.member_id, connected)
        elif request.action == "remove":
            member = table.get(request.member_id) or Member(request.member_id, "", ())
            action = ChangeAction.REMOVE
            problem = check_remove(table, request.member_id, self.member_id, connected)
        else:
            member = table.get(request.member_id) or Member(request.member_id, "", ())
            action = ChangeAction.PROMOTE_LEARNER
            progress = self.state.leader_state.progress.get(NodeId(request.member_id))
            learner_match = None if progress is None else progress.match_index
            problem = check_promote(
                table, request.member_id, learner_match, self.state.log.last_index
            )
        if problem is not None:
            self._resolve_change(request_id, problem)
            return NOTHING
        self._change_requests[request_id] = (request, tries)
        return self._step(ProposeConfigurationChange(change_out(request_id, action, member)))

    def _change_refused(
        self, change: ConfigurationChange, reason: str, leader: NodeId | None
    ) -> None:
        """The spec would not take a member change now: try again on the next ticks while the
        reason may pass (a change pending, no commit yet in this term, a leadership transfer)."""
        try:
            request_id, _ = change_in(change)
        except ValueError:
            return
        if request_id not in self._change_requests:
            return
        request, tries = self._change_requests[request_id]
        retry = reason in ("CHANGE_PENDING", "NO_COMMIT_IN_TERM", "TRANSFER_IN_PROGRESS")
        if retry and tries < CHANGE_RETRY_TICKS_MAX:
            self._change_requests[request_id] = (request, tries + 1)
            self._changes_to_retry.append(request_id)
        elif retry:
            self._resolve_change(request_id, EtcdError.TIMEOUT)
        elif reason == "NOT_LEADER":
            self._resolve_change(
                request_id, EtcdError.NO_LEADER if leader is None else EtcdError.NOT_LEADER
            )
        else:  # the change would not change Raft's membership
            found = self.member_table.get(change.node) is not None
            self._resolve_change(
                request_id, EtcdError.MEMBER_EXISTS if found else EtcdError.MEMBER_NOT_FOUND
            )

    def _resolve_change(self, request_id: int, result: Result) -> None:
        self._change_requests.pop(request_id, None)
        with self._lock:
            future = self._waiting_writes.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    def _fail_proposal(self, data: bytes, error: EtcdError) -> None:
        try:
            request_id, _ = internal_request_in(data)
        except Exception:
            log.exception("cannot decode a refused proposal")
            return
        with self._lock:
            future = self._waiting_writes.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(error)

    def _apply(self, entries: tuple[Entry, ...]) -> None:
        if not entries:
            return
        applied_through = self.keyspace.consistent_index()
        with collector_paused():  # a batch builds many objects and no cycles
            results = self._apply_entries(entries, applied_through)
        last = entries[-1].index
        if last > applied_through:
            self.keyspace.mark_applied(last)
            self._commit_keyspace_when_due()
        self.applied_index = max(self.applied_index, last)
        with self._lock:
            futures = [
                (self._waiting_writes.pop(request_id, None), result)
                for request_id, result in results
            ]
        for future, result in futures:
            if future is not None and not future.done():
                future.set_result(result)

    def _open_keyspace(self) -> LmdbKeyspace:
        """The keyspace file, reporting its commits to `keyspace_commit_observer` (which
        survives the keyspace being replaced by a received snapshot)."""
        keyspace = LmdbKeyspace(self.snap_dir / "db")
        keyspace.commit_observer = self._keyspace_committed
        return keyspace

    def _keyspace_committed(self, seconds: float) -> None:
        if self.keyspace_commit_observer is not None:
            self.keyspace_commit_observer(seconds)

    def _commit_keyspace_when_due(self) -> None:
        """Commit the keyspace's batch every KEYSPACE_COMMIT_INTERVAL_SECONDS or
        KEYSPACE_COMMIT_ENTRIES_MAX entries (etcd's --backend-batch-interval and -limit), not
        after every apply: clients are answered once an entry is applied, its durability is the
        WAL's, and after a crash the entries after the file's consistent index apply again."""
        now = time.monotonic()
        uncommitted = self.keyspace.uncommitted_entries()
        if uncommitted == 0:
            self._keyspace_committed_at = now
            return
        if (
            now - self._keyspace_committed_at < KEYSPACE_COMMIT_INTERVAL_SECONDS
            and uncommitted < KEYSPACE_COMMIT_ENTRIES_MAX
        ):
            return
        self.keyspace.commit()
        self._keyspace_committed_at = now

    def _apply_entries(
        self, entries: tuple[Entry, ...], applied_through: int
    ) -> list[tuple[int, Result]]:
        """Apply each entry after `applied_through` (the keyspace's consistent index): the
        results for the requests waiting on them."""
        results: list[tuple[int, Result]] = []
        for entry in entries:
            if entry.index <= applied_through:
                continue  # applied before a restart: the keyspace already holds it
            if entry.kind is EntryKind.CONFIGURATION:
                results.append(self._apply_member_change(entry))
                continue
            if not entry.data:
                continue
            attributes = member_attributes_in(entry.data)
            if attributes is not None:
                published_id, name, urls = attributes
                self._apply_attributes(published_id, name, urls)
                if published_id == self.member_id:
                    self._published = True
                    self.ready.set()
                continue
            update = update_in(entry.data)
            if update is not None:
                results.append(self._apply_peer_urls(*update))
                continue
            try:
                request_id, request = internal_request_in(entry.data)
            except Exception:
                log.exception("entry %d holds data this member cannot decode; skipped", entry.index)
                continue
            if request is None:
                continue
            if isinstance(request, AlarmRequest):
                results.append((request_id, self._apply_alarm(request)))
                continue
            refused = self.alarms.refusal(request)
            if refused is not None:
                results.append((request_id, refused))
                continue
            over_quota = not self.quota.available(request, self.keyspace.size_bytes())
            if isinstance(request, lease.LeaseGrantRequest | lease.LeaseRevokeRequest):
                results.append(
                    (request_id, self._quota_result(self._apply_lease(request), over_quota))
                )
                continue
            outcome = apply_request(self.keyspace, request)
            if isinstance(outcome, MvccApplied):
                self.keyspace.apply(outcome.changes)
                self._notify_watchers(outcome.events)
                results.append((request_id, self._quota_result(outcome.response, over_quota)))
            else:
                results.append((request_id, outcome.error))
        return results

    def _apply_alarm(self, request: AlarmRequest) -> Result:
        """Apply an alarm request; the active alarms are stored with the batch, so a restarted
        member keeps them (etcd's `alarm` bucket)."""
        before = self.alarms.active
        response = self.alarms.apply(request)
        if self.alarms.active != before:
            self.keyspace.put_host_record(_RECORD_ALARMS, self.alarms.encode())
        return response

    def _load_alarms(self) -> None:
        """The alarms the keyspace file holds, with their applier (etcd restoreAlarms)."""
        try:
            self.alarms = Alarms.restored(self.keyspace.host_record(_RECORD_ALARMS))
        except ValueError as error:
            raise NodeError(f"{self.snap_dir / 'db'}: {error}") from None

    def _quota_result(self, result: Result, over_quota: bool) -> Result:
        """etcd's quota applier: a write that found the backend over its quota was applied all
        the same but answers `database space exceeded`, and the first member to see that with
        no NOSPACE alarm active raises one through Raft (etcd applyEntryNormal)."""
        if not over_quota or isinstance(result, EtcdError):
            return result
        if not self.alarms.of_type(AlarmType.NOSPACE):
            log.warning(
                "backend quota exceeded (%d bytes); raising the NOSPACE alarm",
                self.keyspace.size_bytes(),
            )
            alarm = AlarmRequest(AlarmAction.ACTIVATE, self.member_id, AlarmType.NOSPACE)
            self._inputs.put(("propose", internal_request_out(self.next_request_id(), alarm)))
        return EtcdError.NO_SPACE

    def _apply_member_change(self, entry: Entry) -> tuple[int, Result]:
        """A committed configuration entry: Raft's membership changed with its commit (the spec's
        membership_at); the member table, the peers and the stored records follow here."""
        change = ConfigurationChange.decode(entry.data)
        if change is None:
            log.error("entry %d is a configuration entry this member cannot decode", entry.index)
            return 0, None
        try:
            request_id, member = change_in(change)
        except ValueError as error:
            log.error("entry %d: malformed member change context: %s", entry.index, error)
            return 0, None
        self._change_requests.pop(request_id, None)
        problem = validate_change(self.member_table, change.action, member)
        if problem is not None:
            log.info(  # a joining member replays changes its table already holds
                "entry %d: member change not applied to the table: %s", entry.index, problem.message
            )
            return request_id, problem
        self._set_member_table(apply_change(self.member_table, change.action, member))
        log.info(
            "member %x: %s (entry %d); members now %s", member.member_id, change.action.value,
            entry.index, ", ".join(f"{each.member_id:x}" for each in self.member_table.members),
        )  # fmt: skip
        if change.action is ChangeAction.REMOVE and member.member_id == self.member_id:
            self._removed_from_cluster()
        changed = self.member_table.get(member.member_id) or member
        return request_id, MembershipChanged(changed, self.member_table.members)

    def _apply_attributes(self, member_id: int, name: str, client_urls: list[str]) -> None:
        """A member published its name and client URLs (etcd publish); removed members are ignored."""
        self.client_urls[member_id] = client_urls
        member = self.member_table.get(member_id)
        if member is not None:
            updated = attrs.evolve(member, name=name, client_urls=tuple(client_urls))
            self._set_member_table(self.member_table.with_member(updated))

    def _apply_peer_urls(
        self, request_id: int, member_id: int, peer_urls: tuple[str, ...]
    ) -> tuple[int, Result]:
        problem = check_update(self.member_table, member_id, peer_urls)
        if problem is not None:
            return request_id, problem
        member = self.member_table.get(member_id)
        assert member is not None
        self._set_member_table(
            self.member_table.with_member(attrs.evolve(member, peer_urls=peer_urls))
        )
        return request_id, MembershipChanged(member, self.member_table.members)

    def _set_member_table(self, table: MemberTable) -> None:
        """A new member table: stored with the batch being applied, and the peers follow it."""
        self.member_table = table
        self.keyspace.put_host_record(_RECORD_MEMBERS, table.encode())
        self._connect_peers()

    def _removed_from_cluster(self) -> None:
        """This member applied its own removal: it stops shortly after (etcd: "the member has been
        permanently removed from the cluster")."""
        self.removed = True
        log.warning(
            "this member (%x) has been permanently removed from the cluster; stopping in %.0f s",
            self.member_id, REMOVED_STOP_DELAY_SECONDS,
        )  # fmt: skip

        def stop_now() -> None:
            self._stopping.set()
            if self.on_stopped is not None:
                self.on_stopped()

        timer = threading.Timer(REMOVED_STOP_DELAY_SECONDS, stop_now)
        timer.daemon = True
        timer.start()

    def _notice_removal(self) -> None:
        """A member removed while it was down hears from no leader: the others no longer send to
        it. After a few election timeouts without one it asks its peers for the member table,
        and stops if it was removed (etcd learns it from its peers' 410 Gone)."""
        if self.state.leader is not None or self.removed:
            self._leaderless_ticks = 0
            return
        self._leaderless_ticks += 1
        if self._leaderless_ticks < REMOVAL_CHECK_ELECTIONS * self.settings.election_ticks:
            return
        self._leaderless_ticks = 0
        if self._asking_whether_removed.is_set() or self.transport is None:
            return
        self._asking_whether_removed.set()
        addresses = list(self.transport.peers().values())
        threading.Thread(
            target=self._ask_whether_removed, args=(addresses,), name="removal-check", daemon=True
        ).start()

    def _ask_whether_removed(self, addresses: list[tuple[str, int]]) -> None:
        try:
            for address in addresses:
                answer = fetch_cluster_info(address)
                if answer is None:
                    continue
                try:
                    info = ClusterInfo.decode(answer)
                except ValueError:
                    continue
                if info.cluster_id == self.cluster_id and self.member_id in info.table.removed:
                    log.error(
                        "the member has been permanently removed from the cluster "
                        "(the member at %s:%d says so); stopping",
                        *address,
                    )
                    self.removed = True
                    self._stopping.set()
                    if self.on_stopped is not None:
                        self.on_stopped()
                    return
        finally:
            self._asking_whether_removed.clear()

    def _apply_lease(self, request: lease.LeaseGrantRequest | lease.LeaseRevokeRequest) -> Result:
        now = time.monotonic() if self.state.role is Role.LEADER else None
        if isinstance(request, lease.LeaseGrantRequest):
            outcome: object
            outcome, self.leases = lease.grant(self.keyspace, self.leases, request, request.ID, now)
        else:
            outcome, self.leases = lease.revoke(self.keyspace, self.leases, request)
            self._revoking.pop(request.ID, None)
        if isinstance(outcome, MvccApplied):
            self.keyspace.apply(outcome.changes)
            self._notify_watchers(outcome.events)
            return outcome.response
        assert isinstance(outcome, MvccRejected)
        return outcome.error

    def _expire_leases(self) -> None:
        """The leader revokes expired leases through Raft (etcd's primary lessor), once per pass."""
        if self.state.role is not Role.LEADER:
            return
        for lease_id in lease.expired_leases(self.leases, time.monotonic()):
            ticks_left = self._revoking.get(lease_id, 0)
            if ticks_left > 0:
                self._revoking[lease_id] = ticks_left - 1
                continue
            self._revoking[lease_id] = self.settings.election_ticks
            data = internal_request_out(
                self.next_request_id(), lease.LeaseRevokeRequest(ID=lease_id)
            )
            self._inputs.put(("propose", data))

    # --- watches (called on the raft loop, through `call`) ---------------------------------------

    def open_watch_stream(self) -> WatchStream:
        stream = WatchStream(next(self._watch_stream_ids))
        self.watch_streams[stream.stream_id] = stream
        return stream

    def close_watch_stream(self, stream: WatchStream) -> None:
        self.watch_streams.pop(stream.stream_id, None)

    def create_watch(self, stream: WatchStream, request: watch.WatchCreateRequest) -> None:
        response, watcher, stream.ids = watch.create_watcher(self.keyspace, request, stream.ids)
        if watcher is not None and request.fragment:
            stream.fragmenting.add(watcher.watch_id)
        stream.responses.put(response)
        if watcher is not None:
            watcher = self._catch_up(stream, watcher)
        if watcher is not None:
            stream.watchers[watcher.watch_id] = watcher

    def _catch_up(self, stream: WatchStream, watcher: watch.Watcher) -> watch.Watcher | None:
        """Serve an unsynced watcher from the keyspace's history until it is synced (or removed)."""
        current: watch.Watcher | None = watcher
        for _ in range(WATCH_CATCH_UP_ROUNDS_MAX):
            if current is None or current.synced or stream.is_full:
                break
            caught_up, current = watch.catch_up(self.keyspace, current)
            if caught_up is not None:
                stream.responses.put(caught_up)
        return current

    def _continue_catching_up(self) -> None:
        """Each tick, watchers left behind (by a full stream, or a long history) go on catching
        up while their stream has room (etcd's syncWatchersLoop and syncVictimsLoop)."""
        for stream in self.watch_streams.values():
            for watch_id, watcher in list(stream.watchers.items()):
                if watcher.synced or stream.is_full:
                    continue
                caught_up = self._catch_up(stream, watcher)
                if caught_up is None:
                    stream.watchers.pop(watch_id, None)
                else:
                    stream.watchers[watch_id] = caught_up

    def cancel_watch(self, stream: WatchStream, watch_id: int) -> None:
        response = watch.cancel(watch_id, list(stream.watchers.values()))
        if response is not None:
            stream.watchers.pop(watch_id, None)
            stream.fragmenting.discard(watch_id)
            stream.ids = stream.ids.released(watch_id)
            stream.responses.put(response)

    def watch_progress(self, stream: WatchStream) -> None:
        response = watch.progress_all(self.keyspace, list(stream.watchers.values()))
        if response is not None:
            stream.responses.put(response)

    def _notify_watchers(self, events: tuple[Event, ...]) -> None:
        if not events or not self.watch_streams:
            return
        revision = events[-1].kv.mod_revision
        for stream in self.watch_streams.values():
            for watch_id, watcher in list(stream.watchers.items()):
                if not watcher.synced:
                    continue
                if stream.is_full:
                    stream.watchers[watch_id] = watch.fall_behind(watcher)
                    continue
                response, stream.watchers[watch_id] = watch.notify(
                    self.keyspace, watcher, revision, events
                )
                if response is not None:
                    stream.responses.put(response)

    def _serve_ready_reads(self) -> None:
        applied = self.state.applied_index
        still_waiting: list[tuple[int, _PendingRead]] = []
        for index, pending in self._reads_ready:
            if index <= max(applied, self.keyspace.consistent_index()):
                self._serve_read(pending)
            else:
                still_waiting.append((index, pending))
        self._reads_ready = still_waiting

    def _serve_read(self, pending: _PendingRead) -> None:
        if pending.future.done():
            return
        outcome = range_keys(self.keyspace, pending.request)
        if isinstance(outcome, MvccApplied):
            pending.future.set_result(outcome.response)
        else:
            pending.future.set_result(outcome.error)

    def _maybe_compact(self) -> Output:
        """Keep the spec's in-memory log short (`_compaction_index`), and persist a snapshot every
        --snapshot-count applied entries at the point the in-memory log starts from (the WAL
        replays from it; the keyspace has applied at least that far)."""
        output = NOTHING
        applied = self.state.applied_index
        due = snapshot_due(applied, self._snapshot_index, self.config.snapshot_count)
        index = self._compaction_index()
        if due:
            index = max(index, applied - self.config.snapshot_catch_up_entries)
        if index > self.state.log.snapshot.index:
            output = self._step(CompactLog(LogIndex(index), b""))
        snapshot = self.state.log.snapshot
        if due and snapshot.index > self._snapshot_index:
            self.keyspace.commit()  # the snapshot's index must not be ahead of the file
            persist_snapshot(self.snapshotter, self.wal, self._raft_snapshot(snapshot))
            self._snapshot_index = snapshot.index
            log.info("snapshot at index %d (term %d); log compacted", snapshot.index, snapshot.term)
        return output

    def _compaction_index(self) -> int:
        """How far the in-memory log may be compacted now: on a leader, through the entries every
        follower has; on a follower, all but LOG_ENTRIES_IN_MEMORY_SLACK applied entries; never
        keeping more than --experimental-snapshot-catchup-entries applied ones (etcd keeps that
        many for slow followers, which otherwise get a snapshot). 0 while the log is short."""
        log_state = self.state.log
        if len(log_state.entries) < 2 * LOG_ENTRIES_IN_MEMORY_SLACK:
            return 0
        applied = self.state.applied_index
        index = applied - LOG_ENTRIES_IN_MEMORY_SLACK
        leader_state = self.state.leader_state
        if leader_state is not None and leader_state.progress:
            slowest = min(progress.match_index for progress in leader_state.progress.values())
            index = min(applied, slowest)
        index = max(index, applied - self.config.snapshot_catch_up_entries)
        if index - log_state.snapshot.index < LOG_ENTRIES_IN_MEMORY_SLACK:
            return 0
        return index

    def _publish_attributes(self) -> None:
        """Propose this member's client URLs (etcd server.publish) until one such entry applies."""
        if self._published or self.state.leader is None:
            return
        self._ticks_until_publish -= 1
        if self._ticks_until_publish > 0:
            return
        self._ticks_until_publish = self.settings.election_ticks
        data = publish_request_out(
            self.next_request_id(), self.member_id, self.config.name,
            list(self.config.advertise_client_urls),
        )  # fmt: skip
        self._inputs.put(("propose", data))

    def _publish(self) -> None:
        if self.state.leader is not None and self.state.leader != self.leader:
            self.leader_changes_seen += 1
        self.term = self.state.term
        self.leader = self.state.leader
        self.commit_index = self.state.commit_index
        self.is_leader = self.state.role is Role.LEADER


def data_dir_of(path: str) -> Path:
    return Path(path)


def _initial_cluster_text(initial_cluster: dict[str, list[str]]) -> str:
    return ",".join(f"{name}={url}" for name, urls in initial_cluster.items() for url in urls)
