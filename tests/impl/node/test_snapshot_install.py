"""A follower that fell behind the leader's compacted log catches up through a snapshot: the
leader streams a consistent copy of its keyspace, the follower installs it, continues from the
log, and every member then reports the same HashKV; it also restarts from what it installed."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import grpc

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from impl.wal import (
    Entry,
    HardState,
    SnapshotPoint,
    Wal,
    WalMetadata,
    read_wal,
    valid_snapshot_points,
)
from tests.impl.node.harness import EtcdrefCluster

SNAPSHOT_FLAGS = ("--snapshot-count", "20", "--experimental-snapshot-catchup-entries", "5")
WAIT_SECONDS = 30.0


def hash_kv(endpoint: str) -> tuple[int, int] | None:
    """(hash, revision) of everything the member holds, or None if it cannot answer yet."""
    with grpc.insecure_channel(endpoint) as channel:
        try:
            response = rpc_pb2_grpc.MaintenanceStub(channel).HashKV(
                rpc_pb2.HashKVRequest(revision=0), timeout=2
            )
        except grpc.RpcError:
            return None
    return response.hash, response.header.revision


def put(endpoint: str, key: str, value: str) -> None:
    with grpc.insecure_channel(endpoint) as channel:
        rpc_pb2_grpc.KVStub(channel).Put(
            rpc_pb2.PutRequest(key=key.encode(), value=value.encode()), timeout=10
        )


def same_hash_everywhere(cluster: EtcdrefCluster, revision: int) -> bool:
    hashes = {hash_kv(endpoint) for endpoint in cluster.endpoints}
    return len(hashes) == 1 and None not in hashes and next(iter(hashes))[1] == revision  # type: ignore[index]


def wait_for_same_hash(cluster: EtcdrefCluster, revision: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if same_hash_everywhere(cluster, revision):
            return
        time.sleep(0.3)
    hashes = [hash_kv(endpoint) for endpoint in cluster.endpoints]
    tails = "\n".join(cluster.log_tail(index) for index in range(cluster.size))
    raise AssertionError(f"members disagree at revision {revision}: {hashes}\n{tails}")


def log_text(cluster: EtcdrefCluster, index: int) -> str:
    return cluster.log_path(index).read_text(errors="replace")


def test_the_wal_of_a_member_that_installed_a_snapshot_reopens(tmp_path: Path) -> None:
    """After an install the WAL holds the old entries, the snapshot record, then entries from
    the snapshot's index + 1 on (as etcd writes it): that is no hole, and it reopens there."""
    directory = tmp_path / "wal"
    with Wal.create(directory, WalMetadata(1, 2)) as wal:
        wal.save(HardState(1, 1, 5), [Entry(1, index) for index in range(1, 6)])
        wal.save_snapshot(SnapshotPoint(96, 1))
        wal.save(HardState(1, 1, 96), [])
        wal.save(HardState(1, 1, 98), [Entry(1, 97), Entry(1, 98)])
    assert SnapshotPoint(96, 1) in valid_snapshot_points(directory)
    result = read_wal(directory, SnapshotPoint(96, 1))
    assert [entry.index for entry in result.contents.entries] == [97, 98]
    assert [entry.index for entry in read_wal(directory, None).contents.entries] == [97, 98]
    reopened, contents = Wal.open(directory, SnapshotPoint(96, 1))
    reopened.close()
    assert contents.hard_state.commit == 98 and len(contents.entries) == 2


