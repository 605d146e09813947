"""Membership changes at runtime: etcd's checks on the member table, the entries that carry a
change, and a three-member etcdref cluster growing to four (the new member joins with
--initial-cluster-state existing), promoting a learner, and shrinking again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from impl.node.cli import free_ports
from impl.node.membership import (
    HEALTH_INTERVAL_SECONDS,
    ClusterInfo,
    Member,
    MemberTable,
    added_member_id,
    apply_change,
    change_in,
    change_out,
    check_add,
    check_promote,
    check_remove,
    check_update,
    ready_to_add_voter,
    ready_to_remove_voter,
    update_in,
    update_out,
    valid_peer_urls,
    validate_change,
)
from spec.errors import EtcdError
from spec.raft.types import ChangeAction, ConfigurationChange, NodeId
from tests.impl.node.harness import REPOSITORY, EtcdrefCluster

CONNECTED = HEALTH_INTERVAL_SECONDS + 1


def member(member_id: int, name: str = "", learner: bool = False) -> Member:
    return Member(member_id, name, (f"http://127.0.0.1:{member_id}",), (), learner)


def table(*members: Member) -> MemberTable:
    return MemberTable(members)


THREE = table(member(1, "a"), member(2, "b"), member(3, "c"))


def test_a_change_context_survives_the_entry_encoding() -> None:
    added = Member(7, "", ("http://10.0.0.1:2380", "http://10.0.0.2:2380"), (), True)
    change = change_out(42, ChangeAction.ADD_LEARNER, added)
    decoded = ConfigurationChange.decode(change.encode())
    assert decoded == change
    assert decoded is not None and change_in(decoded) == (42, added)
    assert ConfigurationChange.decode(b"remove 7") == ConfigurationChange(
        ChangeAction.REMOVE, NodeId(7)
    )
    assert update_in(update_out(9, 7, ("http://h:1",))) == (9, 7, ("http://h:1",))


def test_member_table_survives_encoding_and_lists_by_id() -> None:
    grown = apply_change(THREE, ChangeAction.ADD_LEARNER, member(0xFF00))
    shrunk = apply_change(grown, ChangeAction.REMOVE, member(2))
    assert [each.member_id for each in shrunk.members] == [1, 3, 0xFF00]
    assert MemberTable.decode(shrunk.encode()) == shrunk
    assert shrunk.removed == {2}
    info = ClusterInfo(99, shrunk, frozenset({1, 2, 3}))
    assert ClusterInfo.decode(info.encode()) == info


def test_added_member_ids_are_etcds_and_depend_on_time() -> None:
    # Ids real etcd 3.4.23 gave `member add` for these URLs, and the second it ran.
    assert added_member_id(["http://127.0.0.1:23804"], 1_796_177_295) == 0x8C6299041EC8F999
    assert added_member_id(["http://127.0.0.1:23805"], 1_796_177_302) == 0x40EA44EC34E97855
    assert added_member_id(["http://x:1"], 1) != added_member_id(["http://x:1"], 2)


def test_peer_urls_must_be_http_host_port() -> None:
    assert valid_peer_urls(["http://127.0.0.1:2380", "https://h:1"])
    for bad in ([], ["foo"], ["http://h"], ["ftp://h:1"], ["http://h:1/path"]):
        assert not valid_peer_urls(bad), bad


def test_quorum_of_started_members() -> None:
    """etcd IsReadyTo*: unstarted members (no name) do not count toward the quorum."""
    unstarted = apply_change(THREE, ChangeAction.ADD_VOTER, member(4))
    assert ready_to_add_voter(THREE)
    assert ready_to_add_voter(table(member(1, "a")))  # a single member may add a second
    assert not ready_to_add_voter(table(member(1, "a"), member(2)))
    assert ready_to_remove_voter(unstarted, 3)  # a, b started of a, b, unstarted 4
    two_unstarted = apply_change(unstarted, ChangeAction.REMOVE, member(3))
    assert not ready_to_remove_voter(two_unstarted, 2)  # a alone of a, 4
    connected = {2: CONNECTED, 4: 0.0}
    assert check_remove(two_unstarted, 2, 1, connected) is EtcdError.MEMBER_NOT_ENOUGH_STARTED


def test_etcds_errors_for_each_change() -> None:
    connected = {2: CONNECTED, 3: CONNECTED}
    assert check_add(THREE, member(5), 1, connected) is None
    assert check_add(THREE, member(5), 1, {2: CONNECTED, 3: 1.0}) is EtcdError.UNHEALTHY
    taken = Member(5, "", member(2).peer_urls)
    assert check_add(THREE, taken, 1, connected) is EtcdError.PEER_URL_EXISTS
    with_learner = apply_change(THREE, ChangeAction.ADD_LEARNER, member(6))
    assert check_add(with_learner, member(7, learner=True), 1, connected) is (
        EtcdError.TOO_MANY_LEARNERS
    )
    assert check_remove(THREE, 9, 1, connected) is EtcdError.MEMBER_NOT_FOUND
    assert check_remove(THREE, 3, 1, connected) is None
    # Removing a connected voter while another is down would leave no active quorum.
    assert check_remove(THREE, 3, 1, {2: 0.0, 3: CONNECTED}) is EtcdError.UNHEALTHY
    assert check_remove(THREE, 2, 1, {2: 0.0, 3: CONNECTED}) is None  # a down member may go
    assert check_promote(THREE, 2, None, 10) is EtcdError.MEMBER_NOT_LEARNER
    assert check_promote(THREE, 9, None, 10) is EtcdError.MEMBER_NOT_FOUND
    assert check_promote(with_learner, 6, 8, 10) is EtcdError.LEARNER_NOT_READY
    assert check_promote(with_learner, 6, 9, 10) is None
    assert check_update(THREE, 9, ("http://h:1",)) is EtcdError.MEMBER_NOT_FOUND
    assert check_update(THREE, 1, member(2).peer_urls) is EtcdError.PEER_URL_EXISTS
    assert check_update(THREE, 1, member(1).peer_urls) is None
    assert validate_change(THREE, ChangeAction.ADD_VOTER, Member(3, "", ("http://new:1",))) is (
        EtcdError.MEMBER_EXISTS
    )
    # A removed id is gone for good: etcd's ErrIDRemoved, reported as "member not found".
    removed = apply_change(THREE, ChangeAction.REMOVE, member(3))
    assert validate_change(removed, ChangeAction.ADD_VOTER, Member(3, "", ("http://new:1",))) is (
        EtcdError.MEMBER_NOT_FOUND
    )


# --- a real cluster ---------------------------------------------------------------------------


def etcdctl(endpoints: list[str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["etcdctl", f"--endpoints={','.join(endpoints)}", *arguments],
        capture_output=True, text=True, timeout=30,
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def member_ids(endpoints: list[str]) -> dict[str, str]:
    """peer URL -> member id (hex), from etcdctl member list."""
    listing = etcdctl(endpoints, "member", "list")
    assert listing.returncode == 0, listing.stderr
    return {
        line.split(", ")[3]: line.split(", ")[0] for line in listing.stdout.splitlines() if line
    }


def wait_until(
    condition: Callable[[], bool],
    timeout_seconds: float,
    what: str,
    detail: Callable[[], str] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_seconds} s: {what}\n{detail()}")


def logs(cluster: EtcdrefCluster, root: Path) -> str:
    tails = [cluster.log_tail(index) for index in range(cluster.size)]
    joined = root / "m4.log"
    if joined.exists():
        tails.append("m4| " + "\nm4| ".join(joined.read_text().splitlines()[-30:]))
    return "\n".join(tails)


def start_joining_member(
    root: Path, name: str, added_output: str, client_port: int, peer_url: str
) -> subprocess.Popen[bytes]:
    lines = dict(
        line.split("=", 1) for line in added_output.splitlines() if line.startswith("ETCD_")
    )
    client = f"http://127.0.0.1:{client_port}"
    with open(root / f"{name}.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "impl.cli", "node", "--name", name,
             "--data-dir", str(root / f"{name}.etcd"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer_url,
             "--initial-advertise-peer-urls", lines["ETCD_INITIAL_ADVERTISE_PEER_URLS"].strip('"'),
             "--initial-cluster", lines["ETCD_INITIAL_CLUSTER"].strip('"'),
             "--initial-cluster-state", lines["ETCD_INITIAL_CLUSTER_STATE"].strip('"')],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY, start_new_session=True,
        )  # fmt: skip


def test_a_member_is_added_joins_is_promoted_and_removed(tmp_path: Path) -> None:
    with EtcdrefCluster(tmp_path) as cluster:
        endpoints = cluster.endpoints
        time.sleep(HEALTH_INTERVAL_SECONDS + 0.5)  # etcd adds only when every peer is connected
        client_port, peer_port = free_ports(2)
        peer = f"http://127.0.0.1:{peer_port}"
        added = etcdctl(endpoints, "member", "add", "m4", f"--peer-urls={peer}", "--learner")
        assert added.returncode == 0, added.stderr
        assert added.stdout.startswith("Member ") and "ETCD_INITIAL_CLUSTER_STATE=" in added.stdout
        new_id = member_ids(endpoints)[peer]
        listing = etcdctl(endpoints, "member", "list")
        assert f"{new_id}, unstarted, , {peer}, , true" in listing.stdout
        not_ready = etcdctl(endpoints, "member", "promote", new_id)
        assert "can only promote a learner member which is in sync with leader" in not_ready.stderr
        for number in range(20):
            assert etcdctl(endpoints, "put", f"k{number}", f"v{number}").returncode == 0
        process = start_joining_member(tmp_path, "m4", added.stdout, client_port, peer)
        try:
            new_endpoint = [f"127.0.0.1:{client_port}"]
            wait_until(
                lambda: (
                    etcdctl(new_endpoint, "get", "k19", "--consistency", "s").stdout == "k19\nv19\n"
                ),
                20,
                "the new member has the keys written before it joined",
                lambda: logs(cluster, tmp_path),
            )
            # A learner serves only Status, serializable reads and snapshots (as etcd 3.4.23).
            for refused in (["put", "x", "y"], ["get", "k19"], ["member", "list"]):
                answer = etcdctl(new_endpoint, "--command-timeout=3s", *refused)
                assert "Error: etcdserver: rpc not supported for learner" in answer.stderr, refused
            assert ", false, true, " in etcdctl(new_endpoint, "endpoint", "status").stdout
            promoted = etcdctl(endpoints, "member", "promote", new_id)
            assert promoted.returncode == 0, promoted.stderr + logs(cluster, tmp_path)
            assert promoted.stdout.startswith(f"Member {int(new_id, 16):16x} promoted in cluster ")
            listing = etcdctl(endpoints + new_endpoint, "member", "list")
            assert f"{new_id}, started, m4, {peer}, http://127.0.0.1:{client_port}, false" in (
                listing.stdout
            )
            assert etcdctl(new_endpoint, "put", "from-m4", "x").returncode == 0
            # A joined member restarts from its data directory with the same flags.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            process = start_joining_member(tmp_path, "m4", added.stdout, client_port, peer)
            wait_until(
                lambda: etcdctl(new_endpoint, "get", "from-m4").stdout == "from-m4\nx\n",
                20,
                "the joined member restarts and serves linearizable reads",
                lambda: logs(cluster, tmp_path),
            )
            removed = etcdctl(endpoints, "member", "remove", new_id)
            assert removed.returncode == 0, removed.stderr
            assert removed.stdout.startswith(f"Member {int(new_id, 16):16x} removed from cluster ")
            process.wait(timeout=15)  # a removed member stops by itself, as etcd's does
            restarted = start_joining_member(tmp_path, "m4", added.stdout, client_port, peer)
            assert restarted.wait(timeout=30) == 1
            assert "which was removed from the cluster; it cannot rejoin" in (
                (tmp_path / "m4.log").read_text()
            )
            again = etcdctl(endpoints, "member", "remove", new_id)
            assert "Error: etcdserver: member not found" in again.stderr
            assert new_id not in etcdctl(endpoints, "member", "list").stdout
            assert etcdctl(endpoints, "get", "from-m4").stdout == "from-m4\nx\n"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def test_membership_survives_a_restart(tmp_path: Path) -> None:
    """A follower forwards member changes to the leader (answers and errors unchanged), and the
    member table is stored: after a restart the member list still shows the change."""
    with EtcdrefCluster(tmp_path) as cluster:
        endpoints = cluster.endpoints
        follower = (cluster.wait_for_leader() + 1) % cluster.size
        time.sleep(HEALTH_INTERVAL_SECONDS + 0.5)
        peer = f"http://127.0.0.1:{free_ports(1)[0]}"
        through = [endpoints[follower]]
        added = etcdctl(through, "member", "add", "m4", f"--peer-urls={peer}", "--learner")
        assert added.returncode == 0, added.stderr
        assert added.stdout.startswith("Member ") and 'ETCD_NAME="m4"' in added.stdout
        missing = etcdctl(through, "member", "remove", "1234")
        assert "Error: etcdserver: member not found" in missing.stderr
        cluster.kill(follower)
        cluster.spawn(follower)
        cluster.wait_for_leader()
        wait_until(
            lambda: peer in etcdctl(through, "member", "list").stdout,
            10,
            "the restarted member lists the added one",
            lambda: logs(cluster, tmp_path),
        )


def test_a_member_removed_while_it_was_down_stops_when_it_restarts(tmp_path: Path) -> None:
    """Nobody sends to a removed member, so it never hears of its removal from the log: hearing
    from no leader, it asks its peers and stops (etcd's peers answer it 410 Gone)."""
    with EtcdrefCluster(tmp_path) as cluster:
        leader = cluster.wait_for_leader()
        gone = (leader + 1) % cluster.size
        gone_id = etcdctl([cluster.endpoints[gone]], "endpoint", "status").stdout.split(", ")[1]
        time.sleep(HEALTH_INTERVAL_SECONDS + 0.5)  # the others must have been connected 5 s
        cluster.kill(gone)
        time.sleep(1)  # the leader notices it is down: removing it cannot cost the quorum
        others = [endpoint for index, endpoint in enumerate(cluster.endpoints) if index != gone]
        removed = etcdctl(others, "member", "remove", gone_id)
        assert removed.returncode == 0, removed.stderr
        cluster.spawn(gone)
        process = cluster.processes[gone]
        assert process is not None
        process.wait(timeout=30)
        assert "the member has been permanently removed from the cluster" in (
            cluster.log_path(gone).read_text()
        )
        cluster.processes[gone] = None
        assert etcdctl(others, "put", "still", "working").returncode == 0
