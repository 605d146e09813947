"""Raft safety under random schedules: the Hypothesis state machine over the real spec.

Every rule is one action of the cluster model; every invariant (the five properties of Raft
Figure 3 and the rest in models.invariants) is checked after every step. Failures print the
shrunk sequence of rules and a reproduction blob.
"""

from __future__ import annotations

from hypothesis import settings

from tests.conftest import DEEP
from tests.models.raft_machine import RaftClusterMachine

TestRaftSafety = RaftClusterMachine.TestCase
TestRaftSafety.settings = settings(
    settings.default,
    max_examples=3000 if DEEP else 300,
    stateful_step_count=120 if DEEP else 60,
)
