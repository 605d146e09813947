"""The member table: who is in the cluster, by what URLs, and etcd's checks on changing it.

Raft's membership (spec.raft: voters and learners by id) decides elections and commitment; the
member table beside it is etcd's `membership.RaftCluster`: each member's name, peer URLs,
client URLs and learner flag, plus the ids removed for good. A change to it travels in the
`context` of a Raft configuration entry (etcd ConfChange.Context), so both change at the same
log index; a peer-URL update, which changes no vote, travels in a normal entry (etcd's v2
`raftAttributes` write). The table is stored in the keyspace file with the consistent index, so
it survives restarts and travels inside a keyspace snapshot.

Everything here is pure: the node calls these functions on its raft loop. The checks are
etcd 3.4's (etcdserver/server.go mayAddMember, mayRemoveMember, mayPromoteMember,
isLearnerReady; membership/cluster.go ValidateConfigurationChange, IsReadyTo*): a request is
refused with the same error etcd gives, and a committed change that no longer fits the table
changes nothing and answers that error.

One deliberate difference: etcd 3.4's MemberUpdate rewrites the member's raft attributes
without its learner flag, so `member list` then shows a learner as a voter while Raft still
treats it as a learner (seen with etcd 3.4.23; 3.5 keeps the flag). Here the flag is kept.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

import attrs

from etcdpb.etcdserverpb import raft_internal_pb2
from spec.errors import EtcdError
from spec.raft.types import ChangeAction, ConfigurationChange, NodeId

LEARNERS_MAX: Final = 1  # etcd 3.4 maxLearners
LEARNER_READY_FRACTION: Final = 0.9  # etcd readyPercent: a learner within 90% of the leader's match
HEALTH_INTERVAL_SECONDS: Final = 5.0  # etcd HealthInterval: peers connected at least this long


@attrs.frozen
class Member:
    member_id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False

    @property
    def started(self) -> bool:
        """etcd Member.IsStarted: the member has a name (from --initial-cluster or its publish)."""
        return bool(self.name)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.member_id,
            "name": self.name,
            "peer_urls": list(self.peer_urls),
            "client_urls": list(self.client_urls),
            "is_learner": self.is_learner,
        }

    @staticmethod
    def from_json(value: object) -> Member:
        if not isinstance(value, dict):
            raise ValueError("a member must be an object")
        member_id = value.get("id")
        if not isinstance(member_id, int) or not 0 < member_id < 1 << 64:
            raise ValueError("a member id must be a positive 64-bit integer")
        return Member(
            member_id,
            str(value.get("name", "")),
            tuple(str(url) for url in value.get("peer_urls", [])),
            tuple(str(url) for url in value.get("client_urls", [])),
            bool(value.get("is_learner", False)),
        )


def _sorted_by_id(items: Iterable[Member]) -> tuple[Member, ...]:
    return tuple(sorted(items, key=lambda member: member.member_id))


@attrs.frozen
class MemberTable:
    """Members sorted by id (etcd lists them so), and the ids removed for good."""

    members: tuple[Member, ...] = attrs.field(converter=_sorted_by_id)
    removed: frozenset[int] = frozenset()

    def get(self, member_id: int) -> Member | None:
        for member in self.members:
            if member.member_id == member_id:
                return member
        return None

    @property
    def voters(self) -> tuple[Member, ...]:
        return tuple(member for member in self.members if not member.is_learner)

    @property
    def learners(self) -> tuple[Member, ...]:
        return tuple(member for member in self.members if member.is_learner)

    def with_member(self, member: Member) -> MemberTable:
        others = [each for each in self.members if each.member_id != member.member_id]
        return MemberTable((*others, member), self.removed)

    def without(self, member_id: int) -> MemberTable:
        others = [each for each in self.members if each.member_id != member_id]
        return MemberTable(others, self.removed | {member_id})

    def peer_urls_in_use(self, excluding: int = 0) -> set[str]:
        return {
            url
            for member in self.members
            if member.member_id != excluding
            for url in member.peer_urls
        }

    def encode(self) -> bytes:
        return json.dumps(
            {
                "members": [member.to_json() for member in self.members],
                "removed": sorted(self.removed),
            },
            separators=(",", ":"),
        ).encode()

    @staticmethod
    def decode(data: bytes) -> MemberTable:
        """The table in `data`; raises ValueError for anything else."""
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError("a member table must be an object")
        members = [Member.from_json(item) for item in value.get("members", [])]
        removed = frozenset(int(item) for item in value.get("removed", []))
        return MemberTable(members, removed)


# --- ids ----------------------------------------------------------------------------------------


def added_member_id(peer_urls: Iterable[str], unix_seconds: int) -> int:
    """etcd computeMemberId for `member add`: SHA-1 of the sorted peer URLs, an empty cluster
    token and the time, first 8 bytes big-endian (so re-adding the same URLs gives a new id)."""
    text = "".join(sorted(peer_urls)) + str(unix_seconds)
    value: int = struct.unpack(">Q", hashlib.sha1(text.encode()).digest()[:8])[0]
    return value


def valid_peer_urls(peer_urls: Iterable[str]) -> bool:
    """etcd types.NewURLs: at least one URL, each http(s)://host:port with no path."""
    urls = list(peer_urls)
    if not urls:
        return False
    for url in urls:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
            return False
        if parts.path not in ("", "/"):
            return False
    return True


