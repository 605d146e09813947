"""Raft, as etcd runs it, written as pure functions.

Read in this order:

- `types`: ids, entries, hard state, roles, membership, settings.
- `log`: the log as a value (snapshot point + entries), with the Log Matching helpers.
- `messages`: every message between nodes, and which must wait for persistence.
- `io`: the inputs `step` accepts and the output the host must act on, with its ordering rules.
- `state`: one node's state; how a node starts and restarts.
- `roles`: the only functions that change a node's role.
- `election`: timers, PreVote, RequestVote, CheckQuorum.
- `replication`: AppendEntries, heartbeats, snapshots, flow control, the commit rule.
- `reads`: ReadIndex linearizable reads.
- `proposals`: client entries and one-server membership changes.
- `transfer`: leadership transfer.
- `storage`: durable, applied and compacted reports from the host.
- `step`: the entry point, term checks and dispatch.
- `invariants`: what must hold of every single node after every step.

Sources are cited as "Raft §x" (Ongaro and Ousterhout, In Search of an Understandable Consensus
Algorithm, 2014), "thesis §x" (Ongaro, Consensus: Bridging Theory and Practice, 2014), and
etcd (the behaviour of etcd-io/raft where it chooses among what the papers allow).
"""

# The entry point is `spec.raft.step.step`; it is not re-exported here, so that `spec.raft.step`
# stays the module (and tests can replace functions in it).
