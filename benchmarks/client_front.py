"""What the client-port front (impl/api/front.py) costs gRPC: the same put load, alternately
through the client ports (front, relayed to gRPC) and straight to the members' internal gRPC
ports, in short interleaved rounds so that other load on the machine falls on both alike.

Reports, per path, the median throughput over the rounds, latency percentiles, and the members'
CPU seconds per 1,000 puts (read from /proc), which is the front's cost with the noise of the
machine mostly removed.

    .venv/bin/python -m benchmarks.client_front [--rounds 6] [--seconds 5] [--clients 16]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

CLIENT_LINE = re.compile(r"^\s+(m\d)\s+id \S+\s+client (\S+)")
INTERNAL_LINE = re.compile(r"(m\d) INFO etcdref.api: gRPC served on internal port (\S+) ")
VALUE = b"x" * 256



def _thread_cpu_seconds(native_id: int | None) -> float:
    """utime + stime of one thread of this process, from /proc."""
    assert native_id is not None
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def start_cluster() -> tuple[subprocess.Popen[str], dict[str, str], dict[str, str]]:
    """`etcdref cluster`, and each member's client and internal gRPC address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "impl.cli", "cluster"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    clients: dict[str, str] = {}
    internal: dict[str, str] = {}
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while len(internal) < 3 or len(clients) < 3:
        if time.monotonic() > deadline:
            raise SystemExit("the cluster did not start")
        line = process.stdout.readline()
        if match := CLIENT_LINE.match(line):
            clients[match.group(1)] = match.group(2)
        if match := INTERNAL_LINE.search(line):
            internal[match.group(1)] = match.group(2)
    threading.Thread(target=lambda: [None for _ in process.stdout or []], daemon=True).start()
    return process, clients, internal


def member_pids(cluster: subprocess.Popen[str]) -> list[int]:
    children = Path(f"/proc/{cluster.pid}/task/{cluster.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def wait_for_leader(addresses: list[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(addresses[0]) as channel:
                rpc_pb2_grpc.KVStub(channel).Put(
                    rpc_pb2.PutRequest(key=b"ready", value=b"1"), timeout=2
                )
            return
        except grpc.RpcError:
            time.sleep(0.3)
    raise SystemExit("no leader")


def load_round(addresses: list[str], clients: int, seconds: float) -> tuple[int, list[float]]:
    """Puts from `clients` threads (spread over the members) for `seconds`: count, latencies."""
    channels = [grpc.insecure_channel(address) for address in addresses]
    stubs = [rpc_pb2_grpc.KVStub(channel) for channel in channels]
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(number: int) -> None:
        stub = stubs[number % len(stubs)]
        mine = []
        sequence = 0
        while time.monotonic() < stop_at:
            key = b"bench/%d/%d" % (number, sequence)
            sequence += 1
            started = time.perf_counter()
            try:
                stub.Put(rpc_pb2.PutRequest(key=key, value=VALUE), timeout=10)
            except grpc.RpcError:
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for channel in channels:
        channel.close()
    return len(latencies), latencies


class _TrivialKeyValue(rpc_pb2_grpc.KVServicer):
    def Range(self, request: rpc_pb2.RangeRequest, context: object) -> rpc_pb2.RangeResponse:
        return rpc_pb2.RangeResponse(count=1)


def relay_cost(calls: int, clients: int) -> None:
    """The relay alone: a trivial in-process gRPC server, reached directly and through a
    `ClientFront`; the front thread's own CPU time per call is the relay's whole cost."""
    import asyncio
    from concurrent import futures

    from impl.api.front import ClientFront

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    rpc_pb2_grpc.add_KVServicer_to_server(_TrivialKeyValue(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    async def no_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    front = ClientFront([("127.0.0.1", 0)], ("127.0.0.1", port), no_http)
    front.start()
    front_port = front._servers[0].sockets[0].getsockname()[1]

    def front_cpu() -> float:
        """CPU seconds of the front's two threads: the accepting loop and the relay."""
        threads = (front._thread, front.relay._thread)
        return sum(_thread_cpu_seconds(thread.native_id) for thread in threads)

    def run(address: str) -> float:
        channel = grpc.insecure_channel(address)
        stub = rpc_pb2_grpc.KVStub(channel)
        stub.Range(rpc_pb2.RangeRequest(key=b"k"))
        per_client = calls // clients

        def worker() -> None:
            for _ in range(per_client):
                stub.Range(rpc_pb2.RangeRequest(key=b"k"), timeout=10)

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        channel.close()
        return per_client * clients / elapsed

    direct = run(f"127.0.0.1:{port}")
    before = front_cpu()
    relayed = run(f"127.0.0.1:{front_port}")
    cpu_per_call_us = (front_cpu() - before) / calls * 1e6
    print(f"relay alone, {calls} trivial unary calls from {clients} threads:")
    print(f"  direct {direct:.0f} calls/s, through the front {relayed:.0f} calls/s")
    print(f"  front thread CPU per call: {cpu_per_call_us:.1f} us")
    front.stop()
    server.stop(None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--relay-only", action="store_true", help="measure the relay alone (no cluster)"
    )
    arguments = parser.parse_args()
    if arguments.relay_only:
        relay_cost(20_000, arguments.clients)
        return 0
    cluster, clients, internal = start_cluster()
    try:
        paths = {
            "front": [clients[name] for name in sorted(clients)],
            "direct": [internal[name] for name in sorted(internal)],
        }
        wait_for_leader(paths["front"])
        pids = member_pids(cluster)
        load_round(paths["front"], arguments.clients, 2.0)  # warm up both paths
        load_round(paths["direct"], arguments.clients, 2.0)
        rates: dict[str, list[float]] = {"front": [], "direct": []}
        latencies: dict[str, list[float]] = {"front": [], "direct": []}
        cpu: dict[str, float] = {"front": 0.0, "direct": 0.0}
        counts: dict[str, int] = {"front": 0, "direct": 0}
        for round_number in range(arguments.rounds):
            order = ("front", "direct") if round_number % 2 == 0 else ("direct", "front")
            for path in order:
                before = cpu_seconds(pids)
                count, round_latencies = load_round(
                    paths[path], arguments.clients, arguments.seconds
                )
                cpu[path] += cpu_seconds(pids) - before
                counts[path] += count
                rates[path].append(count / arguments.seconds)
                latencies[path].extend(round_latencies)
        print(
            f"{arguments.rounds} rounds of {arguments.seconds:g} s per path, "
            f"{arguments.clients} client threads, 256-byte puts over 3 members"
        )
        print("path    median puts/s  (min-max)       p50 ms  p99 ms  member CPU s per 1000 puts")
        for path in ("direct", "front"):
            ordered = sorted(latencies[path])
            p50 = ordered[len(ordered) // 2] * 1000
            p99 = ordered[int(len(ordered) * 0.99)] * 1000
            print(
                f"{path:<7} {statistics.median(rates[path]):>13.0f}  "
                f"({min(rates[path]):.0f}-{max(rates[path]):.0f})  {p50:>12.1f}  {p99:>6.1f}  "
                f"{1000 * cpu[path] / counts[path]:>10.2f}"
            )
        ratio = statistics.median(rates["front"]) / statistics.median(rates["direct"])
        print(f"front / direct throughput: {ratio:.3f}")
    finally:
        os.killpg(cluster.pid, signal.SIGINT)
        cluster.wait(timeout=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