# --- etcd's checks before proposing -----------------------------------------------------------


def ready_to_add_voter(table: MemberTable) -> bool:
    """etcd IsReadyToAddVotingMember: the started voters stay a quorum of the grown cluster
    (a one-member cluster may always add a second)."""
    voters = table.voters
    member_count = len(voters) + 1
    started = sum(1 for member in voters if member.started)
    if started == 1 and member_count == 2:
        return True
    return started >= member_count // 2 + 1


def ready_to_remove_voter(table: MemberTable, member_id: int) -> bool:
    """etcd IsReadyToRemoveVotingMember: the started voters left are a quorum of those left."""
    others = [member for member in table.voters if member.member_id != member_id]
    started = sum(1 for member in others if member.started)
    return started >= len(others) // 2 + 1


def ready_to_promote(table: MemberTable) -> bool:
    """etcd IsReadyToPromoteMember: counting the learner as a started voter, a quorum is started."""
    voters = table.voters
    member_count = len(voters) + 1
    started = 1 + sum(1 for member in voters if member.started)
    return started >= member_count // 2 + 1


def fully_connected(table: MemberTable, local_id: int, connected_seconds: dict[int, float]) -> bool:
    """etcd isConnectedFullySince: every other voter connected for at least HealthInterval."""
    return all(
        connected_seconds.get(member.member_id, 0.0) >= HEALTH_INTERVAL_SECONDS
        for member in table.voters
        if member.member_id != local_id
    )


def active_quorum_after_removal(
    table: MemberTable, local_id: int, connected_seconds: dict[int, float]
) -> bool:
    """etcd mayRemoveMember's last check: the voters connected now, less the one removed, still
    make a quorum of the current voters."""
    voters = table.voters
    active = sum(
        1
        for member in voters
        if member.member_id == local_id
        or connected_seconds.get(member.member_id, 0.0) >= HEALTH_INTERVAL_SECONDS
    )
    return active - 1 >= 1 + (len(voters) - 1) // 2


def check_add(
    table: MemberTable, member: Member, local_id: int, connected_seconds: dict[int, float]
) -> EtcdError | None:
    """etcd AddMember before proposing: the quorum of started members, that every voter has
    been connected (so an unreachable member is not made a voter blindly), then the table's checks."""
    if not member.is_learner and not ready_to_add_voter(table):
        return EtcdError.MEMBER_NOT_ENOUGH_STARTED
    if not fully_connected(table, local_id, connected_seconds):
        return EtcdError.UNHEALTHY
    return validate_change(
        table, ChangeAction.ADD_LEARNER if member.is_learner else ChangeAction.ADD_VOTER, member
    )


