-------------------------------- MODULE Raft --------------------------------
(***************************************************************************)
(* A TLA+ mirror of spec/raft, the etcdref Raft state machine.             *)
(*                                                                         *)
(* Each Python function of spec/raft that makes a protocol decision has an *)
(* operator here with the same name in CamelCase (on_vote_request ->       *)
(* OnVoteRequest), written as the Python is: a pure operator from a node   *)
(* state (a record, the Python NodeState) and an input to a record         *)
(* [state |-> next node state, output |-> what the host must act on].      *)
(* spec/tla/README.md has the table of every operator and its Python twin; *)
(* tests/spec/test_tla.py checks that both sides of every row exist.       *)
(*                                                                         *)
(* The cluster around the nodes (models/cluster.py) is the part written as *)
(* TLA+ actions: a bag of messages in flight that may be delivered in any  *)
(* order, dropped or duplicated, crashes and restarts, and the host's      *)
(* reports back to the node (StorageAcknowledged, Applied).                *)
(*                                                                         *)
(* Variables come in two groups, kept apart on purpose:                    *)
(*   protocol state: nodes, running, messages (what real servers and the   *)
(*     network hold);                                                      *)
(*   history (ghost) state: history, crashes (what no server could know;   *)
(*     only the invariants and the model-checking bounds read them, and    *)
(*     MCRaft's VIEW leaves them out of the state fingerprint).            *)
(*                                                                         *)
(* Simplifications against the Python are marked "SIMPLIFIED:" where they  *)
(* are made; spec/tla/README.md lists them all.                            *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets, Bags, TLC

CONSTANTS
    Server,              \* node ids (model values)
    InitVoters,          \* the bootstrap membership (types.Membership at index 0)
    Value,               \* data a client may propose
    Nil,                 \* Python None: no vote, no leader, no term, no entry
    PreVoteEnabled,      \* Settings.pre_vote
    CheckQuorumEnabled,  \* Settings.check_quorum
    EntriesPerMessageMax,\* Settings.entries_per_message_max
    InflightAppendsMax,  \* Settings.inflight_appends_max
    SynchronousStorage   \* TRUE: the host reports durability and applying at once, as models/cluster.py does

ASSUME /\ Nil \notin Server                 \* a vote for Nil must never be a vote for a server
       /\ InitVoters \subseteq Server /\ InitVoters # {}
       /\ PreVoteEnabled \in BOOLEAN /\ CheckQuorumEnabled \in BOOLEAN
       /\ SynchronousStorage \in BOOLEAN
       /\ EntriesPerMessageMax \in Nat \ {0} /\ InflightAppendsMax \in Nat \ {0}

VARIABLES
    nodes,     \* nodes[i]: the NodeState record of server i (its last state while it is down)
    running,   \* running[i]: FALSE while i is crashed (cluster.nodes[i] is None)
    messages   \* the network: a bag of messages in flight (cluster.network)

VARIABLES
    history,   \* ghost: models/cluster.Ghost (leaders, campaigns, votes, commits, applied, reads)
    crashes    \* ghost bookkeeping: crashes so far, for the model-checking bound (cluster.restarts + down)

protocolVars == <<nodes, running, messages>>
historyVars == <<history, crashes>>
vars == <<nodes, running, messages, history, crashes>>

Min(a, b) == IF a <= b THEN a ELSE b
Max(a, b) == IF a >= b THEN a ELSE b
SetMax(S) == CHOOSE x \in S : \A y \in S : y <= x
SetMin(S) == CHOOSE x \in S : \A y \in S : x <= y

-----------------------------------------------------------------------------
(***************************************************************************)
(* types.py: roles, entries, membership                                    *)
(***************************************************************************)

Follower == "follower"
PreCandidate == "pre-candidate"
Candidate == "candidate"
Leader == "leader"

Normal == "normal"
Configuration == "configuration"

\* An entry: its term, its kind, and either a client value (Nil for a new leader's empty entry) or a
\* membership change. The index is the entry's place in the log (types.Entry carries it explicitly).
\* SIMPLIFIED: a change is carried as a record, not encoded as bytes, so ConfigurationChange.decode
\* cannot fail here; its opaque `context` (the host's record, never read by Raft) is left out.
NormalEntry(term, value) == [term |-> term, kind |-> Normal, value |-> value, change |-> Nil]
ConfigurationEntry(term, change) ==
    [term |-> term, kind |-> Configuration, value |-> Nil, change |-> change]

ChangeActions == {"add-voter", "add-learner", "promote-learner", "remove"}
ConfigurationChanges == [action : ChangeActions, node : Server]

Membership(voters, learners) == [voters |-> voters, learners |-> learners]
Members(membership) == membership.voters \cup membership.learners
QuorumSize(membership) == Cardinality(membership.voters) \div 2 + 1

\* Membership.apply: the membership after one change; a change that does not fit changes nothing.
Apply(membership, change) ==
    LET voters == membership.voters
        learners == membership.learners
        node == change.node
    IN CASE change.action = "add-voter" -> Membership(voters \cup {node}, learners \ {node})
         [] change.action = "add-learner" ->
                IF node \in voters THEN membership ELSE Membership(voters, learners \cup {node})
         [] change.action = "promote-learner" ->
                IF node \notin learners THEN membership
                ELSE Membership(voters \cup {node}, learners \ {node})
         [] OTHER -> Membership(voters \ {node}, learners \ {node})

-----------------------------------------------------------------------------
(***************************************************************************)
(* log.py: the log as a snapshot point followed by entries.                *)
(* A node record s holds s.snapshot = [index, term, membership] and        *)
(* s.log = the entries after it; the entry at index k is                   *)
(* s.log[k - s.snapshot.index].                                            *)
(* SIMPLIFIED: a snapshot carries no application data (Snapshot.data).     *)
(***************************************************************************)

Snapshot(index, term, membership) == [index |-> index, term |-> term, membership |-> membership]

FirstIndex(s) == s.snapshot.index + 1
LastIndex(s) == s.snapshot.index + Len(s.log)
LastTerm(s) == IF Len(s.log) > 0 THEN s.log[Len(s.log)].term ELSE s.snapshot.term

\* Log.term_at: Nil if compacted (below the snapshot) or beyond the log.
TermAt(s, index) ==
    IF index = s.snapshot.index THEN s.snapshot.term
    ELSE IF index < s.snapshot.index \/ index > LastIndex(s) THEN Nil
    ELSE s.log[index - s.snapshot.index].term

EntryAt(s, index) ==
    IF index <= s.snapshot.index \/ index > LastIndex(s) THEN Nil
    ELSE s.log[index - s.snapshot.index]

Matches(s, index, term) == TermAt(s, index) = term

\* Log.slice: up to countMax entries starting at first (first is not compacted).
Slice(s, first, countMax) ==
    LET start == first - s.snapshot.index
    IN SubSeq(s.log, start, Min(Len(s.log), start + countMax - 1))

EntriesAfter(s, index) ==
    LET start == Max(0, index - s.snapshot.index)
    IN IF start >= Len(s.log) THEN <<>> ELSE SubSeq(s.log, start + 1, Len(s.log))

\* Log.is_up_to_date (Raft §5.4.1): (lastTerm, lastIndex) >= ours, compared as pairs.
IsUpToDate(s, lastTerm, lastIndex) ==
    \/ lastTerm > LastTerm(s)
    \/ lastTerm = LastTerm(s) /\ lastIndex >= LastIndex(s)

\* Log.find_conflict_by_term: the largest index <= index whose term is <= term, with that term.
FindConflictByTerm(s, index, term) ==
    LET candidates == {k \in (s.snapshot.index + 1)..Min(index, LastIndex(s)) : TermAt(s, k) <= term}
    IN IF candidates = {} THEN <<s.snapshot.index, s.snapshot.term>>
       ELSE <<SetMax(candidates), TermAt(s, SetMax(candidates))>>

\* Log.append
AppendEntry(s, entry) == [s EXCEPT !.log = Append(@, entry)]

\* Log.merge_after: add incoming (which follow previousIndex), truncating only at the first
\* conflict; entries that already match are kept, so a late or duplicated append never shortens
\* the log. Returns [log |-> the new entries, firstWritten |-> first index written, or Nil].
MergeAfter(s, previousIndex, incoming) ==
    LET conflicts == {offset \in 1..Len(incoming) :
                        /\ previousIndex + offset > s.snapshot.index
                        /\ TermAt(s, previousIndex + offset) # incoming[offset].term}
    IN IF conflicts = {} THEN [log |-> s.log, firstWritten |-> Nil]
       ELSE LET offset == SetMin(conflicts)
                index == previousIndex + offset
                kept == SubSeq(s.log, 1, index - s.snapshot.index - 1)
            IN [log |-> kept \o SubSeq(incoming, offset, Len(incoming)), firstWritten |-> index]

\* Log.compacted_to: the snapshot replaces the prefix up to its index.
CompactedTo(s, snapshot) ==
    [s EXCEPT !.snapshot = snapshot, !.log = EntriesAfter(s, snapshot.index)]

-----------------------------------------------------------------------------
(***************************************************************************)
(* messages.py: every message between nodes, as a record with a type tag.  *)
(* SIMPLIFIED: entries in an AppendRequest are contiguous by construction, *)
(* and ids and terms are always in range, so the checks Python makes on    *)
(* untrusted input (is_well_formed_append's contiguity, sender <= 0,       *)
(* term < 0) have nothing to reject here.                                  *)
(***************************************************************************)

VoteRequest(sender, recipient, term, lastLogIndex, lastLogTerm, preVote, transfer) ==
    [type |-> "VoteRequest", sender |-> sender, recipient |-> recipient, term |-> term,
     lastLogIndex |-> lastLogIndex, lastLogTerm |-> lastLogTerm, preVote |-> preVote,
     transfer |-> transfer]

VoteResponse(sender, recipient, term, granted, preVote) ==
    [type |-> "VoteResponse", sender |-> sender, recipient |-> recipient, term |-> term,
     granted |-> granted, preVote |-> preVote]

AppendRequest(sender, recipient, term, previousIndex, previousTerm, entries, commit) ==
    [type |-> "AppendRequest", sender |-> sender, recipient |-> recipient, term |-> term,
     previousIndex |-> previousIndex, previousTerm |-> previousTerm, entries |-> entries,
     commit |-> commit]

AppendResponse(sender, recipient, term, index, rejected, hintIndex, hintTerm) ==
    [type |-> "AppendResponse", sender |-> sender, recipient |-> recipient, term |-> term,
     index |-> index, rejected |-> rejected, hintIndex |-> hintIndex, hintTerm |-> hintTerm]

HeartbeatRequest(sender, recipient, term, commit, readContext) ==
    [type |-> "HeartbeatRequest", sender |-> sender, recipient |-> recipient, term |-> term,
     commit |-> commit, readContext |-> readContext]

HeartbeatResponse(sender, recipient, term, readContext) ==
    [type |-> "HeartbeatResponse", sender |-> sender, recipient |-> recipient, term |-> term,
     readContext |-> readContext]

SnapshotRequest(sender, recipient, term, snapshot) ==
    [type |-> "SnapshotRequest", sender |-> sender, recipient |-> recipient, term |-> term,
     snapshot |-> snapshot]

TimeoutNow(sender, recipient, term) ==
    [type |-> "TimeoutNow", sender |-> sender, recipient |-> recipient, term |-> term]

ReadIndexRequest(sender, recipient, term, context) ==
    [type |-> "ReadIndexRequest", sender |-> sender, recipient |-> recipient, term |-> term,
     context |-> context]

ReadIndexResponse(sender, recipient, term, context, index) ==
    [type |-> "ReadIndexResponse", sender |-> sender, recipient |-> recipient, term |-> term,
     context |-> context, index |-> index]

\* messages.LEADER_MESSAGES
LeaderMessageTypes == {"AppendRequest", "HeartbeatRequest", "SnapshotRequest"}

-----------------------------------------------------------------------------
(***************************************************************************)
(* io.py: outputs. An output holds the messages to send (a bag), the reads *)
(* that are ready, and the committed entries handed out for applying.      *)
(* SIMPLIFIED: storage is written before messages leave (as in             *)
(* models/cluster.py), so entries_to_persist, hard_state_to_persist and    *)
(* after_persistence need no representation: the node record is what is   *)
(* durable. Refusals change no state and are left out.                     *)
(***************************************************************************)

NOTHING == [msgs |-> EmptyBag, reads |-> {}, committed |-> {}]

\* Output.then: this output followed by a later one.
Then(first, later) ==
    [msgs |-> first.msgs (+) later.msgs,
     reads |-> first.reads \cup later.reads,
     committed |-> first.committed \cup later.committed]

\* io.send
Send(messageSet) == [NOTHING EXCEPT !.msgs = SetToBag(messageSet)]

ReadReady(context, index) == [context |-> context, index |-> index]

\* A handler's answer: (state, output) in Python.
Result(s, output) == [state |-> s, output |-> output]

-----------------------------------------------------------------------------
(***************************************************************************)
(* state.py: one node's state.                                             *)
(* SIMPLIFIED (abstract time, as in Ongaro's spec): there are no tick      *)
(* counters and no random timeouts. electionElapsed is TRUE when at least  *)
(* election_ticks have passed since the node last heard from a leader or   *)
(* granted a vote (election_elapsed_ticks >= election_ticks); the          *)
(* randomized timeout firing is the ElectionTimeout action, which may      *)
(* happen at any step. LeaderState is flattened into the node record: a    *)
(* node that is not leader has empty progress and reads and no transfer    *)
(* target (spec/raft/invariants.py checks the same "iff").                 *)
(***************************************************************************)

ProbeMode == "probe"
ReplicateMode == "replicate"
SnapshotMode == "snapshot"

\* state.Progress, as built by become_leader: match 0, next just past the leader's log.
NewProgress(nextIndex) ==
    [match |-> 0, next |-> nextIndex, mode |-> ProbeMode, probeSent |-> FALSE,
     inflight |-> <<>>, pendingSnapshot |-> 0, recentlyActive |-> FALSE]

\* Progress.paused; the in-flight bound is checked by the sender.
Paused(progress) ==
    CASE progress.mode = ProbeMode -> progress.probeSent
      [] progress.mode = ReplicateMode -> FALSE
      [] OTHER -> progress.probeSent

NoVotes == [voter \in {} |-> FALSE]
NoProgress == [peer \in {} |-> NewProgress(0)]

\* NodeState.promotable (etcd raft.promotable)
Promotable(s) == s.id \in s.membership.voters

\* state.membership_at: the snapshot's membership changed by each configuration entry up to index.
RECURSIVE MembershipAfter(_, _)
MembershipAfter(membership, entries) ==
    IF entries = <<>> THEN membership
    ELSE LET entry == Head(entries)
             changed == IF entry.kind = Configuration THEN Apply(membership, entry.change)
                        ELSE membership
         IN MembershipAfter(changed, Tail(entries))

MembershipAt(s, index) ==
    MembershipAfter(s.snapshot.membership,
                    SubSeq(s.log, 1, Max(0, Min(Len(s.log), index - s.snapshot.index))))

\* state.initial_state: a brand-new node of a cluster bootstrapped with InitVoters at index 0.
InitialState(i) ==
    [id |-> i, term |-> 0, vote |-> Nil,
     snapshot |-> Snapshot(0, 0, Membership(InitVoters, {})), log |-> <<>>,
     commitIndex |-> 0,
     role |-> Follower, leader |-> Nil, membership |-> Membership(InitVoters, {}),
     durableIndex |-> 0, emittedIndex |-> 0, appliedIndex |-> 0,
     electionElapsed |-> FALSE, votes |-> NoVotes,
     progress |-> NoProgress, reads |-> <<>>, readsAwaitingCommit |-> <<>>, transferTarget |-> Nil]

\* state.restart: a node rebuilt from its durable state (term, vote, commit, snapshot, log), a
\* follower that knows no leader. Commit is capped at the durable log.
RestartState(s) ==
    LET commit == Max(s.snapshot.index, Min(s.commitIndex, LastIndex(s)))
    IN [s EXCEPT !.commitIndex = commit, !.role = Follower, !.leader = Nil,
                 !.membership = MembershipAt(s, commit),
                 !.durableIndex = LastIndex(s), !.emittedIndex = s.snapshot.index,
                 !.appliedIndex = s.snapshot.index, !.electionElapsed = FALSE, !.votes = NoVotes,
                 !.progress = NoProgress, !.reads = <<>>, !.readsAwaitingCommit = <<>>,
                 !.transferTarget = Nil]

-----------------------------------------------------------------------------
(***************************************************************************)
(* roles.py: the only operators that change a node's role.                 *)
(***************************************************************************)

\* roles.become_follower: the vote is kept only if the term does not change.
\* SIMPLIFIED: the refusals of reads lost on step-down (reads_lost_on_step_down) are not output.
BecomeFollower(s, term, leader) ==
    [s EXCEPT !.role = Follower, !.term = term,
              !.vote = IF term = s.term THEN s.vote ELSE Nil,
              !.leader = leader, !.electionElapsed = FALSE, !.votes = NoVotes,
              !.progress = NoProgress, !.reads = <<>>, !.readsAwaitingCommit = <<>>,
              !.transferTarget = Nil]

\* roles.become_pre_candidate: PreVote round, term and vote unchanged (thesis §9.6).
BecomePreCandidate(s) ==
    [s EXCEPT !.role = PreCandidate, !.leader = Nil, !.electionElapsed = FALSE,
              !.votes = (s.id :> TRUE)]

\* roles.become_candidate: increment the term, vote for yourself (Raft §5.2).
BecomeCandidate(s) ==
    [s EXCEPT !.role = Candidate, !.term = s.term + 1, !.vote = s.id, !.leader = Nil,
              !.electionElapsed = FALSE, !.votes = (s.id :> TRUE)]

\* roles.become_leader: every member but itself starts in probe mode just past the leader's log.
BecomeLeader(s) ==
    [s EXCEPT !.role = Leader, !.leader = s.id, !.electionElapsed = FALSE, !.votes = NoVotes,
              !.progress = [peer \in Members(s.membership) \ {s.id} |-> NewProgress(LastIndex(s) + 1)],
              !.reads = <<>>, !.readsAwaitingCommit = <<>>, !.transferTarget = Nil]

-----------------------------------------------------------------------------
(***************************************************************************)
(* replication.py: AppendEntries, heartbeats, snapshots, flow control and  *)
(* the commit rule.                                                        *)
(***************************************************************************)

WithProgress(s, peer, progress) == [s EXCEPT !.progress[peer] = progress]

\* replication.append_to_own_log: a new entry of the leader's term at the end (leaders never overwrite).
AppendToOwnLog(s, value, change, kind) ==
    AppendEntry(s, [term |-> s.term, kind |-> kind, value |-> value, change |-> change])

\* replication.send_snapshot: the follower's next entry was compacted (Raft §7).
SendSnapshot(s, peer) ==
    LET progress == [s.progress[peer] EXCEPT !.mode = SnapshotMode,
                                             !.pendingSnapshot = s.snapshot.index,
                                             !.probeSent = TRUE, !.inflight = <<>>]
    IN Result(WithProgress(s, peer, progress),
              Send({SnapshotRequest(s.id, peer, s.term, s.snapshot)}))

\* replication.send_append: the next entries peer lacks, under flow control (etcd Progress):
\* PROBE one unanswered append, REPLICATE at most InflightAppendsMax, SNAPSHOT nothing until
\* the snapshot is acknowledged.
SendAppend(s, peer, allowEmpty) ==
    LET progress == s.progress[peer]
        previousIndex == progress.next - 1
        previousTerm == TermAt(s, previousIndex)
        entries == IF progress.next <= LastIndex(s)
                   THEN Slice(s, progress.next, EntriesPerMessageMax) ELSE <<>>
        lastSent == previousIndex + Len(entries)
        sent == CASE progress.mode = ProbeMode -> [progress EXCEPT !.probeSent = TRUE]
                  [] entries # <<>> -> [progress EXCEPT !.next = lastSent + 1,
                                                        !.inflight = Append(@, lastSent)]
                  [] OTHER -> progress
    IN IF Paused(progress) \/ Len(progress.inflight) >= InflightAppendsMax
       THEN Result(s, NOTHING)
       ELSE IF previousTerm = Nil \/ progress.mode = SnapshotMode THEN SendSnapshot(s, peer)
       ELSE IF entries = <<>> /\ ~allowEmpty THEN Result(s, NOTHING)
       ELSE Result(WithProgress(s, peer, sent),
                   Send({AppendRequest(s.id, peer, s.term, previousIndex, previousTerm, entries,
                                       s.commitIndex)}))

\* replication.broadcast_append. The Python visits peers in id order; the order only changes the
\* order of the messages, which enter a bag, so any order (CHOOSE) gives the same result.
RECURSIVE BroadcastAppendTo(_, _, _)
BroadcastAppendTo(s, peers, allowEmpty) ==
    IF peers = {} THEN Result(s, NOTHING)
    ELSE LET peer == CHOOSE p \in peers : TRUE
             first == SendAppend(s, peer, allowEmpty)
             rest == BroadcastAppendTo(first.state, peers \ {peer}, allowEmpty)
         IN Result(rest.state, Then(first.output, rest.output))

BroadcastAppend(s, allowEmpty) == BroadcastAppendTo(s, DOMAIN s.progress, allowEmpty)

\* replication.broadcast_heartbeat: the commit sent is capped at the follower's match (etcd
\* sendHeartbeat). SIMPLIFIED: heartbeat_elapsed_ticks is not modelled.
BroadcastHeartbeat(s, readContext) ==
    Result(s, Send({HeartbeatRequest(s.id, peer, s.term,
                                     Min(s.progress[peer].match, s.commitIndex), readContext)
                    : peer \in DOMAIN s.progress}))

\* replication.rejected_progress (etcd MaybeDecrTo): back next up, skipping whole terms with the hint.
RejectedProgress(s, progress, m) ==
    IF progress.mode = ReplicateMode
    THEN IF m.index <= progress.match THEN progress
         ELSE [progress EXCEPT !.mode = ProbeMode, !.next = progress.match + 1,
                               !.inflight = <<>>, !.probeSent = FALSE]
    ELSE IF progress.mode = SnapshotMode \/ m.index # progress.next - 1 THEN progress
    ELSE LET probeIndex == FindConflictByTerm(s, m.hintIndex, m.hintTerm)[1]
         IN [progress EXCEPT !.next = Max(Min(m.index, probeIndex + 1), progress.match + 1),
                             !.probeSent = FALSE]

\* replication.accepted_progress: the follower matches up to index; a found match turns probing
\* into pipelining.
AcceptedProgress(progress, index) ==
    LET matchIndex == Max(progress.match, index)
        moved == [progress EXCEPT !.match = matchIndex, !.next = Max(progress.next, matchIndex + 1)]
    IN CASE moved.mode = ProbeMode ->
              IF index < moved.match THEN moved
              ELSE [moved EXCEPT !.mode = ReplicateMode, !.next = matchIndex + 1,
                                 !.probeSent = FALSE, !.inflight = <<>>]
         [] moved.mode = SnapshotMode ->
              IF matchIndex < moved.pendingSnapshot THEN moved
              ELSE [moved EXCEPT !.mode = ReplicateMode, !.next = matchIndex + 1,
                                 !.probeSent = FALSE, !.pendingSnapshot = 0, !.inflight = <<>>]
         [] OTHER -> [moved EXCEPT !.inflight = SelectSeq(@, LAMBDA last : last > index)]

\* replication.quorum_match_index: the highest index stored on a majority of voters; the leader
\* counts only what it has made durable. (The quorum-th largest match is the largest k that at
\* least a quorum has reached.)
QuorumMatchIndex(s) ==
    LET counted == {v \in s.membership.voters : v = s.id \/ v \in DOMAIN s.progress}
        MatchOf(v) == IF v = s.id THEN s.durableIndex ELSE s.progress[v].match
        quorum == QuorumSize(s.membership)
    IN IF Cardinality(counted) < quorum THEN s.commitIndex
       ELSE SetMax({k \in {MatchOf(v) : v \in counted} :
                        Cardinality({v \in counted : MatchOf(v) >= k}) >= quorum})

\* replication.advance_commit: commit the quorum match only if its entry is of the current term
\* (Raft §5.4.2, Figure 8); commit then reaches the followers in appends.
AdvanceCommit(s) ==
    LET candidate == QuorumMatchIndex(s)
    IN IF candidate <= s.commitIndex \/ TermAt(s, candidate) # s.term THEN Result(s, NOTHING)
       ELSE BroadcastAppend([s EXCEPT !.commitIndex = candidate], TRUE)

\* replication.on_append_response
OnAppendResponse(s, m) ==
    IF m.sender \notin DOMAIN s.progress THEN Result(s, NOTHING)
    ELSE LET progress == [s.progress[m.sender] EXCEPT !.recentlyActive = TRUE]
             updated == m.index > progress.match
             accepted == WithProgress(s, m.sender, AcceptedProgress(progress, m.index))
             committed == AdvanceCommit(accepted)
             more == SendAppend(committed.state, m.sender, FALSE)
         IN IF m.rejected
            THEN SendAppend(WithProgress(s, m.sender, RejectedProgress(s, progress, m)),
                            m.sender, FALSE)
            ELSE IF m.index > LastIndex(s) THEN Result(WithProgress(s, m.sender, progress), NOTHING)
            ELSE IF updated THEN Result(more.state, Then(committed.output, more.output))
            ELSE Result(accepted, NOTHING)

\* replication.on_heartbeat_response: resume probing; free one in-flight slot if the window is full
\* (etcd FreeFirstOne), so a lost append cannot pause a follower forever; the append goes even
\* with no entries (etcd sendIfEmpty), so a follower that lost everything in flight rejects it.
OnHeartbeatResponse(s, m) ==
    IF m.sender \notin DOMAIN s.progress THEN Result(s, NOTHING)
    ELSE LET alive == [s.progress[m.sender] EXCEPT !.recentlyActive = TRUE, !.probeSent = FALSE]
             progress == IF Len(alive.inflight) >= InflightAppendsMax
                         THEN [alive EXCEPT !.inflight = Tail(@)] ELSE alive
             updated == WithProgress(s, m.sender, progress)
         IN IF progress.match < LastIndex(updated) THEN SendAppend(updated, m.sender, TRUE)
            ELSE Result(updated, NOTHING)

\* replication.is_well_formed_append: entry terms never decrease and never exceed the sender's term.
IsWellFormedAppend(m) ==
    /\ \A k \in 1..Len(m.entries) :
          /\ m.entries[k].term >= IF k = 1 THEN m.previousTerm ELSE m.entries[k - 1].term
          /\ m.entries[k].term <= m.term
    /\ m.previousTerm <= m.term

\* replication.reply_accepted
ReplyAccepted(s, leader, index) == AppendResponse(s.id, leader, s.term, index, FALSE, 0, 0)

\* replication.on_append_request: AppendEntries receiver (Raft Figure 2): reject with the
\* fast-backtracking hint; else merge (truncating only at the first conflict) and set
\* commit = min(leader commit, last new entry). Below our commit we answer with our commit.
OnAppendRequest(s, m) ==
    IF ~IsWellFormedAppend(m) THEN Result(s, NOTHING)
    ELSE IF m.previousIndex < s.commitIndex
    THEN Result(s, Send({ReplyAccepted(s, m.sender, s.commitIndex)}))
    ELSE IF ~Matches(s, m.previousIndex, m.previousTerm)
    THEN LET hint == FindConflictByTerm(s, Min(m.previousIndex, LastIndex(s)), m.previousTerm)
         IN Result(s, Send({AppendResponse(s.id, m.sender, s.term, m.previousIndex, TRUE,
                                           hint[1], hint[2])}))
    ELSE LET merged == MergeAfter(s, m.previousIndex, m.entries)
             lastNew == m.previousIndex + Len(m.entries)
             durable == IF merged.firstWritten = Nil THEN s.durableIndex
                        ELSE Min(s.durableIndex, merged.firstWritten - 1)
             next == [s EXCEPT !.log = merged.log,
                               !.commitIndex = Max(s.commitIndex, Min(m.commit, lastNew)),
                               !.durableIndex = durable]
         IN Result(next, Send({ReplyAccepted(next, m.sender, lastNew)}))

\* replication.on_heartbeat_request: learn the commit, never beyond our own last entry.
OnHeartbeatRequest(s, m) ==
    Result([s EXCEPT !.commitIndex = Max(s.commitIndex, Min(m.commit, LastIndex(s)))],
           Send({HeartbeatResponse(s.id, m.sender, s.term, m.readContext)}))

\* replication.on_snapshot_request: InstallSnapshot receiver (Raft §7).
OnSnapshotRequest(s, m) ==
    LET snapshot == m.snapshot
    IN IF snapshot.term > m.term \/ snapshot.membership.voters = {} THEN Result(s, NOTHING)
       ELSE IF snapshot.index <= s.commitIndex
       THEN Result(s, Send({ReplyAccepted(s, m.sender, s.commitIndex)}))
       ELSE IF Matches(s, snapshot.index, snapshot.term)
       THEN Result([s EXCEPT !.commitIndex = snapshot.index],
                   Send({ReplyAccepted(s, m.sender, snapshot.index)}))
       ELSE Result([s EXCEPT !.snapshot = snapshot, !.log = <<>>,
                             !.commitIndex = snapshot.index, !.membership = snapshot.membership,
                             !.durableIndex = snapshot.index, !.emittedIndex = snapshot.index,
                             !.appliedIndex = snapshot.index],
                   Send({ReplyAccepted(s, m.sender, snapshot.index)}))

\* replication.stale_term_reply: our term makes a deposed leader step down.
StaleTermReply(s, sender) == AppendResponse(s.id, sender, s.term, 0, FALSE, 0, 0)

-----------------------------------------------------------------------------
(***************************************************************************)
(* election.py: timers, PreVote, RequestVote, CheckQuorum.                 *)
(***************************************************************************)

VotesGranted(s) ==
    Cardinality({v \in DOMAIN s.votes : s.votes[v] /\ v \in s.membership.voters})

VotesRejected(s) ==
    Cardinality({v \in DOMAIN s.votes : ~s.votes[v] /\ v \in s.membership.voters})

RECURSIVE Campaign(_, _, _), ElectionWon(_)

\* election.campaign: a PreVote round first when enabled, unless this election follows a won
\* PreVote round or a transfer asked for it; only a voter campaigns; a cluster of one wins at
\* once. Only a transfer's election is marked as one (etcd campaignTransfer).
Campaign(s, transfer, preVotePassed) ==
    LET preVote == PreVoteEnabled /\ ~transfer /\ ~preVotePassed
        started == IF preVote THEN BecomePreCandidate(s) ELSE BecomeCandidate(s)
        requestTerm == IF preVote THEN started.term + 1 ELSE started.term
    IN IF ~Promotable(s) THEN Result(s, NOTHING)
       ELSE IF VotesGranted(started) >= QuorumSize(started.membership) THEN ElectionWon(started)
       ELSE Result(started,
                   Send({VoteRequest(started.id, voter, requestTerm, LastIndex(started),
                                     LastTerm(started), started.role = PreCandidate, transfer)
                         : voter \in started.membership.voters \ {started.id}}))

\* election.election_won: a won PreVote round starts the real election; a won election makes a
\* leader, whose first act is to append an empty entry of its term (Raft §8).
ElectionWon(s) ==
    IF s.role = PreCandidate THEN Campaign(s, FALSE, TRUE)
    ELSE BroadcastAppend(AppendToOwnLog(BecomeLeader(s), Nil, Nil, Normal), TRUE)

\* election.on_election_timeout
OnElectionTimeout(s) ==
    IF s.role = Leader THEN Result(s, NOTHING) ELSE Campaign(s, FALSE, FALSE)

\* election.on_vote_request: grant if we have not voted for someone else this term (and know no
\* leader) and the candidate's log is at least as up-to-date; a PreVote for a later term is
\* granted on the log check alone, records nothing, and is answered with the request's term.
OnVoteRequest(s, m) ==
    LET canVote == \/ s.vote = m.sender
                   \/ s.vote = Nil /\ s.leader = Nil
                   \/ m.preVote /\ m.term > s.term
        granted == canVote /\ IsUpToDate(s, m.lastLogTerm, m.lastLogIndex)
        next == IF granted /\ ~m.preVote
                THEN [s EXCEPT !.vote = m.sender, !.electionElapsed = FALSE] ELSE s
        responseTerm == IF granted /\ m.preVote THEN m.term ELSE next.term
    IN Result(next, Send({VoteResponse(s.id, m.sender, responseTerm, granted, m.preVote)}))

\* election.on_vote_response: a majority wins the round, a majority of refusals ends it.
OnVoteResponse(s, m) ==
    LET expectedRole == IF m.preVote THEN PreCandidate ELSE Candidate
        counted == [s EXCEPT !.votes = (m.sender :> m.granted) @@ s.votes]
    IN IF s.role # expectedRole \/ m.sender \notin s.membership.voters THEN Result(s, NOTHING)
       ELSE IF VotesGranted(counted) >= QuorumSize(counted.membership) THEN ElectionWon(counted)
       ELSE IF VotesRejected(counted) >= QuorumSize(counted.membership)
       THEN Result(BecomeFollower(counted, counted.term, Nil), NOTHING)
       ELSE Result(counted, NOTHING)

\* election.in_leader_lease: with CheckQuorum, a server that heard from a leader within the
\* minimum election timeout ignores requests to vote in a later term (thesis §4.2.3).
InLeaderLease(s) == CheckQuorumEnabled /\ s.leader # Nil /\ ~s.electionElapsed

\* election.check_quorum: a leader that has not heard from a majority steps down (thesis §6.2);
\* every follower's recently-active flag is cleared for the next period.
CheckQuorum(s) ==
    LET active == {v \in s.membership.voters :
                      v = s.id \/ (v \in DOMAIN s.progress /\ s.progress[v].recentlyActive)}
    IN IF Cardinality(active) < QuorumSize(s.membership)
       THEN Result(BecomeFollower(s, s.term, Nil), NOTHING)
       ELSE Result([s EXCEPT !.progress = [peer \in DOMAIN s.progress |->
                                             [s.progress[peer] EXCEPT !.recentlyActive = FALSE]]],
                   NOTHING)

\* election.on_leader_tick. SIMPLIFIED (abstract time): timer = "election" stands for the
\* leader's election_elapsed_ticks reaching election_ticks (CheckQuorum runs); timer = "transfer"
\* for transfer_elapsed_ticks reaching it (the transfer is abandoned). The heartbeat timer is the
\* separate HeartbeatTimeout action.
OnLeaderTick(s, timer) ==
    IF timer = "transfer" THEN Result([s EXCEPT !.transferTarget = Nil], NOTHING)
    ELSE IF CheckQuorumEnabled THEN CheckQuorum(s)
    ELSE Result(s, NOTHING)

\* election.on_tick. SIMPLIFIED (abstract time): one Tick stands for election_ticks ticks passing
\* without the randomized timeout firing; a follower's leader lease ends (electionElapsed). The
\* randomized timeout itself is the ElectionTimeout action, allowed at any step.
OnTick(s, timer) ==
    IF s.role = Leader THEN OnLeaderTick(s, timer)
    ELSE IF timer = "election" THEN Result([s EXCEPT !.electionElapsed = TRUE], NOTHING)
    ELSE Result(s, NOTHING)

-----------------------------------------------------------------------------
(***************************************************************************)
(* reads.py: linearizable reads by ReadIndex (thesis §6.4).                *)
(***************************************************************************)

\* reads.committed_in_current_term (step 1)
CommittedInCurrentTerm(s) == TermAt(s, s.commitIndex) = s.term

\* reads.answer_read
AnswerRead(s, context, requester, index) ==
    IF requester = s.id THEN [NOTHING EXCEPT !.reads = {ReadReady(context, index)}]
    ELSE Send({ReadIndexResponse(s.id, requester, s.term, context, index)})

\* reads.leader_read: steps 1 to 3; a single-voter cluster needs no confirmation round.
LeaderRead(s, context, requester) ==
    IF ~CommittedInCurrentTerm(s)
    THEN Result([s EXCEPT !.readsAwaitingCommit =
                            Append(@, [context |-> context, requester |-> requester])], NOTHING)
    ELSE IF s.membership.voters = {s.id}
    THEN Result(s, AnswerRead(s, context, requester, s.commitIndex))
    ELSE BroadcastHeartbeat([s EXCEPT !.reads =
                               Append(@, [context |-> context, index |-> s.commitIndex,
                                          requester |-> requester, acknowledgedBy |-> {s.id}])],
                            context)

\* reads.on_request_read: the leader handles it, a follower forwards it to its leader.
\* SIMPLIFIED: the refusal when no leader is known is not output.
OnRequestRead(s, context) ==
    IF s.role = Leader THEN LeaderRead(s, context, s.id)
    ELSE IF s.leader = Nil THEN Result(s, NOTHING)
    ELSE Result(s, Send({ReadIndexRequest(s.id, s.leader, s.term, context)}))

\* reads.on_read_index_request
OnReadIndexRequest(s, m) ==
    IF s.role # Leader \/ m.sender \notin Members(s.membership) THEN Result(s, NOTHING)
    ELSE LeaderRead(s, m.context, m.sender)

\* reads.on_read_heartbeat_response: a majority answering the round for a read confirms it and
\* every read queued before it.
OnReadHeartbeatResponse(s, m) ==
    LET positions == {k \in 1..Len(s.reads) : s.reads[k].context = m.readContext}
        position == SetMin(positions)
        read == [s.reads[position] EXCEPT !.acknowledgedBy = @ \cup {m.sender}]
        reads == [s.reads EXCEPT ![position] = read]
        confirmed == {reads[k] : k \in 1..position}
        answers == [msgs |-> SetToBag({ReadIndexResponse(s.id, r.requester, s.term, r.context, r.index)
                                       : r \in {c \in confirmed : c.requester # s.id}}),
                    reads |-> {ReadReady(r.context, r.index) : r \in {c \in confirmed : c.requester = s.id}},
                    committed |-> {}]
    IN IF m.readContext = Nil \/ m.sender \notin s.membership.voters THEN Result(s, NOTHING)
       ELSE IF positions = {} THEN Result(s, NOTHING)
       ELSE IF Cardinality(read.acknowledgedBy \cap s.membership.voters) < QuorumSize(s.membership)
       THEN Result([s EXCEPT !.reads = reads], NOTHING)
       ELSE Result([s EXCEPT !.reads = SubSeq(reads, position + 1, Len(reads))], answers)

\* reads.release_reads_awaiting_commit: once the leader commits in its term, waiting reads proceed.
RECURSIVE LeaderReadEach(_, _)
LeaderReadEach(s, waiting) ==
    IF waiting = <<>> THEN Result(s, NOTHING)
    ELSE LET first == LeaderRead(s, Head(waiting).context, Head(waiting).requester)
             rest == LeaderReadEach(first.state, Tail(waiting))
         IN Result(rest.state, Then(first.output, rest.output))

ReleaseReadsAwaitingCommit(s) ==
    IF s.readsAwaitingCommit = <<>> \/ ~CommittedInCurrentTerm(s) THEN Result(s, NOTHING)
    ELSE LeaderReadEach([s EXCEPT !.readsAwaitingCommit = <<>>], s.readsAwaitingCommit)

\* reads.on_read_index_response
OnReadIndexResponse(s, m) ==
    IF s.role # Follower \/ m.sender # s.leader THEN Result(s, NOTHING)
    ELSE Result(s, [NOTHING EXCEPT !.reads = {ReadReady(m.context, m.index)}])

-----------------------------------------------------------------------------
(***************************************************************************)
(* proposals.py: client entries and one-server membership changes.         *)
(* SIMPLIFIED: refusals are not output (they change no state).             *)
(***************************************************************************)

\* proposals.refusal_reason_for_proposal: only a leader, and not while it hands leadership over.
RefusalReasonForProposal(s) ==
    IF s.role # Leader THEN "not leader"
    ELSE IF s.transferTarget # Nil THEN "leadership transfer in progress"
    ELSE Nil

\* proposals.on_propose
OnPropose(s, value) ==
    IF RefusalReasonForProposal(s) # Nil THEN Result(s, NOTHING)
    ELSE BroadcastAppend(AppendToOwnLog(s, value, Nil, Normal), FALSE)

\* replication.append_all_to_own_log: AppendToOwnLog of each value in turn.
RECURSIVE AppendAllToOwnLog(_, _)
AppendAllToOwnLog(s, values) ==
    IF values = <<>> THEN s
    ELSE AppendAllToOwnLog(AppendToOwnLog(s, Head(values), Nil, Normal), Tail(values))

\* proposals.on_propose_batch: values that arrived together, appended in order and sent in the
\* same messages (etcd's MsgProp carries many entries).
OnProposeBatch(s, values) ==
    IF RefusalReasonForProposal(s) # Nil THEN Result(s, NOTHING)
    ELSE BroadcastAppend(AppendAllToOwnLog(s, values), FALSE)

\* proposals.has_pending_configuration_change: a membership change not yet committed.
HasPendingConfigurationChange(s) ==
    \E k \in (s.commitIndex + 1)..LastIndex(s) :
        k > s.snapshot.index /\ EntryAt(s, k).kind = Configuration

\* proposals.refusal_reason_for_change: one change at a time, and only after the leader has
\* committed an entry of its own term; the change must change something and leave a voter.
RefusalReasonForChange(s, change) ==
    LET changed == Apply(s.membership, change)
    IN IF RefusalReasonForProposal(s) # Nil THEN RefusalReasonForProposal(s)
       ELSE IF ~CommittedInCurrentTerm(s) THEN "leader has not yet committed an entry in its term"
       ELSE IF HasPendingConfigurationChange(s) THEN "a membership change is already pending"
       ELSE IF changed = s.membership \/ changed.voters = {} THEN "request does not apply"
       ELSE Nil

\* proposals.on_propose_configuration_change
OnProposeConfigurationChange(s, change) ==
    IF RefusalReasonForChange(s, change) # Nil THEN Result(s, NOTHING)
    ELSE BroadcastAppend(AppendToOwnLog(s, Nil, change, Configuration), FALSE)

-----------------------------------------------------------------------------
(***************************************************************************)
(* transfer.py: leadership transfer (thesis §3.10).                        *)
(***************************************************************************)

\* transfer.continue_transfer: TimeoutNow once the target's log matches ours in full.
ContinueTransfer(s) ==
    IF s.role # Leader \/ s.transferTarget = Nil THEN Result(s, NOTHING)
    ELSE IF s.progress[s.transferTarget].match = LastIndex(s)
    THEN Result(s, Send({TimeoutNow(s.id, s.transferTarget, s.term)}))
    ELSE SendAppend(s, s.transferTarget, FALSE)

\* transfer.on_transfer_leadership. SIMPLIFIED: transfer_elapsed_ticks is abstracted (see
\* OnLeaderTick); refusals are not output.
OnTransferLeadership(s, target) ==
    IF s.role # Leader THEN Result(s, NOTHING)
    ELSE IF target = s.id \/ s.transferTarget = target THEN Result(s, NOTHING)
    ELSE IF target \notin s.membership.voters \/ target \notin DOMAIN s.progress
    THEN Result(s, NOTHING)
    ELSE ContinueTransfer([s EXCEPT !.transferTarget = target])

\* transfer.on_timeout_now: campaign at once, skipping PreVote, marked as a transfer.
OnTimeoutNow(s, m) ==
    IF s.role # Follower THEN Result(s, NOTHING) ELSE Campaign(s, TRUE, FALSE)

-----------------------------------------------------------------------------
(***************************************************************************)
(* storage.py: what the host reports back.                                 *)
(***************************************************************************)

\* storage.on_storage_acknowledged: a leader may now count itself for the durable entries
\* (thesis §10.2.1); an acknowledgement of a replaced entry (other term) says nothing.
OnStorageAcknowledged(s, index, term) ==
    IF index <= s.durableIndex \/ TermAt(s, index) # term THEN Result(s, NOTHING)
    ELSE IF s.role = Leader THEN AdvanceCommit([s EXCEPT !.durableIndex = index])
    ELSE Result([s EXCEPT !.durableIndex = index], NOTHING)

\* storage.on_applied: only entries already handed out can have been applied.
OnApplied(s, index) ==
    Result([s EXCEPT !.appliedIndex = Max(s.appliedIndex, Min(index, s.emittedIndex))], NOTHING)

\* storage.on_compact_log: the application's snapshot at index (<= applied) replaces the prefix.
OnCompactLog(s, index) ==
    IF index <= s.snapshot.index \/ index > s.appliedIndex THEN Result(s, NOTHING)
    ELSE Result(CompactedTo(s, Snapshot(index, TermAt(s, index), MembershipAt(s, index))), NOTHING)

-----------------------------------------------------------------------------
(***************************************************************************)
(* step.py: term checks, dispatch, and what follows every input (settle).  *)
(***************************************************************************)

\* step.on_heartbeat_timeout
OnHeartbeatTimeout(s) ==
    IF s.role # Leader THEN Result(s, NOTHING) ELSE BroadcastHeartbeat(s, Nil)

\* step.should_ignore_message (ids and terms are always in range here)
ShouldIgnoreMessage(s, m) == m.recipient # s.id \/ m.sender = s.id

\* step.keeps_term_on_higher_term: a PreVote request, or a granted PreVote answer, carries a
\* term nobody has taken yet.
KeepsTermOnHigherTerm(m) ==
    \/ m.type = "VoteRequest" /\ m.preVote
    \/ m.type = "VoteResponse" /\ m.preVote /\ m.granted

\* step.on_stale_term_message: older-term appends and heartbeats are answered with our term
\* (with CheckQuorum or PreVote); an older-term PreVote is refused; the rest are dropped.
OnStaleTermMessage(s, m) ==
    IF m.type \in {"AppendRequest", "HeartbeatRequest"} /\ (CheckQuorumEnabled \/ PreVoteEnabled)
    THEN Result(s, Send({StaleTermReply(s, m.sender)}))
    ELSE IF m.type = "VoteRequest" /\ m.preVote
    THEN Result(s, Send({VoteResponse(s.id, m.sender, s.term, FALSE, TRUE)}))
    ELSE Result(s, NOTHING)

\* step.on_leader_message: a candidate steps down (Raft §5.2); a follower resets its timer.
OnLeaderMessage(s, m) ==
    LET follower == IF s.role # Follower THEN BecomeFollower(s, m.term, m.sender) ELSE s
        heard == [follower EXCEPT !.leader = m.sender, !.electionElapsed = FALSE]
    IN IF s.role = Leader THEN Result(s, NOTHING)
       ELSE CASE m.type = "AppendRequest" -> OnAppendRequest(heard, m)
              [] m.type = "HeartbeatRequest" -> OnHeartbeatRequest(heard, m)
              [] OTHER -> OnSnapshotRequest(heard, m)

\* step.on_follower_answer
OnFollowerAnswer(s, m) ==
    IF m.type = "AppendResponse"
    THEN LET answered == OnAppendResponse(s, m)
             transfer == ContinueTransfer(answered.state)
         IN IF answered.state.role = Leader /\ answered.state.transferTarget = m.sender
            THEN Result(transfer.state, Then(answered.output, transfer.output))
            ELSE answered
    ELSE LET answered == OnHeartbeatResponse(s, m)
             confirmed == OnReadHeartbeatResponse(answered.state, m)
         IN Result(confirmed.state, Then(answered.output, confirmed.output))

\* step.dispatch: route a message of our term (or a PreVote) by kind and role.
Dispatch(s, m) ==
    CASE m.type = "VoteRequest" -> OnVoteRequest(s, m)
      [] m.type = "VoteResponse" -> OnVoteResponse(s, m)
      [] m.type \in LeaderMessageTypes -> OnLeaderMessage(s, m)
      [] m.type \in {"AppendResponse", "HeartbeatResponse"} ->
            IF s.role # Leader THEN Result(s, NOTHING) ELSE OnFollowerAnswer(s, m)
      [] m.type = "ReadIndexRequest" -> OnReadIndexRequest(s, m)
      [] m.type = "ReadIndexResponse" -> OnReadIndexResponse(s, m)
      [] OTHER -> OnTimeoutNow(s, m)

\* step.on_message: term checks for every message (Raft §5.1), then the handler. A vote request
\* of a higher term is ignored inside the leader lease unless a transfer asked for it.
OnMessage(s, m) ==
    LET leader == IF m.type \in LeaderMessageTypes THEN m.sender ELSE Nil
        current == IF KeepsTermOnHigherTerm(m) THEN s ELSE BecomeFollower(s, m.term, leader)
    IN IF ShouldIgnoreMessage(s, m) THEN Result(s, NOTHING)
       ELSE IF m.term > s.term
       THEN IF m.type = "VoteRequest" /\ InLeaderLease(s) /\ ~m.transfer THEN Result(s, NOTHING)
            ELSE Dispatch(current, m)
       ELSE IF m.term < s.term THEN OnStaleTermMessage(s, m)
       ELSE Dispatch(s, m)

\* step.on_commit_changed: a committed membership change takes effect; a leader updates its
\* follower list, and steps down if it was removed (etcd StepDownOnRemoval).
OnCommitChanged(s) ==
    LET membership == MembershipAt(s, s.commitIndex)
        changed == [s EXCEPT !.membership = membership]
        nextIndex == LastIndex(s) + 1
        progress == [peer \in Members(membership) \ {s.id} |->
                        IF peer \in DOMAIN s.progress THEN s.progress[peer] ELSE NewProgress(nextIndex)]
        target == IF s.transferTarget \in membership.voters THEN s.transferTarget ELSE Nil
    IN IF membership = s.membership THEN Result(s, NOTHING)
       ELSE IF s.role # Leader THEN Result(changed, NOTHING)
       ELSE IF s.id \notin membership.voters
       THEN Result(BecomeFollower(changed, s.term, Nil), NOTHING)
       ELSE Result([changed EXCEPT !.progress = progress, !.transferTarget = target], NOTHING)

\* step.emit_committed_entries: hand out committed entries once each, in order, once durable here.
EmitCommittedEntries(s, output) ==
    LET last == Min(Min(s.commitIndex, s.durableIndex), LastIndex(s))
        first == Max(s.emittedIndex + 1, FirstIndex(s))
    IN IF last <= s.emittedIndex THEN Result(s, output)
       ELSE Result([s EXCEPT !.emittedIndex = last],
                   Then(output, [NOTHING EXCEPT !.committed =
                                   {[index |-> k, entry |-> EntryAt(s, k)] : k \in first..last}]))

\* step.settle: what follows from any input: membership, released reads, entries to apply.
Settle(before, after, output) ==
    LET commitChanged == after.commitIndex # before.commitIndex \/ after.snapshot # before.snapshot
        settled == IF commitChanged THEN OnCommitChanged(after) ELSE Result(after, NOTHING)
        released == IF settled.state.role = Leader THEN ReleaseReadsAwaitingCommit(settled.state)
                    ELSE Result(settled.state, NOTHING)
    IN EmitCommittedEntries(released.state, Then(Then(output, settled.output), released.output))

\* step.step: apply one input to a node. An input is a record with a type tag (io.Input).
Step(s, input) ==
    LET handled ==
          CASE input.type = "Tick" -> OnTick(s, input.timer)
            [] input.type = "ElectionTimeout" -> OnElectionTimeout(s)
            [] input.type = "HeartbeatTimeout" -> OnHeartbeatTimeout(s)
            [] input.type = "Receive" -> OnMessage(s, input.message)
            [] input.type = "Propose" -> OnPropose(s, input.data)
            [] input.type = "ProposeBatch" -> OnProposeBatch(s, input.data)
            [] input.type = "ProposeConfigurationChange" -> OnProposeConfigurationChange(s, input.change)
            [] input.type = "RequestRead" -> OnRequestRead(s, input.context)
            [] input.type = "TransferLeadership" -> OnTransferLeadership(s, input.target)
            [] input.type = "StorageAcknowledged" -> OnStorageAcknowledged(s, input.index, input.term)
            [] input.type = "Applied" -> OnApplied(s, input.index)
            [] OTHER -> OnCompactLog(s, input.index)
    IN Settle(s, handled.state, handled.output)

-----------------------------------------------------------------------------
(***************************************************************************)
(* History (ghost) state: models/cluster.py record_step.                   *)
(* history.leaders     set of <<term, server>>: who was leader in a term   *)
(* history.campaigns   terms some server started as candidate (or leader)  *)
(* history.votes       set of <<server, term, vote>>                       *)
(* history.committed   set of [index, entry, term]: an entry seen          *)
(*                     committed at index, in the term first seen there    *)
(* history.commitQuorums set of [index, membership]: a leader committed up *)
(*                     to index counting that membership                   *)
(* history.applied     set of [index, entry] handed out for applying       *)
(* history.reads       sequence of ReadIndex requests with what had        *)
(*                     committed when each was asked and the index it got  *)
(* Conflicting records (two entries at one index, two votes in a term) are *)
(* kept side by side, so the invariants below see them.                    *)
(***************************************************************************)

InitHistory ==
    [leaders |-> {}, campaigns |-> {}, votes |-> {}, committed |-> {}, commitQuorums |-> {},
     applied |-> {}, reads |-> <<>>]

HighestCommitted(h) == IF h.committed = {} THEN 0 ELSE SetMax({c.index : c \in h.committed})

\* cluster.record_commit
RecordCommit(h, before, after) ==
    LET newly == {[index |-> k, entry |-> EntryAt(after, k), term |-> after.term]
                  : k \in (Max(before.commitIndex, after.snapshot.index) + 1)..after.commitIndex}
        fresh == {c \in newly : ~\E d \in h.committed : d.index = c.index /\ d.entry = c.entry}
    IN IF after.commitIndex <= before.commitIndex THEN h
       ELSE [h EXCEPT !.committed = @ \cup fresh,
                      !.commitQuorums = IF after.role = Leader /\ before.role = Leader
                                        THEN @ \cup {[index |-> after.commitIndex,
                                                      membership |-> before.membership]}
                                        ELSE @]

\* cluster.record_reads
RecordReads(h, s, output, input) ==
    LET asked == IF input.type = "RequestRead"
                 THEN Append(h.reads, [node |-> s.id, context |-> input.context,
                                       committedWhenRequested |-> HighestCommitted(h),
                                       readIndex |-> Nil])
                 ELSE h.reads
        Ready(r) == {ready \in output.reads : ready.context = r.context}
    IN [h EXCEPT !.reads =
          [k \in 1..Len(asked) |->
             IF asked[k].node = s.id /\ asked[k].readIndex = Nil /\ Ready(asked[k]) # {}
             THEN [asked[k] EXCEPT !.readIndex = (CHOOSE ready \in Ready(asked[k]) : TRUE).index]
             ELSE asked[k]]]

\* cluster.record_step
RecordStep(h, before, after, output, input) ==
    LET i == after.id
        campaigned == IF after.role \in {Candidate, Leader}
                      THEN [h EXCEPT !.campaigns = @ \cup {after.term}] ELSE h
        led == IF after.role = Leader
               THEN [campaigned EXCEPT !.leaders = @ \cup {<<after.term, i>>}] ELSE campaigned
        voted == IF after.vote # Nil /\ (after.vote # before.vote \/ after.term # before.term)
                 THEN [led EXCEPT !.votes = @ \cup {<<i, after.term, after.vote>>}] ELSE led
        committed == RecordCommit(voted, before, after)
        applied == [committed EXCEPT !.applied = @ \cup output.committed]
    IN RecordReads(applied, after, output, input)

-----------------------------------------------------------------------------
(***************************************************************************)
(* The cluster: models/cluster.py.                                         *)
(***************************************************************************)

\* One step of one node, with its history recorded: [state, output, history].
StepAndRecord(s, input, h) ==
    LET stepped == Step(s, input)
    IN [state |-> stepped.state, output |-> stepped.output,
        history |-> RecordStep(h, s, stepped.state, stepped.output, input)]

\* cluster.follow_ups: with synchronous storage, the host reports at once that what it wrote is
\* durable and that what was handed out is applied (each report is a step of its own). Without
\* it, these reports are the separate StorageAcknowledged and Applied actions, at any later time.
FollowUps(done) ==
    LET ack == StepAndRecord(done.state, [type |-> "StorageAcknowledged",
                                          index |-> LastIndex(done.state),
                                          term |-> LastTerm(done.state)], done.history)
        acked == IF SynchronousStorage /\ done.state.durableIndex < LastIndex(done.state)
                 THEN [ack EXCEPT !.output = Then(done.output, ack.output)] ELSE done
        apply == StepAndRecord(acked.state, [type |-> "Applied", index |-> acked.state.emittedIndex],
                               acked.history)
    IN IF SynchronousStorage /\ acked.state.appliedIndex < acked.state.emittedIndex
       THEN [apply EXCEPT !.output = Then(acked.output, apply.output)] ELSE acked

\* cluster.run_input: step a running node, send its messages on top of network, record history.
RunInput(i, input, network) ==
    LET done == FollowUps(StepAndRecord(nodes[i], input, history))
    IN /\ running[i]
       /\ nodes' = [nodes EXCEPT ![i] = done.state]
       /\ messages' = network (+) done.output.msgs
       /\ history' = done.history
       /\ UNCHANGED <<running, crashes>>

Init ==
    /\ nodes = [i \in Server |-> InitialState(i)]
    /\ running = [i \in Server |-> TRUE]
    /\ messages = EmptyBag
    /\ history = InitHistory
    /\ crashes = 0

\* cluster.election_timeout (abstract time: any non-leader may time out at any step)
ElectionTimeout(i) ==
    /\ running[i] /\ nodes[i].role # Leader
    /\ RunInput(i, [type |-> "ElectionTimeout"], messages)

\* cluster.heartbeat_timeout
HeartbeatTimeout(i) ==
    /\ running[i] /\ nodes[i].role = Leader
    /\ RunInput(i, [type |-> "HeartbeatTimeout"], messages)

\* cluster.tick, abstracted: an election timeout's worth of ticks on one timer (see OnTick).
Tick(i, timer) == RunInput(i, [type |-> "Tick", timer |-> timer], messages)

\* cluster.propose (on a non-leader it would be refused: no state change)
Propose(i, value) ==
    /\ running[i] /\ nodes[i].role = Leader
    /\ RunInput(i, [type |-> "Propose", data |-> value], messages)

\* cluster.change_membership
ChangeMembership(i, change) ==
    /\ running[i] /\ nodes[i].role = Leader
    /\ RunInput(i, [type |-> "ProposeConfigurationChange", change |-> change], messages)

\* cluster.transfer_leadership
TransferLeadership(i, target) ==
    /\ running[i] /\ nodes[i].role = Leader
    /\ RunInput(i, [type |-> "TransferLeadership", target |-> target], messages)

\* cluster.request_read: the context is a fresh name (the number of reads asked so far, plus one).
RequestRead(i) ==
    RunInput(i, [type |-> "RequestRead", context |-> Len(history.reads) + 1], messages)

\* cluster.compact: snapshot at the applied index. SIMPLIFIED: the persisted log is the node's log,
\* so compacting it compacts what is durable too (cluster.compact does both).
Compact(i) ==
    /\ running[i] /\ nodes[i].appliedIndex > nodes[i].snapshot.index
    /\ RunInput(i, [type |-> "CompactLog", index |-> nodes[i].appliedIndex], messages)

\* Storage reports when they are not synchronous: some prefix of the log is durable; some of
\* what was handed out is applied.
StorageAcknowledged(i) ==
    \E k \in (nodes[i].durableIndex + 1)..LastIndex(nodes[i]) :
        RunInput(i, [type |-> "StorageAcknowledged", index |-> k, term |-> TermAt(nodes[i], k)],
                 messages)

Applied(i) ==
    \E k \in (nodes[i].appliedIndex + 1)..nodes[i].emittedIndex :
        RunInput(i, [type |-> "Applied", index |-> k], messages)

\* cluster.crash: the node stops; its record keeps what is durable (term, vote, commit, snapshot,
\* log: storage is written before any step ends), its volatile part is dead until Restart.
Crash(i) ==
    /\ running[i]
    /\ running' = [running EXCEPT ![i] = FALSE]
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<nodes, messages, history>>

\* cluster.recover + state.restart
Restart(i) ==
    /\ ~running[i]
    /\ running' = [running EXCEPT ![i] = TRUE]
    /\ nodes' = [nodes EXCEPT ![i] = RestartState(nodes[i])]
    /\ UNCHANGED <<messages, history, crashes>>

\* cluster.deliver: take one copy off the network and hand it to its recipient (lost if it is down).
DeliverMessage(m) ==
    /\ m \in DOMAIN messages
    /\ LET rest == messages (-) SetToBag({m})
       IN IF running[m.recipient]
          THEN RunInput(m.recipient, [type |-> "Receive", message |-> m], rest)
          ELSE /\ messages' = rest
               /\ UNCHANGED <<nodes, running, history, crashes>>

\* cluster.drop
DropMessage(m) ==
    /\ m \in DOMAIN messages
    /\ messages' = messages (-) SetToBag({m})
    /\ UNCHANGED <<nodes, running, history, crashes>>

\* cluster.duplicate
DuplicateMessage(m) ==
    /\ m \in DOMAIN messages
    /\ messages' = messages (+) SetToBag({m})
    /\ UNCHANGED <<nodes, running, history, crashes>>

Next ==
    \/ \E i \in Server :
          \/ ElectionTimeout(i)
          \/ HeartbeatTimeout(i)
          \/ \E timer \in {"election", "transfer"} : Tick(i, timer)
          \/ \E value \in Value : Propose(i, value)
          \/ \E change \in ConfigurationChanges : ChangeMembership(i, change)
          \/ \E target \in Server : TransferLeadership(i, target)
          \/ RequestRead(i)
          \/ Compact(i)
          \/ StorageAcknowledged(i)
          \/ Applied(i)
          \/ Crash(i)
          \/ Restart(i)
    \/ \E m \in DOMAIN messages : DeliverMessage(m) \/ DropMessage(m) \/ DuplicateMessage(m)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(***************************************************************************)
(* Invariants: models/invariants.py, with the same names and meanings.     *)
(***************************************************************************)

RunningNodes == {i \in Server : running[i]}

\* election_safety: at most one leader in a term (Raft Figure 3).
ElectionSafety ==
    \A a, b \in history.leaders : a[1] = b[1] => a[2] = b[2]

\* log_matching: entries with the same index and term are identical, and so are the logs below them.
LogMatching ==
    \A i, j \in RunningNodes :
        LET low == Max(nodes[i].snapshot.index, nodes[j].snapshot.index) + 1
            high == Min(LastIndex(nodes[i]), LastIndex(nodes[j]))
        IN \A k \in low..high :
              TermAt(nodes[i], k) = TermAt(nodes[j], k) =>
                  \A below \in low..k : EntryAt(nodes[i], below) = EntryAt(nodes[j], below)

\* leader_completeness: a committed entry is in the log of every leader of a later or equal term.
LeaderCompleteness ==
    \A i \in RunningNodes : nodes[i].role = Leader =>
        \A c \in history.committed :
            (c.term <= nodes[i].term /\ c.index > nodes[i].snapshot.index)
                => EntryAt(nodes[i], c.index) = c.entry

\* state_machine_safety: no two servers commit or apply different entries at one index.
StateMachineSafety ==
    /\ \A a, b \in history.applied : a.index = b.index => a.entry = b.entry
    /\ \A a, b \in history.committed : a.index = b.index => a.entry = b.entry

\* committed_on_quorum: every entry a leader committed is durable on a majority of the voters it
\* counted (the node record is what is durable, crashed or not).
DurablyHolds(s, index, term) == index <= s.snapshot.index \/ TermAt(s, index) = term

CommittedOnQuorum ==
    \A q \in history.commitQuorums : \A c \in history.committed :
        c.index = q.index =>
            Cardinality({v \in q.membership.voters :
                            DurablyHolds(nodes[v], c.index, c.entry.term)})
                >= QuorumSize(q.membership)

\* votes_once_per_term: a server votes for at most one candidate in a term, across crashes too.
VoteOncePerTerm ==
    \A a, b \in history.votes : a[1] = b[1] /\ a[2] = b[2] => a[3] = b[3]

\* reads_see_earlier_commits: a ReadIndex read covers everything committed before it was asked.
ReadsSeeEarlierCommits ==
    \A k \in 1..Len(history.reads) :
        history.reads[k].readIndex # Nil =>
            history.reads[k].readIndex >= history.reads[k].committedWhenRequested

\* terms_start_with_a_candidate: only an election creates a term (a PreVote round creates none).
TermsStartWithACandidate ==
    \A i \in RunningNodes : nodes[i].term > 0 => nodes[i].term \in history.campaigns

\* spec/raft/invariants.node_violations, for every running node.
SingleNodeInvariants ==
    \A i \in RunningNodes :
        LET s == nodes[i]
        IN /\ s.snapshot.index <= s.appliedIndex
           /\ s.appliedIndex <= s.emittedIndex
           /\ s.emittedIndex <= s.commitIndex
           /\ s.commitIndex <= LastIndex(s)
           /\ s.durableIndex <= LastIndex(s)
           /\ s.role = Candidate => s.vote = s.id
           /\ s.role # Leader => /\ DOMAIN s.progress = {} /\ s.reads = <<>>
                                /\ s.readsAwaitingCommit = <<>> /\ s.transferTarget = Nil
           /\ s.role = Leader =>
                 /\ s.leader = s.id
                 /\ \A peer \in DOMAIN s.progress :
                       LET p == s.progress[peer]
                       IN /\ p.match < p.next /\ p.next <= LastIndex(s) + 1
                          /\ p.mode # ReplicateMode => p.inflight = <<>>
                          /\ Len(p.inflight) <= InflightAppendsMax

\* leader_append_only (an action property): a leader never overwrites or deletes its entries.
LeaderAppendOnly ==
    [][\A i \in Server :
         (/\ running[i] /\ running'[i]
          /\ nodes[i].role = Leader /\ nodes'[i].role = Leader
          /\ nodes'[i].term = nodes[i].term)
         => \A k \in (nodes[i].snapshot.index + 1)..LastIndex(nodes[i]) :
               k > nodes'[i].snapshot.index => EntryAt(nodes'[i], k) = EntryAt(nodes[i], k)]_vars

\* monotonic (an action property): terms and commit indices never decrease, across restarts too.
MonotonicTerms ==
    [][\A i \in Server : /\ nodes'[i].term >= nodes[i].term
                         /\ nodes'[i].commitIndex >= nodes[i].commitIndex]_vars

\* Every state invariant at once.
Invariants ==
    /\ ElectionSafety
    /\ LogMatching
    /\ LeaderCompleteness
    /\ StateMachineSafety
    /\ CommittedOnQuorum
    /\ VoteOncePerTerm
    /\ ReadsSeeEarlierCommits
    /\ TermsStartWithACandidate
    /\ SingleNodeInvariants

THEOREM Spec => []Invariants
=============================================================================
