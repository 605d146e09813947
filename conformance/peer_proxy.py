"""A TCP proxy in front of a member's peer listener, for network faults between members.

The launcher advertises each member's peer URL at its proxy, so every connection another
member opens to it passes through here; client traffic never does (as in etcd's robustness
tests, only peer traffic is faulted). Modes:

* `pass`: forward bytes both ways;
* `blackhole`: keep connections open but discard every byte both ways;
* `delay`: hold each chunk for a latency (75 ms ± 50 ms by default, etcd's DelayPeerNetwork);
* `drop`: close each connection with some probability per chunk (a lossy link: on a TCP
  stream, losing bytes means losing the connection).

Like etcd's peer proxy, it sees only the connections *to* its member; those the member dials
out go through the other members' proxies, so a blackhole here is a partial partition.
Loopback only; every loop checks the stop flag at least every 200 ms.
"""

from __future__ import annotations

import random
import select
import socket
import threading
import time
from enum import StrEnum

CHUNK_BYTES = 65536
POLL_SECONDS = 0.2


class LinkMode(StrEnum):
    PASS = "pass"
    BLACKHOLE = "blackhole"
    DELAY = "delay"
    DROP = "drop"


class PeerProxy:
    def __init__(self, listen_port: int, target_port: int, seed: int = 1) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(64)
        self.listener.settimeout(POLL_SECONDS)
        self.mode = LinkMode.PASS
        self.delay_seconds = 0.075
        self.jitter_seconds = 0.05
        self.drop_probability = 0.5
        self.draw = random.Random(seed)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self.accept_loop, daemon=True)
        self.accepter.start()

    def accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                incoming, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self.pump, args=(incoming,), daemon=True)
            thread.start()
            self.threads = [t for t in self.threads if t.is_alive()] + [thread]

    def pump(self, incoming: socket.socket) -> None:
        try:
            outgoing = socket.create_connection(self.target, timeout=2)
        except OSError:
            incoming.close()
            return
        peers = {incoming: outgoing, outgoing: incoming}
        try:
            while not self.stopping.is_set():
                readable, _, _ = select.select(list(peers), [], [], POLL_SECONDS)
                for source in readable:
                    data = source.recv(CHUNK_BYTES)
                    if not data:
                        return
                    if not self.forward(peers[source], data):
                        return
        except OSError:
            return
        finally:
            incoming.close()
            outgoing.close()

    def forward(self, destination: socket.socket, data: bytes) -> bool:
        """Send one chunk according to the mode; False closes the connection."""
        mode = self.mode
        if mode == LinkMode.BLACKHOLE:
            return True
        if mode == LinkMode.DROP and self.draw.random() < self.drop_probability:
            return False
        if mode == LinkMode.DELAY:
            jitter = self.draw.uniform(-self.jitter_seconds, self.jitter_seconds)
            time.sleep(max(0.0, self.delay_seconds + jitter))
        destination.sendall(data)
        return True

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()
        self.accepter.join(timeout=2)
        for thread in self.threads:
            thread.join(timeout=2)