def check_remove(
    table: MemberTable, member_id: int, local_id: int, connected_seconds: dict[int, float]
) -> EtcdError | None:
    """etcd mayRemoveMember, then ValidateConfigurationChange."""
    member = table.get(member_id)
    if member is None:
        return EtcdError.MEMBER_NOT_FOUND
    if member.is_learner:
        return None
    if not ready_to_remove_voter(table, member_id):
        return EtcdError.MEMBER_NOT_ENOUGH_STARTED
    if member_id != local_id and connected_seconds.get(member_id, 0.0) <= 0.0:
        return None  # a member that is down is not part of the active quorum
    if not active_quorum_after_removal(table, local_id, connected_seconds):
        return EtcdError.UNHEALTHY
    return None


def check_promote(
    table: MemberTable, member_id: int, learner_match: int | None, leader_match: int
) -> EtcdError | None:
    """etcd isLearnerReady (on the leader), IsReadyToPromoteMember, then the table's own checks."""
    if learner_match is not None and learner_match < leader_match * LEARNER_READY_FRACTION:
        return EtcdError.LEARNER_NOT_READY
    member = table.get(member_id)
    if member is None:
        return EtcdError.MEMBER_NOT_FOUND
    if not member.is_learner:
        return EtcdError.MEMBER_NOT_LEARNER
    if not ready_to_promote(table):
        return EtcdError.MEMBER_NOT_ENOUGH_STARTED
    return None


def check_update(
    table: MemberTable, member_id: int, peer_urls: tuple[str, ...]
) -> EtcdError | None:
    """etcd ValidateConfigurationChange for ConfChangeUpdateNode."""
    if table.get(member_id) is None:
        return EtcdError.MEMBER_NOT_FOUND
    if set(peer_urls) & table.peer_urls_in_use(excluding=member_id):
        return EtcdError.PEER_URL_EXISTS
    return None


def validate_change(table: MemberTable, action: ChangeAction, member: Member) -> EtcdError | None:
    """etcd ValidateConfigurationChange: what a committed change must still fit when applied."""
    member_id = member.member_id
    if member_id in table.removed:
        return EtcdError.MEMBER_NOT_FOUND  # etcd ErrIDRemoved, which its API reports so
    match action:
        case ChangeAction.ADD_VOTER | ChangeAction.ADD_LEARNER:
            if table.get(member_id) is not None:
                return EtcdError.MEMBER_EXISTS
            if set(member.peer_urls) & table.peer_urls_in_use():
                return EtcdError.PEER_URL_EXISTS
            if action is ChangeAction.ADD_LEARNER and len(table.learners) + 1 > LEARNERS_MAX:
                return EtcdError.TOO_MANY_LEARNERS
        case ChangeAction.REMOVE:
            if table.get(member_id) is None:
                return EtcdError.MEMBER_NOT_FOUND
        case ChangeAction.PROMOTE_LEARNER:
            existing = table.get(member_id)
            if existing is None:
                return EtcdError.MEMBER_NOT_FOUND
            if not existing.is_learner:
                return EtcdError.MEMBER_NOT_LEARNER
    return None


def apply_change(table: MemberTable, action: ChangeAction, member: Member) -> MemberTable:
    """The table after a validated change."""
    match action:
        case ChangeAction.ADD_VOTER | ChangeAction.ADD_LEARNER:
            return table.with_member(
                attrs.evolve(member, is_learner=action is ChangeAction.ADD_LEARNER)
            )
        case ChangeAction.REMOVE:
            return table.without(member.member_id)
        case ChangeAction.PROMOTE_LEARNER:
            existing = table.get(member.member_id)
            assert existing is not None
            return table.with_member(attrs.evolve(existing, is_learner=False))


# --- what the entries carry -------------------------------------------------------------------


