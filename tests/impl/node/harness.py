"""Start an etcdref cluster as real processes on free loopback ports, for tests (bounded waits)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from impl.node.cli import cluster_node_arguments, free_ports

READY_TIMEOUT_SECONDS = 30.0
REPOSITORY = Path(__file__).resolve().parents[3]


class EtcdrefCluster:
    def __init__(self, root: Path, size: int = 3, extra: tuple[str, ...] = ()) -> None:
        self.root = root
        self.size = size
        ports = free_ports(2 * size)
        self.client_ports = [ports[2 * number] for number in range(size)]
        self.arguments = cluster_node_arguments(size, root, ports, extra)
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * size

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.client_ports]

    def log_path(self, index: int) -> Path:
        return self.root / f"m{index + 1}.log"

    def spawn(self, index: int) -> None:
        with open(self.log_path(index), "ab") as log:
            self.processes[index] = subprocess.Popen(
                [sys.executable, "-m", "impl.cli", "node", *self.arguments[index]],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=REPOSITORY,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    def start(self) -> None:
        for index in range(self.size):
            self.spawn(index)
        self.wait_for_leader()

    def status(self, index: int, timeout_seconds: float = 1.0) -> rpc_pb2.StatusResponse | None:
        with grpc.insecure_channel(self.endpoints[index]) as channel:
            try:
                response: rpc_pb2.StatusResponse = rpc_pb2_grpc.MaintenanceStub(channel).Status(
                    rpc_pb2.StatusRequest(), timeout=timeout_seconds
                )
                return response
            except grpc.RpcError:
                return None

    def wait_for_leader(
        self, among: list[int] | None = None, timeout_seconds: float = READY_TIMEOUT_SECONDS
    ) -> int:
        """The index of the member that leads, once every member in `among` agrees on it."""
        among = list(range(self.size)) if among is None else among
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            statuses = [self.status(index) for index in among]
            leaders = {status.leader if status else 0 for status in statuses}
            if len(leaders) == 1 and 0 not in leaders:
                (leader_id,) = leaders
                for index in among:
                    status = self.status(index)
                    if status is not None and status.header.member_id == leader_id:
                        return index
            time.sleep(0.2)
        tails = "\n".join(self.log_tail(index) for index in range(self.size))
        raise AssertionError(f"no leader within {timeout_seconds} s:\n{tails}")

    def log_tail(self, index: int, line_count: int = 20) -> str:
        try:
            lines = self.log_path(index).read_text(errors="replace").splitlines()
        except OSError:
            return f"m{index + 1}: (no log)"
        return "\n".join(f"m{index + 1}| {line}" for line in lines[-line_count:])

    def kill(self, index: int) -> None:
        process = self.processes[index]
        if process is not None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            self.processes[index] = None

    def stop(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for index, process in enumerate(self.processes):
            if process is None:
                continue
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            self.processes[index] = None

    def __enter__(self) -> EtcdrefCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exception: object) -> None:
        self.stop()
