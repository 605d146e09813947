"""A catalog of Raft bugs that real implementations have had, each as a replacement for one spec function.

Each `SeededBug` names the rule it breaks and where such a bug was seen; `install` swaps the
buggy function in everywhere the original is referenced. tests/quality/test_raft_bugs.py shows
that the safety tests catch every one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from spec.raft import election, log, reads, replication, state, step
from spec.raft.io import NOTHING, Output, send
from spec.raft.messages import (
    AppendRequest,
    AppendResponse,
    HeartbeatRequest,
    Message,
    VoteRequest,
    VoteResponse,
)
from spec.raft.replication import (
    broadcast_append,
    leader_state_of,
    quorum_match_index,
    reply_accepted,
)
from spec.raft.state import NodeState, PersistedState
from spec.raft.types import Entry, EntryKind, LogIndex, NodeId, Settings

MODULE_PREFIXES = ("spec.", "models.", "tests.models.")


@attrs.frozen
class SeededBug:
    name: str
    breaks: str  # the rule, with its source
    seen_in: str  # where such a bug was reported
    target: tuple[Any, str]  # (module or class, attribute) of the function replaced
    replacement: Callable[..., Any]

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Replace the function in its home and wherever it was imported by name."""
        home, attribute = self.target
        original = getattr(home, attribute)
        monkeypatch.setattr(home, attribute, self.replacement)
        for name, module in list(sys.modules.items()):
            if module is None or not name.startswith(MODULE_PREFIXES):
                continue
            for key, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, key, self.replacement)


# --- The buggy functions ----------------------------------------------------------------------------


def vote_without_log_check(s: NodeState, m: VoteRequest) -> tuple[NodeState, Output]:
    can_vote = (
        s.vote == m.sender
        or (s.vote is None and s.leader is None)
        or (m.pre_vote and m.term > s.term)
    )
    granted = can_vote  # BUG: the candidate's log is never compared with ours
    if granted and not m.pre_vote:
        s = attrs.evolve(s, vote=m.sender, election_elapsed_ticks=0)
    term = m.term if granted and m.pre_vote else s.term
    return s, send(VoteResponse(s.node_id, m.sender, term, granted, m.pre_vote))


def vote_twice_in_term(s: NodeState, m: VoteRequest) -> tuple[NodeState, Output]:
    can_vote = s.leader is None or (
        m.pre_vote and m.term > s.term
    )  # BUG: an earlier vote this term is ignored
    granted = can_vote and s.log.is_up_to_date(m.last_log_term, m.last_log_index)
    if granted and not m.pre_vote:
        s = attrs.evolve(s, vote=m.sender, election_elapsed_ticks=0)
    term = m.term if granted and m.pre_vote else s.term
    return s, send(VoteResponse(s.node_id, m.sender, term, granted, m.pre_vote))


def commit_by_counting_old_term(s: NodeState) -> tuple[NodeState, Output]:
    candidate = quorum_match_index(s)
    if (
        candidate <= s.commit_index
    ):  # BUG: no check that the entry is of the current term (Figure 8)
        return s, NOTHING
    return broadcast_append(attrs.evolve(s, commit_index=candidate), allow_empty=True)


def truncate_on_matching_append(
    self: log.Log, previous_index: int, incoming: tuple[Entry, ...]
) -> tuple[log.Log, LogIndex | None]:
    if not incoming:
        return self, None
    kept = self.entries[
        : previous_index - self.snapshot.index
    ]  # BUG: cuts the log even where entries match
    return log.Log(self.snapshot, kept + incoming), incoming[0].index


def commit_to_own_last_index(s: NodeState, m: AppendRequest) -> tuple[NodeState, Output]:
    if m.previous_index < s.commit_index:
        return s, send(reply_accepted(s, m.sender, s.commit_index))
    if not s.log.matches(m.previous_index, m.previous_term):
        hint_index, hint_term = s.log.find_conflict_by_term(
            min(m.previous_index, s.log.last_index), m.previous_term
        )
        return s, send(
            AppendResponse(
                s.node_id, m.sender, s.term, m.previous_index, True, hint_index, hint_term
            )
        )
    new_log, first_written = s.log.merge_after(m.previous_index, m.entries)
    output = (
        NOTHING
        if first_written is None
        else Output(entries_to_persist=new_log.entries_after(first_written - 1))
    )
    commit = LogIndex(
        max(s.commit_index, min(m.commit, new_log.last_index))
    )  # BUG: not the last *new* entry
    durable = (
        s.durable_index
        if first_written is None
        else LogIndex(min(s.durable_index, first_written - 1))
    )
    s = attrs.evolve(s, log=new_log, commit_index=commit, durable_index=durable)
    return s, output.then(
        send(reply_accepted(s, m.sender, LogIndex(m.previous_index + len(m.entries))))
    )