def change_out(request_id: int, action: ChangeAction, member: Member) -> ConfigurationChange:
    """The Raft configuration change for a member change; its context names the request and member."""
    context = json.dumps(
        {"request_id": request_id, "member": member.to_json()}, separators=(",", ":")
    ).encode()
    return ConfigurationChange(action, NodeId(member.member_id), context)


def change_in(change: ConfigurationChange) -> tuple[int, Member]:
    """(request id, member) of a configuration change; a change without a context (written by the
    spec's own tests, say) names only the id. Raises ValueError for a malformed context."""
    if not change.context:
        return 0, Member(change.node, "", ())
    value = json.loads(change.context)
    if not isinstance(value, dict):
        raise ValueError("a change context must be an object")
    member = Member.from_json(value.get("member"))
    if member.member_id != change.node:
        raise ValueError("the change context names another member")
    request_id = value.get("request_id", 0)
    return (request_id if isinstance(request_id, int) else 0), member


_RAFT_ATTRIBUTES_PATH = "/0/members/{:x}/raftAttributes"


def update_out(request_id: int, member_id: int, peer_urls: tuple[str, ...]) -> bytes:
    """A peer-URL update as etcd's v2 store writes it: PUT /0/members/<id>/raftAttributes."""
    message = raft_internal_pb2.InternalRaftRequest()
    message.header.ID = request_id
    message.v2.ID = request_id
    message.v2.Method = "PUT"
    message.v2.Path = _RAFT_ATTRIBUTES_PATH.format(member_id)
    message.v2.Val = json.dumps({"peerURLs": list(peer_urls)}, separators=(",", ":"))
    return message.SerializeToString(deterministic=True)


def update_in(data: bytes) -> tuple[int, int, tuple[str, ...]] | None:
    """(request id, member id, peer URLs) when `data` is a peer-URL update, else None (never raises)."""
    try:
        message = raft_internal_pb2.InternalRaftRequest.FromString(data)
        if not message.HasField("v2") or message.v2.Method != "PUT":
            return None
        parts = message.v2.Path.split("/")
        if len(parts) != 5 or parts[1:3] != ["0", "members"] or parts[4] != "raftAttributes":
            return None
        value = json.loads(message.v2.Val)
        urls = tuple(str(url) for url in value.get("peerURLs", []))
        return message.header.ID or message.v2.ID, int(parts[3], 16), urls
    except (ValueError, AttributeError, TypeError):
        return None


# --- what a joining member asks its peers --------------------------------------------------------


@attrs.frozen
class ClusterInfo:
    """What an existing member tells one that joins (etcd GetClusterFromRemotePeers): the
    cluster id, the member table, and the membership the cluster was bootstrapped with (the
    joining member's log starts from it, as every member's does)."""

    cluster_id: int
    table: MemberTable
    bootstrap_voters: frozenset[int]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "cluster_id": self.cluster_id,
                "table": json.loads(self.table.encode()),
                "bootstrap_voters": sorted(self.bootstrap_voters),
            },
            separators=(",", ":"),
        ).encode()

    @staticmethod
    def decode(data: bytes) -> ClusterInfo:
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError("cluster information must be an object")
        cluster_id = value.get("cluster_id")
        if not isinstance(cluster_id, int) or cluster_id <= 0:
            raise ValueError("bad cluster id")
        table = MemberTable.decode(json.dumps(value.get("table", {})).encode())
        voters = frozenset(int(item) for item in value.get("bootstrap_voters", []))
        if not voters:
            raise ValueError("no bootstrap voters")
        return ClusterInfo(cluster_id, table, voters)


# --- requests and answers -------------------------------------------------------------------------


@attrs.frozen
class MemberRequest:
    """A Cluster service request, as the node's raft loop takes it."""

    action: str  # "add", "remove", "promote" or "update"
    member_id: int = 0
    peer_urls: tuple[str, ...] = ()
    is_learner: bool = False


@attrs.frozen
class MembershipChanged:
    """What a member change resolves to once applied: the member it concerned and the table after."""

    member: Member
    members: tuple[Member, ...]
