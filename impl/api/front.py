"""The client port, as etcd serves it with cmux: gRPC and HTTP/1.1 JSON on one listener.

grpcio owns its listening sockets, so the gRPC server listens on an internal loopback port and
this front listens on the advertised client address. Each accepted connection is sniffed from
its first bytes:

* a connection that opens with HTTP/2's client preface (`PRI * HTTP/2.0`) is relayed byte for
  byte to the gRPC server (gRPC always speaks HTTP/2; etcd's cmux makes the same choice);
* anything else is HTTP/1.1, handed to `http_handler` as an asyncio stream pair.

Until the member is `ready` (its own name and client URLs published through Raft) a connection
is accepted but not answered, as etcd serves its client listeners only after ReadyNotify: a
client waits (within its deadline) instead of seeing a member table without this member's URLs.

One asyncio loop on the "client-front" thread accepts, sniffs and serves HTTP/1.1. A relayed
connection's socket is then taken from asyncio and moved, with its upstream connection, to the
"client-relay" thread (`_Relay`): a plain epoll loop whose work per read is one `recv_into` and
one `send`. Relaying through asyncio Protocols cost about three times the CPU per small message
(callbacks, handles and a bytes object per read); the measurement is in the commit that made
the change. Back-pressure, half-close and close are passed on as before (see `_Relay`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

log = logging.getLogger("etcdref.front")

HTTP2_PREFACE: Final = b"PRI * HTTP/2.0"
SNIFF_BYTES: Final = 4  # "PRI " against an HTTP/1.1 method (GET, POST, PUT, ...)
READY_POLL_SECONDS: Final = 0.02  # how often a connection accepted before readiness looks again
HTTP_READ_LIMIT_BYTES: Final = 64 * 1024  # request line and headers
RELAY_CHUNK_BYTES: Final = 256 * 1024  # one read; also the most the relay holds per direction
READABLE_EVENTS: Final = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR
WRITABLE_EVENTS: Final = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR

HttpHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Side:
    """One socket of a relayed pair, and the bytes read from its peer not yet written to it.
    A side is read only while its peer holds no unwritten bytes."""

    __slots__ = ("fd", "mask", "outgoing", "peer", "read_eof", "reading", "socket", "write_shut")

    def __init__(self, connection: socket.socket) -> None:
        self.socket = connection
        self.fd = connection.fileno()
        self.peer = self
        self.outgoing = memoryview(b"")
        self.reading = False  # off after EOF, and while the peer still holds unwritten bytes
        self.read_eof = False
        self.write_shut = False
        self.mask = 0  # what the poller watches now (0: not registered)


class _Relay:
    """Moves bytes between each accepted HTTP/2 connection and its gRPC upstream connection on a
    thread of its own, with one epoll set and non-blocking sockets.

    Each read goes into one preallocated buffer and straight out with `send`; only bytes the
    destination does not take at once are copied, and while they wait the source is not read,
    so a slow reader holds at most `RELAY_CHUNK_BYTES` per direction here (the kernel's socket
    buffers do the rest of the back-pressure). This replaces an asyncio Protocol pair, whose
    callbacks, handles and per-read bytes objects cost several times the two system calls.

    An end of stream is passed on as a half-close (shutdown for writing) once the bytes before it
    are written; the pair is closed when both directions have ended, or at once when either
    socket fails (bytes already read for the healthy side are still written first)."""

    def __init__(self) -> None:
        self._poller = select.epoll()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poller.register(self._wake, select.EPOLLIN)
        self._sides: dict[int, _Side] = {}
        self._arrivals: list[tuple[socket.socket, socket.socket, bytes]] = []
        self._arrivals_lock = threading.Lock()
        self._stopping = False  # set under the lock: no pair is admitted after it
        self._wake_closed = False
        self._buffer = bytearray(RELAY_CHUNK_BYTES)
        self._view = memoryview(self._buffer)
        self._thread = threading.Thread(target=self._run, name="client-relay", daemon=True)
        self._thread.start()

    def add(self, client: socket.socket, upstream: socket.socket, first: bytes) -> None:
        """Relay a new pair (any thread); `first` is what was read from `client` already."""
        with self._arrivals_lock:
            if self._stopping:
                client.close()
                upstream.close()
                return
            self._arrivals.append((client, upstream, first))
            os.eventfd_write(self._wake, 1)

    def stop(self) -> None:
        """Close every relayed connection and end the thread (any thread)."""
        with self._arrivals_lock:
            self._stopping = True
            if not self._wake_closed:
                os.eventfd_write(self._wake, 1)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        sides = self._sides
        try:
            while not self._stopping:
                for fd, events in self._poller.poll():
                    side = sides.get(fd)
                    if side is None:
                        if fd == self._wake:
                            os.eventfd_read(self._wake)
                        continue
                    if side.outgoing and events & WRITABLE_EVENTS:
                        self._flush(side)
                    if side.reading and events & READABLE_EVENTS:
                        self._pump(side)
                if self._arrivals:
                    self._admit()
        except Exception:
            log.exception("the client relay failed; its connections are closed")
        finally:
            for side in list(sides.values()):
                side.socket.close()
            sides.clear()
            with self._arrivals_lock:
                self._stopping = True
                for client, upstream, _ in self._arrivals:
                    client.close()
                    upstream.close()
                self._arrivals.clear()
                self._wake_closed = True
                os.close(self._wake)
            self._poller.close()

    def _admit(self) -> None:
        with self._arrivals_lock:
            arrivals, self._arrivals = self._arrivals, []
        for client_socket, upstream_socket, first in arrivals:
            client, upstream = _Side(client_socket), _Side(upstream_socket)
            client.peer, upstream.peer = upstream, client
            self._sides[client.fd] = client
            self._sides[upstream.fd] = upstream
            upstream.reading = True
            upstream.outgoing = memoryview(first)
            self._flush(upstream)  # starts reading the client once `first` is out

    def _pump(self, side: _Side) -> None:
        """Read what `side` has and write it to its peer; the common path of the relay."""
        try:
            count = side.socket.recv_into(self._buffer)
        except BlockingIOError:
            return
        except OSError:
            self._fail(side)
            return
        if count == 0:
            side.read_eof = True
            side.reading = False
            self._watch(side)
            self._shut(side.peer)  # (nothing waits for it: `reading` was on)
            return
        peer = side.peer
        data = self._view[:count]
        try:
            sent = peer.socket.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._fail(peer)
            return
        if sent < count:  # the peer is slow: keep the rest, stop reading until it is written
            peer.outgoing = memoryview(bytes(data[sent:]))
            side.reading = False
            self._watch(side)
            self._watch(peer)

    def _flush(self, side: _Side) -> None:
        """Write the bytes `side` holds; once all are out, resume reading its peer (or pass on
        the peer's end of stream)."""
        try:
            sent = side.socket.send(side.outgoing)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._fail(side)
            return
        side.outgoing = side.outgoing[sent:]
        if side.outgoing:
            self._watch(side)
            return
        peer = side.peer
        if peer.socket.fileno() < 0:  # the peer failed: these were its last bytes
            self._close(side)
            return
        self._watch(side)
        if peer.read_eof:
            self._shut(side)
        else:
            peer.reading = True
            self._watch(peer)

    def _shut(self, side: _Side) -> None:
        """Pass the peer's end of stream on; close the pair when both directions have ended."""
        try:
            side.socket.shutdown(socket.SHUT_WR)
        except OSError:
            self._fail(side)
            return
        side.write_shut = True
        if side.peer.write_shut:
            self._close(side)
            self._close(side.peer)

    def _fail(self, side: _Side) -> None:
        """`side` broke (reset, refused write): close it; its peer gets what is already read
        for it and is then closed too."""
        peer = side.peer
        self._close(side)
        peer.reading = False
        if peer.outgoing:
            self._watch(peer)
        else:
            self._close(peer)

    def _close(self, side: _Side) -> None:
        if self._sides.pop(side.fd, None) is None:
            return
        if side.mask:
            self._poller.unregister(side.fd)
        side.socket.close()
        side.reading = False
        side.outgoing = memoryview(b"")

    def _watch(self, side: _Side) -> None:
        """Make the poller watch `side` for what it waits for now, and nothing else: an fd left
        registered while paused would report a hang-up over and over."""
        mask = (select.EPOLLIN if side.reading else 0) | (select.EPOLLOUT if side.outgoing else 0)
        if mask == side.mask:
            return
        if side.mask == 0:
            self._poller.register(side.fd, mask)
        elif mask == 0:
            self._poller.unregister(side.fd)
        else:
            self._poller.modify(side.fd, mask)
        side.mask = mask


class _Sniffer(asyncio.Protocol):
    """The first protocol of every accepted connection: reads until it can tell HTTP/2 from
    HTTP/1.1, then hands the transport to the relay or to the HTTP handler."""

    def __init__(self, front: ClientFront) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.decided = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.decided or len(self.buffer) < SNIFF_BYTES:
            return
        self.decided = True
        assert self.transport is not None
        if self.front.ready.is_set():
            self._dispatch(self.transport, self.buffer)
        else:
            self.transport.pause_reading()
            self.front.loop.create_task(self._dispatch_when_ready(self.transport, self.buffer))

    def _dispatch(self, transport: asyncio.Transport, first: bytes) -> None:
        if first.startswith(HTTP2_PREFACE[:SNIFF_BYTES]):
            transport.pause_reading()
            self.front.loop.create_task(self._relay(transport, first))
        else:
            self._serve_http(transport, first)

    async def _dispatch_when_ready(self, transport: asyncio.Transport, first: bytes) -> None:
        """Hold a connection accepted before the member was ready (see the module doc)."""
        while not self.front.ready.is_set():
            if transport.is_closing():
                return
            await asyncio.sleep(READY_POLL_SECONDS)
        if transport.is_closing():
            return
        self._dispatch(transport, first)
        if not first.startswith(HTTP2_PREFACE[:SNIFF_BYTES]):
            transport.resume_reading()  # (the relay resumes its side once connected upstream)

    def eof_received(self) -> bool:
        return False

    async def _relay(self, client: asyncio.Transport, first: bytes) -> None:
        """Take the client's socket from asyncio (a duplicate descriptor, so that closing the
        transport does not end the connection), connect upstream, and hand both to the relay."""
        client_socket = _take_socket(client)
        upstream = socket.socket(self.front.grpc_family)
        upstream.setblocking(False)
        try:
            await self.front.loop.sock_connect(upstream, self.front.grpc_address)
        except OSError as error:
            log.warning("cannot reach the gRPC server at %s: %s", self.front.grpc_address, error)
            upstream.close()
            client_socket.close()
            return
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.front.relay.add(client_socket, upstream, first)

    def _serve_http(self, transport: asyncio.Transport, first: bytes) -> None:
        loop = self.front.loop
        reader = asyncio.StreamReader(limit=HTTP_READ_LIMIT_BYTES, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(first)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        self.front.spawn(self.front.http_handler(reader, writer), writer)


def _take_socket(transport: asyncio.Transport) -> socket.socket:
    """The transport's connection as a socket of its own; the transport is closed."""
    taken = socket.socket(fileno=os.dup(transport.get_extra_info("socket").fileno()))
    taken.setblocking(False)
    transport.abort()  # closes asyncio's descriptor only: the connection lives on in `taken`
    return taken


class ClientFront:
    """Listens on `addresses` ((host, port) pairs) on its own thread; see the module doc."""

    def __init__(
        self,
        addresses: list[tuple[str, int]],
        grpc_address: tuple[str, int],
        http_handler: HttpHandler,
        ready: threading.Event | None = None,
    ) -> None:
        self.addresses = addresses
        self.grpc_address = grpc_address
        self.grpc_family = socket.AF_INET6 if ":" in grpc_address[0] else socket.AF_INET
        self.http_handler = http_handler
        if ready is None:
            ready = threading.Event()
            ready.set()
        self.ready = ready
        self.loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread = threading.Thread(target=self._run, name="client-front", daemon=True)

    def start(self) -> None:
        """Bind every address (OSError when one is taken), then serve on the front's thread."""
        try:
            for host, port in self.addresses:
                server = self.loop.run_until_complete(
                    self.loop.create_server(
                        lambda: _Sniffer(self), host, port, reuse_address=True, backlog=1024
                    )
                )
                self._servers.append(server)
        except OSError:
            for server in self._servers:
                server.close()
            self.loop.close()
            raise
        self.relay = _Relay()
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def spawn(self, coroutine: Awaitable[None], writer: asyncio.StreamWriter) -> None:
        async def guarded() -> None:
            try:
                await coroutine
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            except Exception:
                log.exception("HTTP connection failed")
            finally:
                writer.close()

        task = self.loop.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        """Close the listeners and every connection, and end the thread."""
        if not self._thread.is_alive():
            return

        async def shut() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(shut(), self.loop)
        self._thread.join(timeout=5)
        self.relay.stop()
