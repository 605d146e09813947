"""Faults for launched clusters: one fault window per history, then recovery.

As in etcd's robustness tests, a history gets exactly one fault (more make failed requests
pile up and the linearizability search explode, etcd PR #14880): wait until the workload is
under way, inject, hold the fault for a window, recover, and wait until every member answers
again. Every wait is bounded.

* `kill`: SIGKILL a random member, then restart it from its data directory;
* `kill-leader`: the same for the current leader (forces an election);
* `pause`: SIGSTOP a random member, then SIGCONT it (a process pause, as Jepsen's nemesis);
* `rolling-restart`: stop each member in turn (SIGTERM) and start it again, waiting until it
  answers before the next;
* `blackhole`, `delay`, `drop`: put a random member's peer proxy in that mode for the window
  (needs a cluster launched with `peer_proxies=True`; see `peer_proxy`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from enum import StrEnum

from conformance.launcher import LaunchedCluster
from conformance.peer_proxy import LinkMode

FAULT_DELAY_SECONDS = 0.5
FAULT_WINDOW_SECONDS = 1.5
RECOVERY_TIMEOUT_SECONDS = 30.0


class Fault(StrEnum):
    KILL = "kill"
    KILL_LEADER = "kill-leader"
    PAUSE = "pause"
    BLACKHOLE = "blackhole"
    DELAY = "delay"
    DROP = "drop"
    ROLLING_RESTART = "rolling-restart"


NETWORK_FAULTS = {
    Fault.BLACKHOLE: LinkMode.BLACKHOLE,
    Fault.DELAY: LinkMode.DELAY,
    Fault.DROP: LinkMode.DROP,
}


@dataclass
class FaultRecord:
    fault: Fault
    member: int = -1
    injected_ns: int = 0
    recovered_ns: int = 0

    def describe(self) -> str:
        held = (self.recovered_ns - self.injected_ns) / 1e9
        target = "every member in turn" if self.fault == Fault.ROLLING_RESTART else f"member{self.member}"
        return f"{self.fault} of {target}, {held:.1f} s until recovered"


def inject_fault(cluster: LaunchedCluster, fault: Fault, seed: int) -> FaultRecord:
    """Inject one fault after a short delay, hold it, recover; returns what was done."""
    draw = random.Random(seed)
    record = FaultRecord(fault)
    time.sleep(FAULT_DELAY_SECONDS)
    if fault == Fault.KILL_LEADER:
        leader = cluster.leader_index()
        record.member = leader if leader is not None else 0
    else:
        record.member = draw.randrange(len(cluster.members))
    record.injected_ns = time.monotonic_ns()
    if fault in NETWORK_FAULTS:
        if not cluster.proxies:
            raise ValueError(f"{fault} needs a cluster launched with peer proxies")
        proxy = cluster.proxies[record.member]
        proxy.mode = NETWORK_FAULTS[fault]
        time.sleep(FAULT_WINDOW_SECONDS)
        proxy.mode = LinkMode.PASS
    elif fault == Fault.ROLLING_RESTART:
        for index, member in enumerate(cluster.members):
            cluster.stop_member(member)
            cluster.restart(index, ready_timeout_seconds=RECOVERY_TIMEOUT_SECONDS)
    elif fault == Fault.PAUSE:
        cluster.pause(record.member)
        time.sleep(FAULT_WINDOW_SECONDS)
        cluster.resume(record.member)
    else:
        cluster.kill(record.member)
        time.sleep(FAULT_WINDOW_SECONDS)
        cluster.restart(record.member, ready_timeout_seconds=RECOVERY_TIMEOUT_SECONDS)
    cluster.wait_until_ready(RECOVERY_TIMEOUT_SECONDS)
    record.recovered_ns = time.monotonic_ns()
    return record
