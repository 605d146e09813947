"""Start an etcd or etcdref cluster (1, 3 or 5 members) on loopback, and stop it reliably.

`server="etcd"` runs the `etcd` executable found on PATH; `server="etcdref"` runs etcdref's
own node (`etcdref node`, which takes etcd's flag names) as a subprocess: the `etcdref`
console script beside the running Python, else `python -m impl.cli node`. Either way the
suite reaches the members only over the network, as it would anyone else's server (this
package never imports `impl`).

Every member listens on 127.0.0.1 only, on ports the operating system reported free, with its
own temporary data directory; the whole directory is removed on `stop` unless asked to keep
it. Members run in their own process group so a fault (SIGKILL, SIGSTOP/SIGCONT) reaches
exactly one member, and `stop` always ends with SIGKILL for anything that ignored SIGTERM.
Readiness and shutdown waits are bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, Literal

from conformance.client import EtcdClient, RequestFailed
from conformance.peer_proxy import PeerProxy

LOOPBACK: Final = "127.0.0.1"
READY_TIMEOUT_SECONDS: Final = 30.0
# Progress notifications every 100 ms (etcd's default is 10 minutes), as etcd's robustness
# tests configure, so the Bookmarkable guarantee is exercised within a quick run.
DEFAULT_FLAGS: Final = ("--experimental-watch-progress-notify-interval", "100ms")
# etcdref's node has no progress-notify interval flag (it never sends periodic notifications).
ETCDREF_FLAGS: Final[tuple[str, ...]] = ()
Server = Literal["etcd", "etcdref"]
STOP_TIMEOUT_SECONDS: Final = 5.0


class LaunchFailed(Exception):
    """The cluster did not come up; the message names the member and the end of its log."""


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that were free a moment ago (held together, then freed)."""
    sockets = []
    try:
        for _ in range(count):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind((LOOPBACK, 0))
            sockets.append(listener)
        return [listener.getsockname()[1] for listener in sockets]
    finally:
        for listener in sockets:
            listener.close()


def etcdref_node_command() -> list[str]:
    """How to start one etcdref member: the console script installed beside this Python, or
    the module (for a checkout run without installing)."""
    script = Path(sys.executable).with_name("etcdref")
    if script.exists():
        return [str(script), "node"]
    return [sys.executable, "-m", "impl.cli", "node"]


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    advertised_peer_port: int  # the peer proxy's port when proxies are on, else peer_port
    data_directory: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    paused: bool = False

    @property
    def client_url(self) -> str:
        return f"http://{LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.peer_port}"

    @property
    def advertised_peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.advertised_peer_port}"

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.client_port}"

    def log_tail(self, line_count: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-line_count:])


