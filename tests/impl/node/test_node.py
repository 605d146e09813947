"""One member in this process: flags refused as etcd refuses them, group commit, snapshots and
log compaction, restart from the data directory applying each entry exactly once."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from impl.node import node as node_module
from impl.node.cli import free_ports
from impl.node.config import NodeConfig, cluster_id, member_id, parse_initial_cluster
from impl.node.node import Node
from spec.errors import EtcdError
from spec.mvcc import PutRequest, RangeRequest, RangeResponse
from spec.raft.io import Propose, ProposeBatch
from spec.raft.step import step as spec_step

WAIT_SECONDS = 10


def test_member_and_cluster_ids_are_etcds() -> None:
    member = member_id(["http://localhost:2380"], "etcd-cluster")
    assert member == 0x8E9E05C52164694D
    assert cluster_id([member]) == 0xCDF818194E3A8C32


def test_an_election_timeout_under_five_heartbeats_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    completed = subprocess.run(
        [sys.executable, "-m", "impl.cli", "node", "--data-dir", str(data_dir),
         "--heartbeat-interval", "100", "--election-timeout", "499"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert completed.returncode == 2
    assert (
        "--election-timeout[499ms] should be at least 5 times as --heartbeat-interval[100ms]"
        in (completed.stderr)
    )
    assert not data_dir.exists(), "nothing written for refused flags"


def single_member_config(data_dir: Path, **overrides: Any) -> NodeConfig:
    peer_port, client_port = free_ports(2)
    peer = f"http://127.0.0.1:{peer_port}"
    client = f"http://127.0.0.1:{client_port}"
    return NodeConfig(
        name="solo", data_dir=data_dir, listen_client_urls=(client,), advertise_client_urls=(client,),
        listen_peer_urls=(peer,), initial_advertise_peer_urls=(peer,),
        initial_cluster=parse_initial_cluster(f"solo={peer}"),
        heartbeat_interval_ms=20, election_timeout_ms=100, **overrides,
    )  # fmt: skip


def wait_for_leadership(node: Node) -> None:
    for _ in range(100):
        if node.is_leader:
            return
        time.sleep(0.05)
    raise AssertionError("a single member did not elect itself within 5 s")


def put_all(node: Node, count: int, prefix: bytes = b"k") -> list[object]:
    futures: list[Future[object]] = [
        node.propose(PutRequest(key=b"%s%04d" % (prefix, number), value=b"v%d" % number))
        for number in range(count)
    ]
    return [future.result(timeout=WAIT_SECONDS) for future in futures]


def read_prefix(node: Node, prefix: bytes = b"k") -> RangeResponse:
    result = node.read(
        RangeRequest(key=prefix, range_end=prefix[:-1] + bytes([prefix[-1] + 1]))
    ).result(timeout=WAIT_SECONDS)
    assert isinstance(result, RangeResponse), result
    return result


def test_proposals_that_arrive_together_share_one_append_and_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """...and one spec step: a turn's proposals are one ProposeBatch, not one Propose each."""
    node = Node(single_member_config(tmp_path / "solo.etcd"))
    node.start()
    try:
        wait_for_leadership(node)
        saves: list[int] = []
        proposed: list[int] = []
        original_save = node.wal.save

        def counting_save(hard_state: Any, entries: Any) -> None:
            if entries:
                saves.append(len(entries))
            original_save(hard_state, entries)

        def counting_step(state: Any, event: Any) -> Any:
            if isinstance(event, Propose | ProposeBatch):
                proposed.append(len(event.data) if isinstance(event, ProposeBatch) else 1)
            return spec_step(state, event)

        node.wal.save = counting_save  # type: ignore[method-assign]
        monkeypatch.setattr(node_module, "step", counting_step)
        results = put_all(node, 200)
        assert all(not isinstance(result, Exception) for result in results)
        assert sum(saves) >= 200
        assert len(saves) <= 20, f"200 proposals took {len(saves)} WAL appends: {saves}"
        assert sum(proposed) >= 200  # and this member's own attributes, once
        assert len(proposed) <= 20, f"200 proposals took {len(proposed)} spec steps: {proposed}"
        assert read_prefix(node).count == 200
    finally:
        node.stop()


def test_snapshots_compact_the_log_and_a_restart_applies_nothing_twice(tmp_path: Path) -> None:
    config = single_member_config(
        tmp_path / "solo.etcd", snapshot_count=10, snapshot_catch_up_entries=5
    )
    node = Node(config)
    node.start()
    try:
        wait_for_leadership(node)
        for batch in range(6):
            put_all(node, 10, prefix=b"k%d" % batch)
        assert node.state.log.snapshot.index > 0, "the log was never compacted"
        assert len(node.state.log.entries) <= 10 + 5 + 10
        revision_before = read_prefix(node).header.revision
    finally:
        node.stop()
    assert list((config.data_dir / "member" / "snap").glob("*.snap")), "no snapshot file"

    restarted = Node(config)
    restarted.start()
    try:
        assert restarted.state.log.snapshot.index > 0, "the restart did not start from the snapshot"
        wait_for_leadership(restarted)
        after = read_prefix(restarted)
        assert after.count == 60
        assert after.header.revision == revision_before == 61, "an entry was applied twice or lost"
        put_all(restarted, 1, prefix=b"z")
        assert read_prefix(restarted, b"z").header.revision == 62
    finally:
        restarted.stop()


def test_the_spec_log_in_memory_stays_short_without_snapshots(tmp_path: Path) -> None:
    """The in-memory log is compacted without writing snapshot files (those wait for
    --snapshot-count); a restart replays the WAL and applies nothing twice."""
    config = single_member_config(tmp_path / "solo.etcd")
    node = Node(config)
    node.start()
    try:
        wait_for_leadership(node)
        for batch in range(8):
            put_all(node, 200, prefix=b"k%d" % batch)
        kept = len(node.state.log.entries)
        assert kept <= 3 * node_module.LOG_ENTRIES_IN_MEMORY_SLACK, f"{kept} entries in memory"
        assert node.state.log.snapshot.index > 0
    finally:
        node.stop()
    assert not list((config.data_dir / "member" / "snap").glob("*.snap")), "a snapshot file"
    restarted = Node(config)
    restarted.start()
    try:
        wait_for_leadership(restarted)
        assert read_prefix(restarted).header.revision == 1601
        assert read_prefix(restarted).count == 1600
    finally:
        restarted.stop()


def test_proposals_beyond_the_queue_limit_get_too_many_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = Node(single_member_config(tmp_path / "solo.etcd"))
    node.start()
    try:
        wait_for_leadership(node)
        monkeypatch.setattr(node_module, "QUEUED_INPUTS_MAX", 0)
        refused = node.propose(PutRequest(key=b"k", value=b"v")).result(timeout=WAIT_SECONDS)
        assert refused is EtcdError.TOO_MANY_REQUESTS
        monkeypatch.setattr(node_module, "QUEUED_INPUTS_MAX", 20_000)
        accepted = node.propose(PutRequest(key=b"k", value=b"v")).result(timeout=WAIT_SECONDS)
        assert not isinstance(accepted, EtcdError)
    finally:
        node.stop()
