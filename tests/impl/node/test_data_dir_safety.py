"""`etcdref node` refuses to start, with a clear message and nothing in the data directory
changed, when the directory was written by another member or another cluster, when a port it
needs is taken, or when its flags contradict each other."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from impl.node.cli import free_ports
from tests.impl.node.harness import REPOSITORY

RUN_SECONDS = 30


def node_arguments(
    name: str,
    data_dir: Path,
    client_port: int,
    peer_port: int,
    initial_cluster: str | None = None,
    token: str = "etcd-cluster",
) -> list[str]:
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return [
        "--name", name, "--data-dir", str(data_dir),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", initial_cluster or f"{name}={peer}",
        "--initial-cluster-token", token,
        "--heartbeat-interval", "20", "--election-timeout", "200",
    ]  # fmt: skip


def run_node(
    arguments: list[str], seconds: float = RUN_SECONDS
) -> subprocess.CompletedProcess[str]:
    """Run `etcdref node` expecting it to refuse (a node that starts is stopped at the deadline)."""
    return subprocess.run(
        [sys.executable, "-m", "impl.cli", "node", *arguments],
        capture_output=True, text=True, timeout=seconds, cwd=REPOSITORY,
    )  # fmt: skip


def snapshot_of(directory: Path) -> dict[str, str]:
    """Every file below `directory` with a digest of its bytes (and of its size and mtime)."""
    result = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            result[str(path.relative_to(directory))] = f"{digest} {stat.st_size} {stat.st_mtime_ns}"
    return result


def start_and_stop(arguments: list[str], client_port: int) -> None:
    """Run a member until it serves a write, then stop it cleanly (SIGTERM)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "impl.cli", "node", *arguments],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPOSITORY,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            put = subprocess.run(
                ["etcdctl", f"--endpoints=127.0.0.1:{client_port}", "put", "k", "v"],
                capture_output=True, text=True, timeout=10,
                env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
            )  # fmt: skip
            if put.returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the member never served a write")
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A data directory a single-member cluster `one` wrote, and the flags it ran with."""
    root = tmp_path_factory.mktemp("written")
    client_port, peer_port = free_ports(2)
    arguments = node_arguments("one", root / "one.etcd", client_port, peer_port)
    start_and_stop(arguments, client_port)
    return root / "one.etcd", arguments


def refused_without_change(
    data_dir: Path, arguments: list[str], expected: str, exit_code: int = 1
) -> None:
    before = snapshot_of(data_dir)
    completed = run_node(arguments)
    assert completed.returncode == exit_code, completed.stderr
    assert expected in completed.stderr, completed.stderr
    assert snapshot_of(data_dir) == before, "the data directory was changed"


def test_the_same_flags_restart_the_member(written: tuple[Path, list[str]]) -> None:
    """The control case: what the refusals below change is the flags, not the directory."""
    _, arguments = written
    client_port = int(arguments[arguments.index("--listen-client-urls") + 1].rsplit(":", 1)[1])
    start_and_stop(arguments, client_port)


def test_a_directory_of_another_member_is_refused(written: tuple[Path, list[str]]) -> None:
    data_dir, _ = written
    client_port, peer_port = free_ports(2)
    other = node_arguments("other", data_dir, client_port, peer_port)
    refused_without_change(data_dir, other, "was written by member")


def test_a_directory_of_another_cluster_is_refused(written: tuple[Path, list[str]]) -> None:
    """Same member URLs, another cluster token: another member id, another cluster id."""
    data_dir, arguments = written
    client_port, peer_port = free_ports(2)
    peer = arguments[arguments.index("--initial-advertise-peer-urls") + 1]
    other = node_arguments("one", data_dir, client_port, peer_port, token="another-cluster")
    other[other.index("--listen-peer-urls") + 1] = peer
    other[other.index("--initial-advertise-peer-urls") + 1] = peer
    other[other.index("--initial-cluster") + 1] = f"one={peer}"
    refused_without_change(data_dir, other, "was written by member")


def test_a_directory_of_a_cluster_with_other_members_is_refused(
    written: tuple[Path, list[str]],
) -> None:
    """Same member, but --initial-cluster names a cluster this directory never belonged to."""
    data_dir, arguments = written
    peer = arguments[arguments.index("--initial-advertise-peer-urls") + 1]
    grown = arguments.copy()
    grown[grown.index("--initial-cluster") + 1] = f"one={peer},two=http://127.0.0.1:1"
    refused_without_change(data_dir, grown, "but these flags describe cluster")


def test_a_taken_peer_port_is_refused_before_the_directory_is_touched(
    written: tuple[Path, list[str]], tmp_path: Path
) -> None:
    data_dir, arguments = written
    peer_port = int(arguments[arguments.index("--listen-peer-urls") + 1].rsplit(":", 1)[1])
    with socket.create_server(("127.0.0.1", peer_port)):
        refused_without_change(data_dir, arguments, "cannot listen for peers")
        fresh = tmp_path / "fresh.etcd"
        client_port, _ = free_ports(2)
        new = node_arguments("new", fresh, client_port, peer_port)
        completed = run_node(new)
        assert completed.returncode == 1 and "cannot listen for peers" in completed.stderr
        assert not fresh.exists(), "nothing is created for a member that cannot start"


def test_a_taken_client_port_is_refused_before_the_directory_is_touched(
    written: tuple[Path, list[str]], tmp_path: Path
) -> None:
    data_dir, arguments = written
    client_port = int(arguments[arguments.index("--listen-client-urls") + 1].rsplit(":", 1)[1])
    with socket.create_server(("127.0.0.1", client_port)):
        refused_without_change(data_dir, arguments, "cannot listen for clients")
        fresh = tmp_path / "fresh.etcd"
        _, peer_port = free_ports(2)
        completed = run_node(node_arguments("new", fresh, client_port, peer_port))
        assert completed.returncode == 1 and "cannot listen for clients" in completed.stderr
        assert not fresh.exists()


def contradictions(tmp_path: Path) -> list[tuple[list[str], str]]:
    client_port, peer_port = free_ports(2)
    base = node_arguments("m", tmp_path / "m.etcd", client_port, peer_port)
    peer = f"http://127.0.0.1:{peer_port}"

    def with_flag(flag: str, value: str) -> list[str]:
        changed = base.copy()
        changed[changed.index(flag) + 1] = value
        return changed

    return [
        (with_flag("--initial-cluster", "other=http://127.0.0.1:1"),
         "couldn't find local name 'm' in the initial cluster configuration"),
        (with_flag("--initial-cluster", "m=http://127.0.0.1:1"),
         f"--initial-cluster has m=http://127.0.0.1:1 but --initial-advertise-peer-urls has {peer}"),
        (with_flag("--initial-cluster", f"m={peer},n={peer}"),
         f"--initial-cluster gives peer URL {peer} to both m and n"),
        (with_flag("--listen-client-urls", peer),
         "--listen-client-urls and --listen-peer-urls both name 127.0.0.1"),
        (with_flag("--election-timeout", "50"),
         "--election-timeout[50ms] should be at least 5 times as --heartbeat-interval[20ms]"),
        (with_flag("--advertise-client-urls", "localhost"),
         "--advertise-client-urls: URL 'localhost' must look like http://host:port"),
        ([*base, "--snapshot-count", "0"], "--snapshot-count must be at least 1"),
    ]  # fmt: skip


def test_contradictory_flags_are_refused_and_nothing_is_created(tmp_path: Path) -> None:
    for arguments, expected in contradictions(tmp_path):
        completed = run_node(arguments)
        assert completed.returncode == 2, (arguments, completed.stderr)
        assert f"etcdref node: {expected}" in completed.stderr, completed.stderr
        assert not (tmp_path / "m.etcd").exists()


def test_joining_a_cluster_nobody_answers_for_is_refused(tmp_path: Path) -> None:
    client_port, peer_port, silent_port = free_ports(3)
    peer = f"http://127.0.0.1:{peer_port}"
    arguments = node_arguments(
        "m", tmp_path / "m.etcd", client_port, peer_port,
        initial_cluster=f"m={peer},gone=http://127.0.0.1:{silent_port}",
    )  # fmt: skip
    completed = run_node([*arguments, "--initial-cluster-state", "existing"])
    assert completed.returncode == 1
    assert "answered with the cluster's members" in completed.stderr
    assert not (tmp_path / "m.etcd").exists()