@dataclass
class LaunchedCluster:
    """An etcd (or etcdref) cluster on loopback. Use as a context manager, or call start and
    stop. `executable` is the etcd binary (only for `server="etcd"`); `extra_flags` default
    to the server's own (`DEFAULT_FLAGS` for etcd, none for etcdref)."""

    size: int = 1
    executable: str = "etcd"
    extra_flags: tuple[str, ...] | None = None
    server: Server = "etcd"
    keep_data: bool = False
    # Put a PeerProxy in front of every member's peer listener (for network faults).
    peer_proxies: bool = False
    members: list[Member] = field(default_factory=list)
    proxies: list[PeerProxy] = field(default_factory=list)
    root: Path | None = None

    def __post_init__(self) -> None:
        if self.size not in (1, 3, 5):
            raise ValueError(f"cluster size must be 1, 3 or 5, not {self.size}")
        if self.server not in ("etcd", "etcdref"):
            raise ValueError(f"server must be etcd or etcdref, not {self.server!r}")
        if self.extra_flags is None:
            self.extra_flags = DEFAULT_FLAGS if self.server == "etcd" else ETCDREF_FLAGS
        if self.server == "etcd" and shutil.which(self.executable) is None:
            raise LaunchFailed(f"{self.executable!r} is not on PATH")

    @property
    def endpoints(self) -> list[str]:
        return [member.endpoint for member in self.members]

    def initial_cluster(self) -> str:
        return ",".join(f"{member.name}={member.advertised_peer_url}" for member in self.members)

    def start(self, ready_timeout_seconds: float = READY_TIMEOUT_SECONDS) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="etcdref-conformance-"))
        ports = free_ports(3 * self.size)
        token = f"etcdref-conformance-{uuid.uuid4().hex[:12]}"
        for index in range(self.size):
            name = f"member{index}"
            self.members.append(
                Member(
                    name=name,
                    client_port=ports[3 * index],
                    peer_port=ports[3 * index + 1],
                    advertised_peer_port=ports[3 * index + 2]
                    if self.peer_proxies
                    else ports[3 * index + 1],
                    data_directory=self.root / name / "data",
                    log_path=self.root / name / f"{self.server}.log",
                )
            )
        self.token = token
        try:
            if self.peer_proxies:
                self.proxies = [
                    PeerProxy(member.advertised_peer_port, member.peer_port, seed=index)
                    for index, member in enumerate(self.members)
                ]
            for member in self.members:
                self.spawn(member, initial_state="new")
            self.wait_until_ready(ready_timeout_seconds)
        except BaseException:
            self.stop()
            raise

    def command(self, member: Member, initial_state: str) -> list[str]:
        program = [self.executable] if self.server == "etcd" else etcdref_node_command()
        return [
            *program,
            "--name", member.name,
            "--data-dir", str(member.data_directory),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.advertised_peer_url,
            "--initial-cluster", self.initial_cluster(),
            "--initial-cluster-state", initial_state,
            "--initial-cluster-token", self.token,
            *(self.extra_flags or ()),
        ]  # fmt: skip

    def spawn(self, member: Member, initial_state: str) -> None:
        member.log_path.parent.mkdir(parents=True, exist_ok=True)
        member.log_file = open(member.log_path, "ab")  # noqa: SIM115 - closed in stop_member
        member.process = subprocess.Popen(
            self.command(member, initial_state),
            stdin=subprocess.DEVNULL,
            stdout=member.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        member.paused = False

    def wait_until_ready(self, timeout_seconds: float, members: list[Member] | None = None) -> None:
        """Wait until every member answers Status, names a leader, and lists its own client
        URLs in MemberList. Real etcd serves no client before its client URLs are published
        through Raft (etcd `ReadyNotify`), so for etcd the last condition always holds once it
        answers; etcdref answers earlier (a gap shown by tests/conformance/test_etcdref.py),
        and waiting for it here keeps that race out of the cluster check."""
        deadline = time.monotonic() + timeout_seconds
        for member in members or self.members:
            with EtcdClient(member.endpoint, timeout_seconds=1.0) as client:
                while True:
                    if member.process is not None and member.process.poll() is not None:
                        raise LaunchFailed(
                            f"{member.name} exited with status {member.process.returncode}:\n"
                            f"{member.log_tail()}"
                        )
                    try:
                        if client.status().leader != 0 and any(
                            listed.name == member.name and listed.clientURLs
                            for listed in client.member_list().members
                        ):
                            break
                    except RequestFailed:
                        pass
                    if time.monotonic() > deadline:
                        raise LaunchFailed(
                            f"{member.name} not ready after {timeout_seconds:.0f} s:\n"
                            f"{member.log_tail()}"
                        )
                    time.sleep(0.1)

    # --- Faults --------------------------------------------------------------------------------
    def kill(self, index: int) -> None:
        """SIGKILL one member: no chance to flush or say goodbye."""
        member = self.members[index]
        if member.process is not None and member.process.poll() is None:
            if member.paused:
                os.kill(member.process.pid, signal.SIGCONT)
            member.process.kill()
            member.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.close_log(member)

    def restart(self, index: int, ready_timeout_seconds: float = READY_TIMEOUT_SECONDS) -> None:
        """Start a stopped member again from its data directory."""
        member = self.members[index]
        if member.process is not None and member.process.poll() is None:
            raise ValueError(f"{member.name} is still running")
        self.spawn(member, initial_state="existing")
        self.wait_until_ready(ready_timeout_seconds, [member])

    def pause(self, index: int) -> None:
        member = self.members[index]
        if member.process is not None and member.process.poll() is None:
            os.kill(member.process.pid, signal.SIGSTOP)
            member.paused = True

    def resume(self, index: int) -> None:
        member = self.members[index]
        if member.process is not None and member.process.poll() is None:
            os.kill(member.process.pid, signal.SIGCONT)
            member.paused = False

    def leader_index(self, timeout_seconds: float = 5.0) -> int | None:
        """Index of the member that the first reachable member names as leader."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            for member in self.members:
                try:
                    with EtcdClient(member.endpoint, timeout_seconds=0.5) as client:
                        status = client.status()
                        members = client.member_list().members
                except RequestFailed:
                    continue
                for index, listed in enumerate(self.members):
                    if any(
                        status.leader == entry.ID and listed.name == entry.name for entry in members
                    ):
                        return index
            time.sleep(0.1)
        return None

    # --- Shutdown ------------------------------------------------------------------------------
    def close_log(self, member: Member) -> None:
        if member.log_file is not None:
            member.log_file.close()
            member.log_file = None

    def stop_member(self, member: Member) -> None:
        process = member.process
        if process is not None and process.poll() is None:
            if member.paused:
                os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.close_log(member)

    def stop(self) -> None:
        for member in self.members:
            self.stop_member(member)
        for proxy in self.proxies:
            proxy.close()
        if self.root is not None and not self.keep_data:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LaunchedCluster:
        self.start()
        return self

    def __exit__(self, *exception: object) -> None:
        self.stop()
