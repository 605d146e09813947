"""One etcd member: spec.raft driven by a clock, the WAL, the LMDB keyspace and the peers.

Everything that touches Raft state or the keyspace runs on one thread, the *raft loop*. Other
threads (the ticker, peer readers, gRPC handlers) only put inputs on its queue and wait on
futures. Each turn of the loop:

1. takes every input waiting (up to a bound) and steps the spec once per input, merging the
   outputs: proposals that arrived together become one append, and one fsync (group commit);
2. carries out the merged output in spec.raft.io's order: messages that need not wait are sent;
   snapshot, entries and hard state are saved to the WAL (one write, one fdatasync); then the
   other messages are sent; committed entries are applied to the keyspace, each at most once
   (an entry at or below the keyspace's consistent index was applied before a restart);
3. reports `StorageAcknowledged` and `Applied` back to the spec, carrying out what follows.

Protocol decisions (who leads, what commits, when a read is safe) are the spec's alone.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Final

import attrs

from impl.api.alarm import AlarmRequest, Alarms
from impl.api.convert import (
    ReplicatedRequest,
    internal_request_in,
    internal_request_out,
    member_attributes_in,
    publish_request_out,
)
from impl.backend.keyspace import LmdbKeyspace
from impl.node.config import NodeConfig, host_port
from impl.snap import ConfState, RaftSnapshot, Snapshotter, persist_snapshot, snapshot_due
from impl.transport.codec import MESSAGE_CLASSES
from impl.transport.peer import PeerTransport
from impl.wal import Entry as WalEntry
from impl.wal import (
    EntryType,
    SnapshotPoint,
    Wal,
    WalMetadata,
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
    Receive,
    RefusalReason,
    RequestRead,
    StorageAcknowledged,
    Tick,
    TransferLeadership,
)
from spec.raft.log import Log, Snapshot
from spec.raft.messages import Message
from spec.raft.state import NodeState, PersistedState, initial_state, restart
from spec.raft.step import step
from spec.raft.types import (
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


@attrs.define
class WatchStream:
    """One client's watch stream: its watchers and the responses waiting to be sent."""

    stream_id: int
    watchers: dict[int, watch.Watcher] = attrs.field(factory=dict)
    ids: watch.WatchIds = attrs.field(factory=watch.WatchIds)
    responses: queue.Queue[watch.WatchResponse] = attrs.field(factory=queue.Queue)