def settle_without_hard_state(
    before: NodeState, after: NodeState, output: Output
) -> tuple[NodeState, Output]:
    after, more = ORIGINAL_SETTLE(before, after, output)
    return after, attrs.evolve(
        more, hard_state_to_persist=None
    )  # BUG: term and vote never reach the disk


def prevote_takes_term(message: Message) -> bool:
    return False  # BUG: a PreVote request moves the receiver to the proposed term


def leader_overwrites_uncommitted(
    s: NodeState, data: bytes, kind: EntryKind
) -> tuple[NodeState, Output]:
    index = LogIndex(
        s.commit_index + 1
    )  # BUG: writes after the commit index, over its own uncommitted entries
    entry = Entry(s.term, index, kind, data)
    kept = s.log.entries[: index - s.log.snapshot.index - 1]
    s = attrs.evolve(
        s,
        log=log.Log(s.log.snapshot, (*kept, entry)),
        durable_index=LogIndex(min(s.durable_index, index - 1)),
    )
    return s, Output(entries_to_persist=(entry,))


def read_without_own_term_commit(s: NodeState) -> bool:
    return True  # BUG: a new leader's commit index may be behind what was committed before it


def append_without_consistency_check(s: NodeState, m: AppendRequest) -> tuple[NodeState, Output]:
    if (
        s.log.term_at(m.previous_index) is not None
    ):  # BUG: only checks that the index exists, not its term
        m = attrs.evolve(m, previous_term=s.log.term_at(m.previous_index))
    return ORIGINAL_APPEND_REQUEST(s, m)


def count_duplicate_votes(s: NodeState, m: VoteResponse) -> tuple[NodeState, Output]:
    from spec.raft.election import election_won
    from spec.raft.types import Role

    expected = Role.PRE_CANDIDATE if m.pre_vote else Role.CANDIDATE
    if s.role is not expected or m.sender not in s.membership.voters:
        return s, NOTHING
    key = (
        NodeId(-len(s.votes) - 1) if m.granted else m.sender
    )  # BUG: every granted answer counts, duplicates too
    s = attrs.evolve(s, votes={**s.votes, key: m.granted})
    if sum(1 for granted in s.votes.values() if granted) >= s.membership.quorum_size:
        return election_won(s)
    return s, NOTHING


def accept_stale_terms(s: NodeState, m: Message) -> tuple[NodeState, Output]:
    if m.term < s.term:  # BUG: an old leader's messages are handled as if current
        m = attrs.evolve(m, term=s.term)
    return ORIGINAL_ON_MESSAGE(s, m)


def restart_commits_everything(
    node_id: NodeId, persisted: PersistedState, settings: Settings, random_seed: int
) -> NodeState:
    hard = attrs.evolve(
        persisted.hard_state, commit=persisted.log.last_index
    )  # BUG: trusts the whole durable log
    return ORIGINAL_RESTART(node_id, PersistedState(hard, persisted.log), settings, random_seed)


def install_any_snapshot(s: NodeState, m: Any) -> tuple[NodeState, Output]:
    snapshot = m.snapshot  # BUG: an older snapshot replaces a longer committed log
    s = attrs.evolve(
        s,
        log=log.Log(snapshot),
        commit_index=snapshot.index,
        membership=snapshot.membership,
        durable_index=snapshot.index,
        emitted_index=snapshot.index,
        applied_index=snapshot.index,
    )
    return s, Output(snapshot_to_persist=snapshot).then(
        send(reply_accepted(s, m.sender, snapshot.index))
    )


def heartbeat_with_full_commit(
    s: NodeState, read_context: bytes | None
) -> tuple[NodeState, Output]:
    leader = leader_state_of(s)
    messages = [  # BUG: the commit is not capped at what the follower is known to match
        HeartbeatRequest(s.node_id, peer, s.term, s.commit_index, read_context)
        for peer in sorted(leader.progress)
    ]
    return attrs.evolve(s, heartbeat_elapsed_ticks=0), send(*messages)


