"""The client-port relay's CPU (impl/api/front.py): the front's process CPU per small
request/response round trip over many connections, and per MB streamed.

    .venv/bin/python benchmarks/front/relay_cpu.py [--module impl.api.front] [--rate 2000]
        [--connections 200] [--round-trips 20000] [--bulk-mb 128]

The front runs alone in a child process in front of an echo server (another child) that stands
in for grpcio; the clients, here, open each connection with the HTTP/2 preface so that it is
relayed. CPU is the front process's user + system time (os.times), which is what the relay
costs its member, kernel work on the extra loopback hop included. `--module` names another
module with a ClientFront (a copy of an older front.py beside this file, say) to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(os.path.dirname(HERE))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def echo_server() -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    connections: dict[int, socket.socket] = {}
    pending: dict[int, bytes] = {}
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    while True:
        for fd, _mask in poller.poll():
            if fd == listener.fileno():
                while True:
                    try:
                        connection, _ = listener.accept()
                    except BlockingIOError:
                        break
                    connection.setblocking(False)
                    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    connections[connection.fileno()] = connection
                    poller.register(connection.fileno(), select.EPOLLIN)
                continue
            connection = connections[fd]
            if fd in pending:
                data = pending.pop(fd)
                try:
                    sent = connection.send(data)
                except BlockingIOError:
                    sent = 0
                if sent < len(data):
                    pending[fd] = data[sent:]
                else:
                    poller.modify(fd, select.EPOLLIN)
                continue
            try:
                count = connection.recv_into(buffer)
            except BlockingIOError:
                continue
            except ConnectionError:
                count = 0
            if count == 0:
                poller.unregister(fd)
                connections.pop(fd).close()
                continue
            try:
                sent = connection.send(view[:count])
            except BlockingIOError:
                sent = 0
            if sent < count:
                pending[fd] = bytes(view[sent:count])
                poller.modify(fd, select.EPOLLOUT)


def front_process(module: str, upstream_port: int) -> None:
    sys.path[:0] = [HERE, REPOSITORY]
    import asyncio
    import importlib

    front_module = importlib.import_module(module)

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        await writer.drain()
        del line

    front = front_module.ClientFront([("127.0.0.1", 0)], ("127.0.0.1", upstream_port), http)
    front.start()
    print(front._servers[0].sockets[0].getsockname()[1], flush=True)
    for line in sys.stdin:
        if line.strip() == "cpu":
            times = os.times()
            print(times.user + times.system, flush=True)
        else:
            break
    front.stop()
    print("stopped", flush=True)


def spawn(*arguments: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, __file__, *arguments],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def front_cpu(front: subprocess.Popen[str]) -> float:
    assert front.stdin is not None and front.stdout is not None
    front.stdin.write("cpu\n")
    front.stdin.flush()
    return float(front.stdout.readline())


def connect(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sendall(PREFACE)
        received = b""
        while len(received) < len(PREFACE):
            received += connection.recv(100)
        assert received == PREFACE
        connection.setblocking(False)
        sockets.append(connection)
    return sockets


def ping_pong(sockets: list[socket.socket], round_trips: int, size: int) -> float:
    """Each connection sends `size` bytes, waits for them back, repeats; returns seconds."""
    message = b"m" * size
    poller = select.epoll()
    by_fd = {connection.fileno(): connection for connection in sockets}
    waiting = {connection.fileno(): 0 for connection in sockets}
    started_count = 0
    for connection in sockets:
        poller.register(connection.fileno(), select.EPOLLIN)
        connection.send(message)
        started_count += 1
    done = 0
    started = time.perf_counter()
    while done < round_trips:
        for fd, _ in poller.poll():
            data = by_fd[fd].recv(65536)
            assert data, "closed"
            waiting[fd] += len(data)
            if waiting[fd] >= size:
                waiting[fd] -= size
                done += 1
                if started_count < round_trips:
                    by_fd[fd].send(message)
                    started_count += 1
    return time.perf_counter() - started


def paced(sockets: list[socket.socket], round_trips: int, size: int, rate: float) -> float:
    """Start `rate` round trips per second on idle connections (round robin); returns seconds."""
    message = b"m" * size
    poller = select.epoll()
    by_fd = {connection.fileno(): connection for connection in sockets}
    waiting = {connection.fileno(): 0 for connection in sockets}
    idle = list(by_fd)
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    done = 0
    begun = 0
    started = time.perf_counter()
    while done < round_trips:
        due = min(round_trips, int((time.perf_counter() - started) * rate) + 1)
        while begun < due and idle:
            fd = idle.pop(0)
            by_fd[fd].send(message)
            waiting[fd] = size
            begun += 1
        for fd, _ in poller.poll(0.001):
            data = by_fd[fd].recv(65536)
            assert data, "closed"
            waiting[fd] -= len(data)
            if waiting[fd] == 0:
                done += 1
                idle.append(fd)
    return time.perf_counter() - started


def bulk(sockets: list[socket.socket], total_bytes: int) -> float:
    """Each connection streams its share both ways (written and echoed back); returns seconds."""
    chunk = b"b" * 65536
    poller = select.epoll()
    by_fd = {connection.fileno(): connection for connection in sockets}
    to_send = {fd: total_bytes // len(sockets) for fd in by_fd}
    to_receive = dict(to_send)
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN | select.EPOLLOUT)
    started = time.perf_counter()
    while any(to_receive.values()):
        for fd, mask in poller.poll():
            connection = by_fd[fd]
            if mask & select.EPOLLOUT and to_send[fd]:
                with contextlib.suppress(BlockingIOError):
                    to_send[fd] -= connection.send(chunk[: min(len(chunk), to_send[fd])])
                if not to_send[fd]:
                    poller.modify(fd, select.EPOLLIN)
            if mask & select.EPOLLIN:
                try:
                    data = connection.recv(1 << 20)
                except BlockingIOError:
                    continue
                to_receive[fd] -= len(data)
    return time.perf_counter() - started


def main() -> None:
    if sys.argv[1] == "--echo":
        echo_server()
        return
    if sys.argv[1] == "--front":
        front_process(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--module", default="impl.api.front")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--round-trips", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--bulk-mb", type=int, default=128)
    parser.add_argument("--bulk-connections", type=int, default=4)
    parser.add_argument(
        "--rate", type=float, default=2000.0, help="round trips per second (0: as fast as possible)"
    )
    arguments = parser.parse_args()
    echo, echo_port = spawn("--echo")
    front, front_port = spawn("--front", arguments.module, str(echo_port))
    try:
        sockets = connect(front_port, arguments.connections)
        ping_pong(sockets, 2000, arguments.size)  # warm up
        before = front_cpu(front)
        if arguments.rate:
            seconds = paced(sockets, arguments.round_trips, arguments.size, arguments.rate)
        else:
            seconds = ping_pong(sockets, arguments.round_trips, arguments.size)
        cpu = front_cpu(front) - before
        print(
            f"{arguments.module}: ping-pong {arguments.round_trips} x {arguments.size} B over "
            f"{arguments.connections} conns: {arguments.round_trips / seconds:.0f} rt/s, "
            f"front CPU {cpu / arguments.round_trips * 1e6:.1f} us/rt"
        )
        for connection in sockets:
            connection.close()
        if arguments.bulk_mb:
            sockets = connect(front_port, arguments.bulk_connections)
            before = front_cpu(front)
            seconds = bulk(sockets, arguments.bulk_mb << 20)
            cpu = front_cpu(front) - before
            print(
                f"{arguments.module}: bulk {arguments.bulk_mb} MB each way over "
                f"{arguments.bulk_connections} conns: {arguments.bulk_mb / seconds:.0f} MB/s, "
                f"front CPU {cpu / arguments.bulk_mb / 2 * 1e3:.2f} ms/MB relayed"
            )
            for connection in sockets:
                connection.close()
    finally:
        assert front.stdin is not None
        front.stdin.write("quit\n")
        front.stdin.flush()
        front.wait(timeout=10)
        echo.kill()


if __name__ == "__main__":
    main()
