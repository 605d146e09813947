------------------------------- MODULE MCRaft -------------------------------
(***************************************************************************)
(* Bounds for model-checking Raft with TLC, the same as models/explore.py  *)
(* PROFILES["large"]: 3 servers, terms <= 3, logs <= 2 entries, <= 2       *)
(* messages in flight (a bag, <= 2 copies of one), loss, one crash, no    *)
(* heartbeats, PreVote and CheckQuorum off. Like the explorer, a server    *)
(* times out only below MaxTerm and with room in the network, a leader     *)
(* proposes only below MaxLogLength, and states whose network overflowed   *)
(* by a broadcast are not explored further. Reads, transfers, membership   *)
(* changes, compaction and ticks are off at these bounds (the explorer     *)
(* has no such actions); raise their bounds in MCRaft.cfg to explore them. *)
(***************************************************************************)
EXTENDS Raft

CONSTANTS
    MaxTerm,             \* Bounds.term_max
    MaxLogLength,        \* Bounds.log_length_max
    MaxMessages,         \* Bounds.messages_max
    MaxCopies,           \* Bounds.copies_max
    MessageLoss,         \* Bounds.loss
    MaxCrashes,          \* Bounds.crashes_max
    Heartbeats,          \* Bounds.heartbeats
    MaxReads,            \* ReadIndex requests (not in the explorer: 0)
    MembershipChanges,   \* ProposeConfigurationChange (not in the explorer: FALSE)
    Transfers,           \* TransferLeadership (not in the explorer: FALSE)
    Compaction,          \* CompactLog (not in the explorer: FALSE)
    Ticks                \* abstract timer expiry: leases, CheckQuorum, transfer expiry (FALSE)

\* enabled_actions's `room`: fewer messages in flight than the bound.
Room == BagCardinality(messages) < MaxMessages

MCElectionTimeout(i) ==
    /\ running[i] /\ nodes[i].term < MaxTerm /\ Promotable(nodes[i]) /\ Room
    /\ ElectionTimeout(i)

MCHeartbeatTimeout(i) == Heartbeats /\ Room /\ HeartbeatTimeout(i)

MCPropose(i, value) ==
    /\ Room /\ LastIndex(nodes[i]) < MaxLogLength
    /\ Propose(i, value)

MCChangeMembership(i, change) ==
    /\ MembershipChanges /\ Room /\ LastIndex(nodes[i]) < MaxLogLength
    /\ ChangeMembership(i, change)

MCTransferLeadership(i, target) == Transfers /\ Room /\ TransferLeadership(i, target)

MCRequestRead(i) == Len(history.reads) < MaxReads /\ Room /\ RequestRead(i)

MCCompact(i) == Compaction /\ Compact(i)

MCTick(i, timer) == Ticks /\ Tick(i, timer)

MCCrash(i) == crashes < MaxCrashes /\ Crash(i)

MCDropMessage(m) == MessageLoss /\ DropMessage(m)

MCDuplicateMessage(m) == Room /\ CopiesIn(m, messages) < MaxCopies /\ DuplicateMessage(m)

MCNext ==
    \/ \E i \in Server :
          \/ MCElectionTimeout(i)
          \/ MCHeartbeatTimeout(i)
          \/ \E timer \in {"election", "transfer"} : MCTick(i, timer)
          \/ \E value \in Value : MCPropose(i, value)
          \/ \E change \in ConfigurationChanges : MCChangeMembership(i, change)
          \/ \E target \in Server : MCTransferLeadership(i, target)
          \/ MCRequestRead(i)
          \/ MCCompact(i)
          \/ StorageAcknowledged(i)
          \/ Applied(i)
          \/ MCCrash(i)
          \/ Restart(i)
    \/ \E m \in DOMAIN messages :
          \/ DeliverMessage(m)
          \/ MCDropMessage(m)
          \/ MCDuplicateMessage(m)

MCSpec == Init /\ [][MCNext]_vars

\* within_bounds: a broadcast may overflow the network bound; such states are not explored further.
\* TransferLeadership and TimeoutNow may start elections outside MCElectionTimeout: cap terms too.
MCConstraint ==
    /\ BagCardinality(messages) <= MaxMessages + Cardinality(Server)
    /\ \A i \in Server : nodes[i].term <= MaxTerm

\* The explorer's canonical view: protocol state only. A crashed server shows only what is durable.
DurablePart(s) ==
    [term |-> s.term, vote |-> s.vote, commitIndex |-> s.commitIndex,
     snapshot |-> s.snapshot, log |-> s.log]

MCView ==
    <<[i \in Server |-> IF running[i] THEN nodes[i] ELSE DurablePart(nodes[i])], running, messages>>

\* Server ids are interchangeable when every server starts as a voter (MCRaft.cfg: InitVoters = Server).
MCSymmetry == Permutations(Server)
=============================================================================