def change_without_pending_check(s: NodeState, change: Any) -> Any:
    from spec.raft.io import RefusalReason
    from spec.raft.proposals import refusal_reason_for_proposal

    reason = refusal_reason_for_proposal(s)
    if reason is not None:
        return reason
    if not reads.committed_in_current_term(s):
        return RefusalReason.NO_COMMIT_IN_TERM
    changed = s.membership.apply(change)  # BUG: a second change may start while one is uncommitted
    return RefusalReason.BAD_REQUEST if changed == s.membership or not changed.voters else None


def never_step_down(s: NodeState) -> tuple[NodeState, Output]:
    return s, NOTHING  # BUG: a leader cut off from its majority keeps serving reads


def apply_uncommitted(s: NodeState, output: Output) -> tuple[NodeState, Output]:
    last = min(
        s.durable_index, s.log.last_index
    )  # BUG: hands out entries that are durable but not committed
    if last <= s.emitted_index:
        return s, output
    first = max(s.emitted_index + 1, s.log.first_index)
    entries = s.log.slice(first, last - first + 1)
    return attrs.evolve(s, emitted_index=LogIndex(last)), output.then(
        Output(committed_entries=entries)
    )


def read_without_confirmation(
    s: NodeState, context: bytes, requester: NodeId
) -> tuple[NodeState, Output]:
    if not reads.committed_in_current_term(s):
        return ORIGINAL_LEADER_READ(s, context, requester)
    return s, reads.answer_read(
        s, context, requester, s.commit_index
    )  # BUG: no heartbeat round confirms leadership


def commit_counting_learners(s: NodeState) -> Any:
    leader = leader_state_of(s)
    members = (
        s.membership.voters | s.membership.learners
    )  # BUG: learners are counted toward the majority
    matches = sorted(
        (
            s.durable_index if m == s.node_id else leader.progress[m].match_index
            for m in members
            if m == s.node_id or m in leader.progress
        ),
        reverse=True,
    )
    quorum = s.membership.quorum_size
    return s.commit_index if len(matches) < quorum else LogIndex(matches[quorum - 1])


def count_own_entries_before_durable(s: NodeState) -> Any:
    leader = leader_state_of(s)
    matches = sorted(  # BUG: the leader counts its whole log, written to disk or not
        (
            s.log.last_index if v == s.node_id else leader.progress[v].match_index
            for v in s.membership.voters
            if v == s.node_id or v in leader.progress
        ),
        reverse=True,
    )
    quorum = s.membership.quorum_size
    return s.commit_index if len(matches) < quorum else LogIndex(matches[quorum - 1])


ORIGINAL_SETTLE = step.settle
ORIGINAL_LEADER_READ = reads.leader_read
ORIGINAL_APPEND_REQUEST = replication.on_append_request
ORIGINAL_ON_MESSAGE = step.on_message
ORIGINAL_RESTART = state.restart

from spec.raft import proposals  # noqa: E402

