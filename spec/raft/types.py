"""The nouns of Raft: identifiers, log entries, hard state, roles, membership and settings.

Everything here is plain immutable data (attrs frozen classes with slots). Identifiers are
`NewType`s over int so that mypy keeps a term from being passed where an index is expected.
A node id of 0 is never valid: "no vote" and "no leader" are `None`, never a sentinel number
(a Raft TLA+ spec once let Nil equal a server id, which let a server vote twice).
"""

from __future__ import annotations

import enum
from typing import NewType

import attrs

NodeId = NewType("NodeId", int)
Term = NewType("Term", int)
LogIndex = NewType("LogIndex", int)


class EntryKind(enum.Enum):
    """What an entry carries: application data, or one membership change (etcd EntryNormal / EntryConfChange)."""

    NORMAL = "normal"
    CONFIGURATION = "configuration"


@attrs.frozen(slots=True)
class Entry:
    """One log entry. Entries are identified by (index, term): Raft §5.3 Log Matching."""

    term: Term
    index: LogIndex
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""


@attrs.frozen(slots=True)
class HardState:
    """What a node must persist before it answers: Raft Figure 2 "persistent state" plus commit (etcd raftpb.HardState)."""

    term: Term
    vote: NodeId | None
    commit: LogIndex


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class ChangeAction(enum.Enum):
    """The one-server membership changes (Raft thesis §4.1; etcd ConfChangeType)."""

    ADD_VOTER = "add-voter"
    ADD_LEARNER = "add-learner"
    PROMOTE_LEARNER = "promote-learner"
    REMOVE = "remove"


@attrs.frozen(slots=True)
class ConfigurationChange:
    """One membership change; carried in a CONFIGURATION entry as `encode()` bytes.

    `context` is opaque to Raft (etcd ConfChange.Context): the host's own record of the change,
    such as the new member's name and URLs; it never affects the membership.
    """

    action: ChangeAction
    node: NodeId
    context: bytes = b""

    def encode(self) -> bytes:
        head = f"{self.action.value} {self.node}".encode()
        return head + b"\n" + self.context if self.context else head

    @staticmethod
    def decode(data: bytes) -> ConfigurationChange | None:
        """The change in an entry's data, or None for bytes that are not one (never raises)."""
        head, _, context = data.partition(b"\n")
        try:
            action_text, node_text = head.decode("ascii").split(" ")
            node = int(node_text)
            action = ChangeAction(action_text)
        except ValueError:
            return None
        if node <= 0:
            return None
        return ConfigurationChange(action, NodeId(node), context)


@attrs.frozen(slots=True)
class Membership:
    """Voters decide elections and commitment; learners only receive the log (etcd learners, thesis §4.2.1)."""

    voters: frozenset[NodeId]
    learners: frozenset[NodeId] = frozenset()

    @property
    def members(self) -> frozenset[NodeId]:
        return self.voters | self.learners

    @property
    def quorum_size(self) -> int:
        """A majority of voters: any two majorities share a voter (Raft §5.2)."""
        return len(self.voters) // 2 + 1

    def apply(self, change: ConfigurationChange) -> Membership:
        """The membership after one change; a change that does not fit (e.g. promoting a voter) changes nothing."""
        voters, learners, node = self.voters, self.learners, change.node
        match change.action:
            case ChangeAction.ADD_VOTER:
                return Membership(voters | {node}, learners - {node})
            case ChangeAction.ADD_LEARNER:
                if node in voters:
                    return self
                return Membership(voters, learners | {node})
            case ChangeAction.PROMOTE_LEARNER:
                if node not in learners:
                    return self
                return Membership(voters | {node}, learners - {node})
            case ChangeAction.REMOVE:
                return Membership(voters - {node}, learners - {node})


@attrs.frozen(slots=True)
class Settings:
    """The tunables of one node, fixed at start (etcd raft.Config).

    Defaults follow etcd's server: one tick per heartbeat interval, ten ticks per election
    timeout, CheckQuorum on. PreVote is off in etcd 3.4 and on in 3.5; here it defaults on.
    """

    election_ticks: int = 10
    heartbeat_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    entries_per_message_max: int = 64
    inflight_appends_max: int = 256

    def __attrs_post_init__(self) -> None:
        assert self.heartbeat_ticks >= 1, "a heartbeat needs at least one tick"
        assert self.election_ticks > self.heartbeat_ticks, (
            "elections must be slower than heartbeats"
        )
        assert self.entries_per_message_max >= 1
        assert self.inflight_appends_max >= 1