def test_a_follower_behind_the_compacted_log_catches_up_through_a_snapshot(
    tmp_path: Path,
) -> None:
    with EtcdrefCluster(tmp_path, extra=SNAPSHOT_FLAGS) as cluster:
        leader = cluster.wait_for_leader()
        follower = (leader + 1) % cluster.size
        put(cluster.endpoints[leader], "before", "the follower stopped")
        cluster.kill(follower)
        snap_dir = tmp_path / f"m{follower + 1}.etcd" / "member" / "snap"
        behind = tmp_path / "behind.db"
        shutil.copyfile(snap_dir / "db", behind)  # the keyspace as it was before the snapshot
        for number in range(100):  # five times --snapshot-count: the leader compacts past it
            put(cluster.endpoints[leader], f"key{number:03}", f"value{number}")
        others = [index for index in range(cluster.size) if index != follower]
        assert all("log compacted" in log_text(cluster, index) for index in others)
        cluster.spawn(follower)
        wait_for_same_hash(cluster, revision=102)
        # (by whichever member leads by then: elections may happen on a busy machine)
        assert any("sending snapshot at index" in log_text(cluster, index) for index in others)
        assert "installed snapshot at index" in log_text(cluster, follower)
        assert (
            list((tmp_path / f"m{follower + 1}.etcd" / "member" / "snap").glob("*.snap.db")) == []
        )

        # It continues from the log: later writes reach it, and a restart starts from the
        # installed snapshot and keyspace.
        put(cluster.endpoints[leader], "after", "the snapshot")
        wait_for_same_hash(cluster, revision=103)
        cluster.kill(follower)
        cluster.spawn(follower)
        cluster.wait_for_leader()
        wait_for_same_hash(cluster, revision=103)
        listing = subprocess.run(
            ["etcdctl", f"--endpoints={cluster.endpoints[follower]}", "get", "key099",
             "--consistency", "s"],
            capture_output=True, text=True, timeout=20, env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert listing.stdout == "key099\nvalue99\n"

        # Stopped after recording the snapshot but before swapping its keyspace in: the restart
        # finds the keyspace behind the snapshot and finishes the swap from <index>.snap.db.
        cluster.kill(follower)
        newest = max(snap_dir.glob("*.snap"), key=lambda path: path.name)
        snapshot_index = int(newest.stem.split("-")[1], 16)
        os.replace(snap_dir / "db", snap_dir / f"{snapshot_index:016x}.snap.db")
        shutil.copyfile(behind, snap_dir / "db")
        leftovers = [snap_dir / "outgoing-0000000000000001.db", snap_dir / "incoming-1-2.part"]
        for leftover in leftovers:  # as a stop while streaming a snapshot would leave them
            leftover.write_bytes(b"partial")
        cluster.spawn(follower)
        cluster.wait_for_leader()
        wait_for_same_hash(cluster, revision=103)
        assert not (snap_dir / f"{snapshot_index:016x}.snap.db").exists()
        assert not any(leftover.exists() for leftover in leftovers)
        assert f"finishing the install of the snapshot at index {snapshot_index}" in log_text(
            cluster, follower
        )


def test_a_watch_on_the_follower_sees_every_event_across_the_snapshot(tmp_path: Path) -> None:
    """The follower is frozen (SIGSTOP) with a watch open on it while the leader compacts its log;
    thawed, it installs a snapshot, and the watch still delivers every write, in order (etcd
    moves watchers back to unsynced when it restores a snapshot)."""
    with EtcdrefCluster(tmp_path, extra=SNAPSHOT_FLAGS) as cluster:
        leader = cluster.wait_for_leader()
        follower = (leader + 1) % cluster.size
        requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        requests.put(
            rpc_pb2.WatchRequest(
                create_request=rpc_pb2.WatchCreateRequest(key=b"key", range_end=b"kez")
            )
        )
        keys: list[bytes] = []
        # Catch-up batches many revisions into one response; etcd's clients accept up to 2 GiB.
        channel = grpc.insecure_channel(
            cluster.endpoints[follower], options=[("grpc.max_receive_message_length", -1)]
        )
        stream = rpc_pb2_grpc.WatchStub(channel).Watch(iter(requests.get, None), timeout=60)

        problems: list[str] = []

        def collect() -> None:
            try:
                for response in stream:
                    if response.canceled:
                        problems.append(f"canceled: {response}")
                    keys.extend(event.kv.key for event in response.events)
                    if len(keys) >= 100:
                        return
                problems.append("the stream ended")
            except grpc.RpcError as error:
                problems.append(f"the stream failed: {error}")

        reader = threading.Thread(target=collect, daemon=True)
        reader.start()
        time.sleep(0.5)  # the watch is created before the follower freezes
        process = cluster.processes[follower]
        assert process is not None
        os.killpg(process.pid, signal.SIGSTOP)
        try:
            # Large values, and frozen past the leader's 5 s send timeout: the appends in flight
            # overflow the socket buffers and the connection breaks, so some are lost and the
            # follower cannot catch up from messages sent before the leader compacted its log.
            for number in range(100):
                put(cluster.endpoints[leader], f"key{number:03}", f"{number}".ljust(100_000, "."))
            time.sleep(6)
        finally:
            os.killpg(process.pid, signal.SIGCONT)
        reader.join(timeout=WAIT_SECONDS)
        requests.put(None)
        channel.close()
        assert "installed snapshot at index" in log_text(cluster, follower)
        assert problems == []
        assert keys == [f"key{number:03}".encode() for number in range(100)]
