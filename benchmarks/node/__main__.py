"""`etcdctl check perf` against a three-member etcdref cluster and a three-member etcd, in one run.

For each server and each load (`s`, `m`, `l`: 150, 1,000 and 8,000 writes/s for 60 s, from 50,
200 and 500 clients), the cluster is started fresh on loopback, `etcdctl check perf --load X`
runs against all three client URLs, and the table shows what etcdctl printed (throughput,
slowest request, stddev, pass or fail) beside what the run cost: the CPU seconds each member
used (utime + stime from /proc) per committed write (the revision's growth), and the load
average over the run. CPU per write is the figure the machine's other load distorts least.

    .venv/bin/python -m benchmarks.node                       # s, m, l against both
    .venv/bin/python -m benchmarks.node --servers etcdref --loads m
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from impl.node.cli import cluster_node_arguments, free_ports

START_TIMEOUT_SECONDS = 30.0
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@attrs.define
class Cluster:
    processes: list[subprocess.Popen[bytes]]
    endpoints: str
    data_dir: Path

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start_cluster(server: str, log_dir: Path) -> Cluster:
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{server}-"))
    ports = free_ports(6)
    processes = []
    for number, arguments in enumerate(cluster_node_arguments(3, data_dir, ports)):
        if server == "etcd":
            command = ["etcd", *arguments, "--initial-cluster-state", "new"]
        else:
            command = [sys.executable, "-m", "impl.cli", "node", *arguments]
        log_file = open(log_dir / f"{server}-m{number + 1}.log", "ab")  # noqa: SIM115
        processes.append(subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT))
    endpoints = ",".join(f"127.0.0.1:{ports[2 * number]}" for number in range(3))
    cluster = Cluster(processes, endpoints, data_dir)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status = endpoint_status(endpoints)
        if len(status) == 3 and all(each["Status"]["leader"] for each in status):  # type: ignore[index]
            return cluster
        time.sleep(0.5)
    cluster.stop()
    raise RuntimeError(f"the {server} cluster did not elect a leader in {START_TIMEOUT_SECONDS} s")


def endpoint_status(endpoints: str) -> list[dict[str, object]]:
    result = subprocess.run(
        ["etcdctl", "--endpoints", endpoints, "endpoint", "status", "-w", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        answer: list[dict[str, object]] = json.loads(result.stdout)
    except json.JSONDecodeError:
        return []
    return answer


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat (fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_SECOND


def leader_number(status: list[dict[str, object]]) -> int:
    """Which member (0, 1, 2 in start order) leads, from `endpoint status`."""
    for number, each in enumerate(status):
        header = each["Status"]["header"]  # type: ignore[index]
        if header["member_id"] == each["Status"]["leader"]:  # type: ignore[index]
            return number
    return -1


def revision(status: list[dict[str, object]]) -> int:
    return max(int(each["Status"]["header"]["revision"]) for each in status)  # type: ignore[index]


def run_load(server: str, load: str, log_dir: Path) -> dict[str, object]:
    cluster = start_cluster(server, log_dir)
    try:
        before_status = endpoint_status(cluster.endpoints)
        leader = leader_number(before_status)
        before_cpu = [cpu_seconds(process.pid) for process in cluster.processes]
        before_load = os.getloadavg()[0]
        started = time.monotonic()
        result = subprocess.run(
            ["etcdctl", "--endpoints", cluster.endpoints, "check", "perf", "--load", load],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        after_cpu = [cpu_seconds(process.pid) for process in cluster.processes]
        after_status = endpoint_status(cluster.endpoints)
        load_average = os.getloadavg()[0]
    finally:
        cluster.stop()
    writes = revision(after_status) - revision(before_status)
    used = [after - before for after, before in zip(after_cpu, before_cpu, strict=True)]
    output = result.stdout + result.stderr
    (log_dir / f"{server}-check-perf-{load}.txt").write_text(output)
    leader_cpu = used[leader] if leader >= 0 else max(used)
    follower_cpu = [each for number, each in enumerate(used) if number != leader]
    return {
        "server": server,
        "load": load,
        "throughput": _find(r"Throughput (?:is|too low:) (\d+) writes/s", output),
        "slowest": _find(r"Slowest request took (?:too long: )?([\d.]+)s", output),
        "stddev": _find(r"Stddev (?:is|too high:) ([\d.]+)s", output),
        "result": "PASS" if result.returncode == 0 and "FAIL" not in output else "FAIL",
        "writes": writes,
        "seconds": round(elapsed, 1),
        "leader_cpu_ms_per_write": round(1000 * leader_cpu / max(writes, 1), 3),
        "follower_cpu_ms_per_write": round(1000 * max(follower_cpu) / max(writes, 1), 3),
        "load_average_1m": f"{before_load:.2f} -> {load_average:.2f}",
    }


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    return match.group(1) if match else "-"


COLUMNS = (
    ("server", "server"), ("load", "load"), ("throughput", "writes/s"), ("slowest", "slowest s"),
    ("stddev", "stddev s"), ("result", "result"), ("writes", "writes"),
    ("leader_cpu_ms_per_write", "leader CPU ms/write"),
    ("follower_cpu_ms_per_write", "follower CPU ms/write"), ("load_average_1m", "load avg 1m"),
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="etcdref bench node", description=__doc__)
    parser.add_argument("--servers", default="etcdref,etcd")
    parser.add_argument("--loads", default="s,m,l")
    parser.add_argument("--log-dir", default=None, help="members' logs and etcdctl's output")
    arguments = parser.parse_args(argv)
    log_dir = Path(arguments.log_dir or tempfile.mkdtemp(prefix="bench-node-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"logs and etcdctl output in {log_dir}", flush=True)
    print("| " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS), flush=True)
    for load in arguments.loads.split(","):
        for server in arguments.servers.split(","):
            row = run_load(server, load, log_dir)
            print("| " + " | ".join(str(row[key]) for key, _ in COLUMNS) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
