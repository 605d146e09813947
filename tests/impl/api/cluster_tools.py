"""Helpers shared by the tests that run one script against etcdref and real etcd 3.4."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc

from conformance.launcher import LaunchedCluster
from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.impl.node.harness import EtcdrefCluster

ENVIRONMENT = {"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}
Result = TypeVar("Result")


def on_both(
    root: Path, script: Callable[[list[str]], Result], size: int = 3
) -> tuple[Result, Result]:
    """`script(endpoints)` run against `size` etcdref members, then against `size` etcd members."""
    with EtcdrefCluster(root, size=size) as ours:
        ours_result = script(ours.endpoints)
    with LaunchedCluster(size=size, extra_flags=()) as etcd:
        etcd_result = script(etcd.endpoints)
    return ours_result, etcd_result


def etcdctl(endpoints: list[str], *arguments: str, stdin: str | None = None) -> str:
    """`$ etcdctl ...`, its exit status, stdout and the `Error:` lines of stderr, as one text."""
    completed = subprocess.run(
        ["etcdctl", f"--endpoints={','.join(endpoints)}", *arguments],
        input=stdin, capture_output=True, text=True, timeout=30, env=ENVIRONMENT,
    )  # fmt: skip
    errors = [line for line in completed.stderr.splitlines() if line.startswith("Error:")]
    return (
        f"$ etcdctl {' '.join(arguments)}\nexit {completed.returncode}\n"
        f"{completed.stdout}{chr(10).join(errors)}"
    )


def status(endpoint: str) -> rpc_pb2.StatusResponse:
    with grpc.insecure_channel(endpoint) as channel:
        response: rpc_pb2.StatusResponse = rpc_pb2_grpc.MaintenanceStub(channel).Status(
            rpc_pb2.StatusRequest(), timeout=5
        )
        return response


def member_ids(endpoints: list[str]) -> list[int]:
    return [status(endpoint).header.member_id for endpoint in endpoints]


def leader_index(endpoints: list[str], timeout_seconds: float = 15) -> int:
    """The index of the endpoint whose member leads, once every member agrees on one."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        statuses = [status(endpoint) for endpoint in endpoints]
        leaders = {item.leader for item in statuses}
        if len(leaders) == 1 and 0 not in leaders:
            (leader,) = leaders
            ids = [item.header.member_id for item in statuses]
            if leader in ids:
                return ids.index(leader)
        time.sleep(0.1)
    raise AssertionError("the members do not agree on a leader")


def normalize(text: str, endpoints: list[str], ids: list[int]) -> str:
    """Replace what differs by construction (endpoints, member ids) with placeholders."""
    for number, endpoint in enumerate(endpoints):
        text = text.replace(endpoint, f"<client{number}>")
    for number, member_id in enumerate(ids):
        text = text.replace(f"{member_id:x}", f"<id{number}>")
        text = text.replace(str(member_id), f"<id{number}>")
    return text


def sorted_lines(text: str) -> str:
    """Keep the `$` and `exit` lines first; sort the rest (etcd prints alarms in map order)."""
    command, status, body = [*text.split("\n", 2), "", ""][:3]
    return "\n".join([command, status, *sorted(body.splitlines())])
