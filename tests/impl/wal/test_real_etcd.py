"""Byte compatibility with real etcd 3.4: read its WAL, and have it replay one we appended to.

Method: start the real etcd on a temporary data directory with loopback URLs on free ports,
write keys with etcdctl (put, delete, txn), stop it, then `etcdref wal dump` and `verify` its
`member/wal`. Every decoded record is re-encoded by our writer's encoders and must give the
same bytes. Finally our Wal appends a put to etcd's WAL and the restarted etcd must serve it.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdpb.etcdserverpb import etcdserver_pb2, raft_internal_pb2, rpc_pb2
from etcdpb.raftpb import raft_pb2
from impl.wal import Entry, HardState, Wal, WalLockedError, read_wal
from impl.wal.cli import VerifyStatus, dump, verify
from impl.wal.files import list_segments
from impl.wal.record import RecordType, scan_segment
from impl.wal.wal import _encode_entry, _encode_hard_state, _encode_metadata

pytestmark = pytest.mark.etcd


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RealEtcd:
    """One real etcd member on loopback, stopped by its process id."""

    def __init__(self, data_dir: Path, extra_flags: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.extra_flags = extra_flags
        self.client_url = f"http://127.0.0.1:{free_port()}"
        self.peer_url = f"http://127.0.0.1:{free_port()}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            "etcd", "--name", "solo", "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", f"solo={self.peer_url}", *self.extra_flags,
        ]  # fmt: skip
        log = open(self.data_dir.parent / "etcd.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ctl("endpoint", "health", check=False).returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        pytest.fail("real etcd did not become healthy in 20 s")

    def ctl(
        self, *arguments: str, stdin: str = "", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "ETCDCTL_API": "3"}
        return subprocess.run(
            ["etcdctl", "--endpoints", self.client_url, *arguments],
            input=stdin, capture_output=True, text=True, env=environment, check=check, timeout=30,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@pytest.fixture
def etcd_wal(tmp_path: Path) -> Iterator[tuple[RealEtcd, Path]]:
    etcd = RealEtcd(tmp_path / "data")
    try:
        etcd.start()
        etcd.ctl("put", "alpha", "1")
        etcd.ctl("put", "beta/one", "2")
        etcd.ctl("del", "alpha")
        etcd.ctl(
            "txn",
            stdin='value("beta/one") = "2"\n\nput beta/two yes\ndel beta/one\n\nput gamma no\n\n',
        )
        etcd.stop()
        yield etcd, tmp_path / "data" / "member" / "wal"
    finally:
        etcd.stop()


def test_dump_and_verify_read_a_real_etcd_wal(etcd_wal: tuple[RealEtcd, Path]) -> None:
    _, wal_dir = etcd_wal
    out = io.StringIO()
    assert dump(wal_dir, out) == VerifyStatus.VALID
    text = out.getvalue()
    assert "metadata" in text and "conf_change ConfChangeAddNode" in text
    assert "put 'alpha' value_bytes=1" in text
    assert "delete_range key='alpha'" in text
    assert "txn if [value('beta/one') equal] then [put 'beta/two'" in text
    assert "delete_range key='beta/one'] else [put 'gamma'" in text
    status, explanation = verify(wal_dir)
    assert status == VerifyStatus.VALID, explanation
    completed = subprocess.run(
        [sys.executable, "-m", "impl.cli", "wal", "verify", str(wal_dir)],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr


def test_our_encoders_write_etcds_bytes(etcd_wal: tuple[RealEtcd, Path]) -> None:
    """Every entry, state and metadata record etcd wrote re-encodes to the same bytes."""
    _, wal_dir = etcd_wal
    checked = {RecordType.ENTRY: 0, RecordType.STATE: 0, RecordType.METADATA: 0}
    for segment in list_segments(wal_dir):
        scan = scan_segment((wal_dir / segment.file_name()).read_bytes(), 0, tail=True)
        for _, record_type, _, data in scan.records:
            if record_type == RecordType.ENTRY:
                entry = raft_pb2.Entry()
                entry.ParseFromString(data)
                ours = _encode_entry(Entry(entry.Term, entry.Index, entry.Type, entry.Data))
            elif record_type == RecordType.STATE:
                state = raft_pb2.HardState()
                state.ParseFromString(data)
                ours = _encode_hard_state(HardState(state.term, state.vote, state.commit))
            elif record_type == RecordType.METADATA:
                metadata = etcdserver_pb2.Metadata()
                metadata.ParseFromString(data)
                from impl.wal import WalMetadata

                ours = _encode_metadata(WalMetadata(metadata.NodeID, metadata.ClusterID))
            else:
                continue
            assert ours == data, RecordType(record_type).name
            checked[RecordType(record_type)] += 1
    assert all(count > 0 for count in checked.values()), checked


def test_real_etcd_replays_entries_we_appended_across_a_cut(
    etcd_wal: tuple[RealEtcd, Path],
) -> None:
    """Write compatibility: our framing, CRC chain, encoders and segment cut (crc record,
    metadata, hard state in a renamed preallocated file) are what etcd's reader wants."""
    etcd, wal_dir = etcd_wal
    wal, contents = Wal.open(wal_dir)
    last = contents.entries[-1]
    state = contents.hard_state
    for offset, key in ((1, b"written-by-etcdref"), (2, b"after-our-cut")):
        request = raft_internal_pb2.InternalRaftRequest(
            ID=424242 + offset, put=rpc_pb2.PutRequest(key=key, value=b"hello etcd")
        )
        index = last.index + offset
        wal.save(
            HardState(state.term, state.vote, index),
            [Entry(last.term, index, data=request.SerializeToString())],
        )
        if offset == 1:
            wal.cut()
    wal.close()
    assert len(list_segments(wal_dir)) == 2
    assert read_wal(wal_dir).contents.entries[-1].index == last.index + 2
    try:
        etcd.start()
        for name in ("written-by-etcdref", "after-our-cut"):
            assert etcd.ctl("get", name, "--print-value-only").stdout.strip() == "hello etcd"
    finally:
        etcd.stop()