class Node:
    """A running member. `start()` opens the data directory and starts the threads; `stop()` ends them."""

    def __init__(self, config: NodeConfig) -> None:
        config.check()
        self.config = config
        self.member_id = config.member_id
        self.cluster_id = config.cluster_id
        self.members = config.members()
        self.member_dir = config.data_dir / "member"
        self.wal_dir = self.member_dir / "wal"
        self.snap_dir = self.member_dir / "snap"
        self.settings = Settings(
            election_ticks=config.election_timeout_ms // config.heartbeat_interval_ms,
            heartbeat_ticks=1,
            pre_vote=config.pre_vote,
            check_quorum=True,
        )
        self._inputs: queue.Queue[tuple[str, object]] = queue.Queue()
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
        self.transport: PeerTransport | None = None
        # Figures the API reads without the raft loop (plain ints: atomic to read).
        self.term = 0
        self.leader: int | None = None
        self.commit_index = 0
        self.applied_index = 0
        self.is_leader = False
        self.leader_changes_seen = 0  # etcd_server_leader_changes_seen_total
        self.alarms = Alarms()  # NOSPACE / CORRUPT, applied through Raft (impl.api.alarm)
        self.on_stopped: Callable[[], None] | None = None
        # Client URLs each member published through Raft (etcd's member attributes).
        self.client_urls: dict[int, list[str]] = {}
        self.leases = lease.Leases()
        self._revoking: dict[int, int] = {}  # lease id -> ticks left before proposing again
        self.watch_streams: dict[int, WatchStream] = {}  # touched only on the raft loop
        self._watch_stream_ids = itertools.count(1)
        self._published = False
        self._ticks_until_publish = 0

    # --- starting and stopping --------------------------------------------------------------

    def start(self) -> None:
        self._open_storage()
        peers = {
            member.member_id: host_port(member.peer_urls[0])
            for member in self.members
            if member.member_id != self.member_id
        }
        listen = host_port(self.config.listen_peer_urls[0])
        try:
            self.transport = PeerTransport(
                listen, peers, self._receive_message, self._receive_proposal
            )
        except OSError as error:
            self._close_storage()
            raise NodeError(
                f"cannot listen for peers on {self.config.listen_peer_urls[0]}: {error}"
            ) from None
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
        membership = Membership(frozenset(NodeId(member.member_id) for member in self.members))
        seed = int.from_bytes(os.urandom(8), "big")
        wal_exists = self.wal_dir.is_dir() and any(self.wal_dir.glob("*.wal"))
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self.snapshotter = Snapshotter(self.snap_dir)
        if not wal_exists:
            if self.config.initial_cluster_state == "existing":
                raise NodeError(
                    "--initial-cluster-state existing needs a data directory written before"
                )
            self.wal = Wal.create(self.wal_dir, WalMetadata(self.member_id, self.cluster_id))
            self.state = initial_state(NodeId(self.member_id), membership, self.settings, seed)
        else:
            raft_snapshot = self.snapshotter.load_newest_available(
                valid_snapshot_points(self.wal_dir)
            )
            point = SnapshotPoint()
            snapshot = Snapshot(LogIndex(0), Term(0), membership)
            if raft_snapshot is not None:
                point = SnapshotPoint(raft_snapshot.index, raft_snapshot.term)
                voters = frozenset(NodeId(voter) for voter in raft_snapshot.conf_state.voters)
                learners = frozenset(
                    NodeId(learner) for learner in raft_snapshot.conf_state.learners
                )
                snapshot = Snapshot(
                    LogIndex(raft_snapshot.index), Term(raft_snapshot.term),
                    Membership(voters or membership.voters, learners), raft_snapshot.data,
                )  # fmt: skip
            self.wal, contents = Wal.open(self.wal_dir, point)
            if (
                contents.metadata.node_id != self.member_id
                or contents.metadata.cluster_id != self.cluster_id
            ):
                self.wal.close()
                raise NodeError(
                    f"{self.config.data_dir} belongs to member {contents.metadata.node_id:x} of cluster "
                    f"{contents.metadata.cluster_id:x}, not member {self.member_id:x} of {self.cluster_id:x}"
                )
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
                Term(stored.term),
                NodeId(stored.vote) if stored.vote else None,
                LogIndex(stored.commit),
            )
            persisted = PersistedState(hard_state, Log(snapshot, entries))
            self.state = restart(NodeId(self.member_id), persisted, self.settings, seed)
        self.keyspace = LmdbKeyspace(self.member_dir / "snap" / "db")
        self.leases = lease.recover(self.keyspace)

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
        if message.recipient == self.member_id:
            self._inputs.put(("message", message))

    def _receive_proposal(self, data: bytes) -> None:
        self._inputs.put(("forwarded", data))

    # --- the ticker -----------------------------------------------------------------------------

    def _run_ticker(self) -> None:
        interval = self.config.heartbeat_interval_ms / 1000
        next_tick = time.monotonic() + interval
        while not self._stopping.is_set():
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stopping.wait(delay)
            next_tick = max(next_tick + interval, time.monotonic())
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
        for kind, payload in batch:
            event: Input | None = None
            if kind == "tick":
                event = Tick()
                self._publish_attributes()
                self._expire_leases()
                if self._reads_to_retry:
                    retry, self._reads_to_retry = self._reads_to_retry, []
                    for pending in retry:
                        output = output.then(self._request_read(pending))
            elif kind == "message":
                assert isinstance(payload, MESSAGE_CLASSES)
                event = Receive(payload)  # type: ignore[arg-type]
            elif kind in ("propose", "forwarded"):
                assert isinstance(payload, bytes)
                event = Propose(payload)
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
            if event is not None:
                output = output.then(self._step(event))
        self._carry_out(output)
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
        for outgoing in output.messages:
            if outgoing.after_persistence == after_persistence:
                self.transport.send(outgoing.message)

    def _persist(self, output: Output) -> None:
        snapshot = output.snapshot_to_persist
        if snapshot is not None:
            log.error(
                "received a snapshot at index %d: installing a keyspace snapshot is not supported yet",
                snapshot.index,
            )
            persist_snapshot(self.snapshotter, self.wal, self._raft_snapshot(snapshot))
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

    def _raft_snapshot(self, snapshot: Snapshot) -> RaftSnapshot:
        conf = ConfState(
            tuple(sorted(snapshot.membership.voters)), tuple(sorted(snapshot.membership.learners))
        )
        return RaftSnapshot(snapshot.index, snapshot.term, conf, snapshot.data)

    def _handle_refusals(self, output: Output) -> None:
        assert self.transport is not None
        for refusal in output.refusals:
            request = refusal.request
            if isinstance(request, Propose):
                if refusal.leader is not None and refusal.leader != self.member_id:
                    self.transport.forward_proposal(refusal.leader, request.data)
                else:
                    self._fail_proposal(
                        request.data,
                        EtcdError.NO_LEADER if refusal.leader is None else EtcdError.LEADER_CHANGED,
                    )
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
        results: list[tuple[int, Result]] = []
        for entry in entries:
            if entry.index <= applied_through:
                continue  # applied before a restart: the keyspace already holds it
            if entry.kind is not EntryKind.NORMAL or not entry.data:
                continue
            attributes = member_attributes_in(entry.data)
            if attributes is not None:
                published_id, _, urls = attributes
                self.client_urls[published_id] = urls
                self._published = self._published or published_id == self.member_id
                continue
            try:
                request_id, request = internal_request_in(entry.data)
            except Exception:
                log.exception("entry %d holds data this member cannot decode; skipped", entry.index)
                continue
            if request is None:
                continue
            if isinstance(request, AlarmRequest):
                results.append((request_id, self.alarms.apply(request)))
                continue
            refused = self.alarms.refusal(request)
            if refused is not None:
                results.append((request_id, refused))
                continue
            if isinstance(request, lease.LeaseGrantRequest | lease.LeaseRevokeRequest):
                results.append((request_id, self._apply_lease(request)))
                continue
            outcome = apply_request(self.keyspace, request)
            if isinstance(outcome, MvccApplied):
                self.keyspace.apply(outcome.changes)
                self._notify_watchers(outcome.events)
                results.append((request_id, outcome.response))
            else:
                results.append((request_id, outcome.error))
        last = entries[-1].index
        if last > applied_through:
            self.keyspace.commit(last)
        self.applied_index = max(self.applied_index, last)
        with self._lock:
            futures = [
                (self._waiting_writes.pop(request_id, None), result)
                for request_id, result in results
            ]
        for future, result in futures:
            if future is not None and not future.done():
                future.set_result(result)

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
        stream.responses.put(response)
        for _ in range(WATCH_CATCH_UP_ROUNDS_MAX):
            if watcher is None or watcher.synced:
                break
            caught_up, watcher = watch.catch_up(self.keyspace, watcher)
            if caught_up is not None:
                stream.responses.put(caught_up)
        if watcher is not None:
            stream.watchers[watcher.watch_id] = watcher

    def cancel_watch(self, stream: WatchStream, watch_id: int) -> None:
        response = watch.cancel(watch_id, list(stream.watchers.values()))
        if response is not None:
            stream.watchers.pop(watch_id, None)
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
        """Snapshot every --snapshot-count applied entries, keeping catch-up entries in the log."""
        applied = self.state.applied_index
        if not snapshot_due(applied, self.state.log.snapshot.index, self.config.snapshot_count):
            return NOTHING
        index = applied - self.config.snapshot_catch_up_entries
        term = self.state.log.term_at(index)
        if index <= self.state.log.snapshot.index or term is None:
            return NOTHING
        self.keyspace.commit(self.keyspace.consistent_index())
        output = self._step(CompactLog(LogIndex(index), b""))
        persist_snapshot(self.snapshotter, self.wal, self._raft_snapshot(self.state.log.snapshot))
        log.info("snapshot at index %d (term %d); log compacted", index, term)
        return output

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
