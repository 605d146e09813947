"""A raft loop held up (by a long apply, say) is not then given a burst of ticks: like Go's
time.Ticker, the ticker does not queue a tick while one is still waiting."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from impl.node import node as node_module
from impl.node.node import Node
from spec.raft.io import Tick
from spec.raft.step import step as spec_step
from tests.impl.node.test_node import WAIT_SECONDS, single_member_config, wait_for_leadership

BLOCKED_SECONDS = 1.5  # many heartbeat intervals


def test_a_blocked_raft_loop_steps_one_tick_not_a_burst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = Node(single_member_config(tmp_path / "solo.etcd"))
    node.start()
    try:
        wait_for_leadership(node)
        ticks: list[float] = []

        def counting_step(state: Any, event: Any) -> Any:
            if isinstance(event, Tick):
                ticks.append(time.monotonic())
            return spec_step(state, event)

        monkeypatch.setattr(node_module, "step", counting_step)
        blocked_at: list[float] = []

        def hold_up_the_loop() -> None:
            blocked_at.append(time.monotonic())
            time.sleep(BLOCKED_SECONDS)

        node.call(hold_up_the_loop).result(timeout=WAIT_SECONDS)
        time.sleep(0.05)
        first = min(moment for moment in ticks if moment > blocked_at[0])  # once free again
        burst = [moment for moment in ticks if moment - first < 0.002]
        assert len(burst) <= 1, f"{len(burst)} ticks stepped at once after the loop was held up"
    finally:
        node.stop()
