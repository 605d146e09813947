"""`etcdref node` (one member, etcd's flag names) and `etcdref cluster` (a local cluster on loopback)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from impl.node.config import (
    ConfigError,
    NodeConfig,
    host_port,
    member_id,
    parse_initial_cluster,
)
from spec import constants

GC_YOUNG_OBJECTS = 10_000  # the cycle collector's first threshold in a member (Python's default: 700)


def _urls(text: str) -> tuple[str, ...]:
    return tuple(url.strip() for url in text.split(",") if url.strip())


def node_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etcdref node", description="Run one etcd member.")
    add = parser.add_argument
    add("--name", default="default")
    add("--data-dir", default=None, help="default: ${name}.etcd")
    add("--listen-client-urls", default="http://localhost:2379")
    add("--advertise-client-urls", default="http://localhost:2379")
    add("--listen-peer-urls", default="http://localhost:2380")
    add("--initial-advertise-peer-urls", default="http://localhost:2380")
    add("--initial-cluster", default=None, help="default: ${name}=http://localhost:2380")
    add("--initial-cluster-token", default="etcd-cluster")
    add("--initial-cluster-state", default="new", choices=("new", "existing"))
    add("--heartbeat-interval", type=int, default=constants.heartbeat_interval_ms)
    add("--election-timeout", type=int, default=constants.election_timeout_ms)
    add("--snapshot-count", type=int, default=constants.snapshot_count)
    add(
        "--experimental-snapshot-catchup-entries",
        type=int,
        default=constants.snapshot_catch_up_entries,
    )
    add("--max-request-bytes", type=int, default=constants.request_size_bytes_max)
    add("--pre-vote", action="store_true")
    add(
        "--quota-backend-bytes",
        type=int,
        default=0,
        help="raise a NOSPACE alarm when the backend exceeds this (0: 2 GiB; negative: no quota)",
    )
    return parser


def config_from(arguments: argparse.Namespace) -> NodeConfig:
    initial_cluster = (
        arguments.initial_cluster or f"{arguments.name}={arguments.initial_advertise_peer_urls}"
    )
    return NodeConfig(
        name=arguments.name,
        data_dir=Path(arguments.data_dir or f"{arguments.name}.etcd"),
        listen_client_urls=_urls(arguments.listen_client_urls),
        advertise_client_urls=_urls(arguments.advertise_client_urls),
        listen_peer_urls=_urls(arguments.listen_peer_urls),
        initial_advertise_peer_urls=_urls(arguments.initial_advertise_peer_urls),
        initial_cluster=parse_initial_cluster(initial_cluster),
        initial_cluster_token=arguments.initial_cluster_token,
        initial_cluster_state=arguments.initial_cluster_state,
        heartbeat_interval_ms=arguments.heartbeat_interval,
        election_timeout_ms=arguments.election_timeout,
        snapshot_count=arguments.snapshot_count,
        snapshot_catch_up_entries=arguments.experimental_snapshot_catchup_entries,
        max_request_bytes=arguments.max_request_bytes,
        pre_vote=arguments.pre_vote,
        quota_backend_bytes=arguments.quota_backend_bytes,
    )


def node_main(argv: Sequence[str]) -> int:
    arguments = node_parser().parse_args(list(argv))
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {arguments.name} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from impl.api.server import serve
    from impl.node.node import Node, NodeError

    try:
        config = config_from(arguments)
        config.check()
    except ConfigError as error:
        print(f"etcdref node: {error}", file=sys.stderr)
        return 2
    for url in config.listen_client_urls:
        problem = _port_taken(url)
        if problem is not None:  # refused before the data directory is touched
            print(f"etcdref node: cannot listen for clients on {url}: {problem}", file=sys.stderr)
            return 1
    node = Node(config)
    stopped = threading.Event()
    node.on_stopped = stopped.set
    try:
        node.start()
    except (NodeError, OSError) as error:
        print(f"etcdref node: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        print(f"etcdref node: cannot open {config.data_dir}: {error}", file=sys.stderr)
        return 1
    listen = [url.split("://", 1)[1] for url in config.listen_client_urls]
    try:
        server = serve(node, listen)
    except OSError as error:
        print(f"etcdref node: {error}", file=sys.stderr)
        node.stop()
        return 1

    # What is alive now (modules, classes, the server's machinery) lives as long as the process:
    # freezing it keeps the cycle collector's full collections from walking it again and again.
    gc.collect()
    gc.freeze()
    # A young generation of 10,000 objects instead of 700: most of a request's objects then die
    # (by reference count) before a collection looks at them. Under `check perf --load m` this
    # cut the collector's time per member from about 5 s to under 2 s a minute (2026-12-02).
    gc.set_threshold(GC_YOUNG_OBJECTS, 20, 10)

    def on_signal(number: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    logging.getLogger("etcdref").info("serving clients on %s", ",".join(config.listen_client_urls))
    stopped.wait()
    server.stop(grace=1).wait()
    node.stop()
    logging.getLogger("etcdref").info("stopped")
    return 0


def _port_taken(url: str) -> str | None:
    """Why the client URL's address cannot be listened on (None: it can be, right now)."""
    host, port = host_port(url)
    try:
        with socket.create_server((host, port), reuse_port=False):
            return None
    except OSError as error:
        return str(error)