CATALOG: tuple[SeededBug, ...] = (
    SeededBug(
        "vote-without-log-check",
        "grant only to an up-to-date log (Raft §5.4.1)",
        "SandTable: Xraft two leaders",
        (election, "on_vote_request"),
        vote_without_log_check,
    ),
    SeededBug(
        "vote-twice-in-term",
        "one vote per term (Raft §5.2)",
        "daos raft #70, akka-raft #50",
        (election, "on_vote_request"),
        vote_twice_in_term,
    ),
    SeededBug(
        "truncate-on-matching-append",
        "truncate only at a conflict (Raft Figure 2, step 3)",
        "raftos #26",
        (log.Log, "merge_after"),
        truncate_on_matching_append,
    ),
    SeededBug(
        "hard-state-not-persisted",
        "persist term and vote before answering (thesis §3.8)",
        "etcd msgsAfterAppend rule",
        (step, "settle"),
        settle_without_hard_state,
    ),
    SeededBug(
        "prevote-bumps-term",
        "PreVote changes no term (thesis §9.6)",
        "etcd #8243 family",
        (step, "keeps_term_on_higher_term"),
        prevote_takes_term,
    ),
    SeededBug(
        "leader-overwrites-own-entries",
        "a leader only appends (Raft Figure 3)",
        "raftos #26 (erasing entries)",
        (replication, "append_to_own_log"),
        leader_overwrites_uncommitted,
    ),
    SeededBug(
        "read-before-own-term-commit",
        "ReadIndex waits for a commit in the leader's term (thesis §6.4)",
        "etcd pendingReadIndexMessages",
        (reads, "committed_in_current_term"),
        read_without_own_term_commit,
    ),
    SeededBug(
        "append-without-consistency-check",
        "reject when previous entry's term differs (Raft §5.3)",
        "SandTable: raftos #25",
        (replication, "on_append_request"),
        append_without_consistency_check,
    ),
    SeededBug(
        "count-duplicate-votes",
        "each voter counts once (Raft §5.2)",
        "akka-raft #50",
        (election, "on_vote_response"),
        count_duplicate_votes,
    ),
    SeededBug(
        "restart-commits-whole-log",
        "commit survives only as persisted (thesis §3.8)",
        "etcd checks commit against the log",
        (state, "restart"),
        restart_commits_everything,
    ),
    SeededBug(
        "heartbeat-commit-uncapped",
        "send a follower commit no higher than its match (etcd sendHeartbeat)",
        "etcd-io/raft heartbeat commit",
        (replication, "broadcast_heartbeat"),
        heartbeat_with_full_commit,
    ),
    SeededBug(
        "apply-uncommitted-entries",
        "apply only committed entries (Raft §5.3)",
        "a classic apply-loop bug",
        (step, "emit_committed_entries"),
        apply_uncommitted,
    ),
    SeededBug(
        "read-without-leadership-check",
        "confirm leadership before serving a read index (thesis §6.4 step 3)",
        "etcd ReadOnlyLeaseBased without CheckQuorum",
        (reads, "leader_read"),
        read_without_confirmation,
    ),
    SeededBug(
        "leader-counts-undurable-entries",
        "a leader counts itself only for entries on its disk (thesis §10.2.1)",
        "etcd MsgStorageAppendResp ordering",
        (replication, "quorum_match_index"),
        count_own_entries_before_durable,
    ),
    SeededBug(
        "commit-counts-learners",
        "learners never count toward a majority (etcd learners)",
        "etcd learner design notes",
        (replication, "quorum_match_index"),
        commit_counting_learners,
    ),
)

# Bugs the ci budget does not yet catch, kept so their replacements stay ready for deeper search
# (ETCDREF_DEEP=1 tries them too). Why each is hard here:
# - commit-earlier-term-by-counting: a new leader appends its no-op at once, so the old entry is
#   almost always acknowledged together with a current-term entry (Figure 8 needs the
#   acknowledgement of the old entry alone, then a crash before the no-op is replicated).
#   tests/models/test_figure_8.py plays Figure 8 step by step and catches it there.
# - commit-beyond-new-entries: a follower's stale suffix beyond the matched entries is replaced by
#   the leader's first successful append in this design; it needs one-entry messages whose
#   entries end before the conflict, and a leader commit past them.
# - accept-stale-terms: treating an old message as current is harmful mainly for vote responses
#   from an earlier election of the same candidate, which the schedules rarely produce.
# - install-stale-snapshot: needs a snapshot message delayed or duplicated until after the follower
#   has moved past it; caught at seed 283 while storage was always synchronous, not since
#   schedules also draw asynchronous storage.
# - second-membership-change-while-pending: disjoint majorities need two uncommitted changes and a
#   leader elected by the old configuration while the new one commits (five servers).
HARD_TO_CATCH: tuple[SeededBug, ...] = (
    SeededBug(
        "install-stale-snapshot",
        "ignore a snapshot at or below commit (Raft §7)",
        "etcd raft restore()",
        (replication, "on_snapshot_request"),
        install_any_snapshot,
    ),
    SeededBug(
        "commit-earlier-term-by-counting",
        "commit only current-term entries by counting (Raft §5.4.2)",
        "PySyncObj #169",
        (replication, "advance_commit"),
        commit_by_counting_old_term,
    ),
    SeededBug(
        "commit-beyond-new-entries",
        "commit = min(leaderCommit, last new entry) (Figure 2, step 5)",
        "common in student Raft labs",
        (replication, "on_append_request"),
        commit_to_own_last_index,
    ),
    SeededBug(
        "accept-stale-terms",
        "ignore messages from older terms (Raft §5.1)",
        "willemt/raft #118",
        (step, "on_message"),
        accept_stale_terms,
    ),
    SeededBug(
        "second-membership-change-while-pending",
        "one membership change at a time (thesis §4.1)",
        "etcd pendingConfIndex",
        (proposals, "refusal_reason_for_change"),
        change_without_pending_check,
    ),
)