def test_a_new_wal_starts_with_etcds_exact_bytes(
    etcd_wal: tuple[RealEtcd, Path], tmp_path: Path
) -> None:
    """Wal.create with etcd's metadata writes the same crc, metadata and snapshot frames that
    etcd's wal.Create wrote, byte for byte."""
    _, wal_dir = etcd_wal
    theirs = (wal_dir / list_segments(wal_dir)[0].file_name()).read_bytes()
    contents = read_wal(wal_dir).contents
    with Wal.create(tmp_path / "ours", contents.metadata):
        pass
    ours = (tmp_path / "ours" / list_segments(tmp_path / "ours")[0].file_name()).read_bytes()
    header_records = scan_segment(ours, 0, tail=True).records
    assert [record_type for _, record_type, _, _ in header_records] == [
        RecordType.CRC, RecordType.METADATA, RecordType.SNAPSHOT,
    ]  # fmt: skip
    first_entry_offset = scan_segment(theirs, 0, tail=True).records[3][0]
    assert ours[:first_entry_offset] == theirs[:first_entry_offset]


def test_a_running_etcd_and_etcdref_exclude_each_other(tmp_path: Path) -> None:
    """etcd flocks the segments it writes; so does Wal, so neither can append under the other.
    Reading (`verify`) takes no lock and works while etcd runs."""
    etcd = RealEtcd(tmp_path / "data")
    wal_dir = tmp_path / "data" / "member" / "wal"
    try:
        etcd.start()
        etcd.ctl("put", "k", "v")
        with pytest.raises(WalLockedError, match="locked by another process"):
            Wal.open(wal_dir)
        assert verify(wal_dir)[0] in (VerifyStatus.VALID, VerifyStatus.REPAIRABLE_TAIL)
    finally:
        etcd.stop()
    wal, _ = Wal.open(wal_dir)
    wal.close()