# --- etcdref cluster --------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (bound once to be chosen by the kernel, then released)."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def cluster_node_arguments(
    size: int, data_dir: Path, ports: list[int], extra: Sequence[str] = ()
) -> list[list[str]]:
    """The `etcdref node` arguments of each member of a local cluster (ports: client then peer per member)."""
    names = [f"m{number + 1}" for number in range(size)]
    peers = [f"http://127.0.0.1:{ports[2 * number + 1]}" for number in range(size)]
    initial = ",".join(f"{name}={url}" for name, url in zip(names, peers, strict=True))
    result = []
    for number, name in enumerate(names):
        client = f"http://127.0.0.1:{ports[2 * number]}"
        result.append([
            "--name", name, "--data-dir", str(data_dir / f"{name}.etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peers[number], "--initial-advertise-peer-urls", peers[number],
            "--initial-cluster", initial, *extra,
        ])  # fmt: skip
    return result


def _relay(name: str, stream: object) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sys.stdout.write(f"{name:>3} | {line}")
        sys.stdout.flush()


def cluster_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="etcdref cluster", description="Run a local cluster on loopback."
    )
    parser.add_argument("--size", type=int, default=3)
    parser.add_argument(
        "--data-dir",
        default=None,
        help="kept after the cluster stops (default: a temporary directory, removed)",
    )
    parser.add_argument("--snapshot-count", type=int, default=constants.snapshot_count)
    arguments = parser.parse_args(list(argv))
    if not 1 <= arguments.size <= 7:
        print("etcdref cluster: --size must be between 1 and 7", file=sys.stderr)
        return 2
    temporary = arguments.data_dir is None
    data_dir = Path(arguments.data_dir or tempfile.mkdtemp(prefix="etcdref-cluster-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = free_ports(2 * arguments.size)
    extra = ["--snapshot-count", str(arguments.snapshot_count)]
    commands = cluster_node_arguments(arguments.size, data_dir, ports, extra)
    processes: list[subprocess.Popen[str]] = []
    for command in commands:
        process = subprocess.Popen(
            [sys.executable, "-m", "impl.cli", "node", *command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        processes.append(process)
        threading.Thread(target=_relay, args=(command[1], process.stdout), daemon=True).start()
    endpoints = ",".join(f"127.0.0.1:{ports[2 * number]}" for number in range(arguments.size))
    print(f"etcdref cluster: {arguments.size} members, data in {data_dir}/")
    for number, command in enumerate(commands):
        peer = command[command.index("--initial-advertise-peer-urls") + 1]
        print(
            f"  {command[1]}  id {member_id([peer], 'etcd-cluster'):x}  client 127.0.0.1:{ports[2 * number]}  peer {peer}"
        )
    print("try:")
    print(f"  etcdctl --endpoints={endpoints} put greeting hello")
    print(f"  etcdctl --endpoints={endpoints} get greeting")
    print(f"  etcdctl --endpoints={endpoints} endpoint status -w table")
    print(f"  etcdctl --endpoints={endpoints} member list -w table")
    first = f"http://127.0.0.1:{ports[0]}"
    print(f"""  curl -s {first}/v3/kv/range -X POST -d '{{"key":"Z3JlZXRpbmc="}}'""")
    print(f"  curl -s {first}/health")
    print("Ctrl-C stops the cluster.", flush=True)
    stopping = threading.Event()

    def on_signal(number: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stopping.is_set():
        if any(process.poll() is not None for process in processes):
            print("etcdref cluster: a member exited; stopping the others", file=sys.stderr)
            break
        stopping.wait(0.5)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if temporary:
        shutil.rmtree(data_dir, ignore_errors=True)
    print("etcdref cluster: stopped", flush=True)
    return 0
