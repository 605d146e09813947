"""What goes into `step` and what comes out of it.

Inputs are the closed union `Input`: time (ticks, or the two timeouts they trigger), a message
from a peer, and requests from the node that hosts this state machine. The output is data the
host must act on, in this order:

1. persist `snapshot_to_persist`, then `entries_to_persist` (which replace any stored entries
   from their first index on), then `hard_state_to_persist`, durably (fsync);
2. send `messages`: those with `after_persistence` False may be sent before step 1 completes,
   the others only after it;
3. apply `committed_entries` in order (they are durable by then), and restore
   `snapshot_to_persist` into the state machine first if there is one;
4. report progress back as inputs: `StorageAcknowledged` once entries are durable and
   `Applied` once entries are applied.
"""

from __future__ import annotations

import enum

import attrs

from spec.raft.log import Snapshot
from spec.raft.messages import Message, must_wait_for_persistence
from spec.raft.types import ConfigurationChange, Entry, HardState, LogIndex, NodeId, Term

# ---------------------------------------------------------------------------------------------
# Inputs


@attrs.frozen(slots=True)
class Tick:
    """One unit of logical time passed (etcd Node.Tick); timeouts are counted in ticks."""


@attrs.frozen(slots=True)
class ElectionTimeout:
    """The election timer fired: what enough ticks would cause, as one action (for exploration)."""


@attrs.frozen(slots=True)
class HeartbeatTimeout:
    """The heartbeat timer fired on a leader: what `heartbeat_ticks` ticks would cause."""


@attrs.frozen(slots=True)
class Receive:
    message: Message


@attrs.frozen(slots=True)
class Propose:
    data: bytes


@attrs.frozen(slots=True)
class ProposeBatch:
    """Commands that arrived together, proposed at once: one append, the same messages (etcd's
    MsgProp carries many entries). The log and state equal proposing each `Propose` in turn."""

    data: tuple[bytes, ...]


@attrs.frozen(slots=True)
class ProposeConfigurationChange:
    change: ConfigurationChange


@attrs.frozen(slots=True)
class RequestRead:
    """Ask for a read index: `context` is the caller's unique name for this read."""

    context: bytes


@attrs.frozen(slots=True)
class TransferLeadership:
    target: NodeId


@attrs.frozen(slots=True)
class StorageAcknowledged:
    """Entries up to `index` (whose entry has `term`) are durable on this node."""

    index: LogIndex
    term: Term


@attrs.frozen(slots=True)
class Applied:
    """The state machine has applied entries up to `index`."""

    index: LogIndex


@attrs.frozen(slots=True)
class CompactLog:
    """The host saved a snapshot of its state machine at `index` (<= applied); `data` is that state."""

    index: LogIndex
    data: bytes


Input = (
    Tick
    | ElectionTimeout
    | HeartbeatTimeout
    | Receive
    | Propose
    | ProposeBatch
    | ProposeConfigurationChange
    | RequestRead
    | TransferLeadership
    | StorageAcknowledged
    | Applied
    | CompactLog
)

# ---------------------------------------------------------------------------------------------
# Outputs


@attrs.frozen(slots=True)
class Outgoing:
    message: Message
    after_persistence: bool

    @staticmethod
    def of(message: Message) -> Outgoing:
        return Outgoing(message, must_wait_for_persistence(message))


@attrs.frozen(slots=True)
class ReadReady:
    """A read named `context` may be served once the state machine has applied `index` (thesis §6.4)."""

    context: bytes
    index: LogIndex


class RefusalReason(enum.Enum):
    NOT_LEADER = "not leader"
    TRANSFER_IN_PROGRESS = "leadership transfer in progress"
    CHANGE_PENDING = "a membership change is already pending"
    NO_COMMIT_IN_TERM = "leader has not yet committed an entry in its term"
    LEADERSHIP_LOST = "leadership lost before the request completed"
    BAD_TARGET = "transfer target is not a voter"
    BAD_REQUEST = "request does not apply"


@attrs.frozen(slots=True)
class Refusal:
    """A request this node will not carry out, with why and who it believes leads (for forwarding)."""

    request: Propose | ProposeConfigurationChange | RequestRead | TransferLeadership
    reason: RefusalReason
    leader: NodeId | None


@attrs.frozen(slots=True)
class Output:
    messages: tuple[Outgoing, ...] = ()
    entries_to_persist: tuple[Entry, ...] = ()
    hard_state_to_persist: HardState | None = None
    snapshot_to_persist: Snapshot | None = None
    committed_entries: tuple[Entry, ...] = ()
    reads_ready: tuple[ReadReady, ...] = ()
    refusals: tuple[Refusal, ...] = ()

    def then(self, later: Output) -> Output:
        """This output followed by `later`: lists concatenate; for stored state, later writes win.

        Entries merge by index, as the store would: `later`'s entries replace ours from their first index.
        """
        entries = self.entries_to_persist
        if later.entries_to_persist:
            first = later.entries_to_persist[0].index
            entries = tuple(e for e in entries if e.index < first) + later.entries_to_persist
        if later.snapshot_to_persist is not None:
            entries = later.entries_to_persist
        return Output(
            messages=self.messages + later.messages,
            entries_to_persist=entries,
            hard_state_to_persist=later.hard_state_to_persist or self.hard_state_to_persist,
            snapshot_to_persist=later.snapshot_to_persist or self.snapshot_to_persist,
            committed_entries=self.committed_entries + later.committed_entries,
            reads_ready=self.reads_ready + later.reads_ready,
            refusals=self.refusals + later.refusals,
        )

    @property
    def must_sync(self) -> bool:
        """Whether step 1 needs an fsync: entries, a snapshot or a changed hard state (etcd MustSync)."""
        return (
            bool(self.entries_to_persist)
            or self.snapshot_to_persist is not None
            or (self.hard_state_to_persist is not None)
        )


def send(*messages: Message) -> Output:
    return Output(messages=tuple(Outgoing.of(message) for message in messages))


NOTHING = Output()
