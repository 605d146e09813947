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

One asyncio loop on one thread carries every connection. The relay moves bytes between two
transports with flow control both ways (a full write buffer pauses reading on the other side),
and the protocol objects do nothing per byte beyond `write`, so the relay costs one extra
loopback hop and little CPU (benchmarks/gateway.md has the measurement).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

log = logging.getLogger("etcdref.front")

HTTP2_PREFACE: Final = b"PRI * HTTP/2.0"
SNIFF_BYTES: Final = 4  # "PRI " against an HTTP/1.1 method (GET, POST, PUT, ...)
READY_POLL_SECONDS: Final = 0.02  # how often a connection accepted before readiness looks again
HTTP_READ_LIMIT_BYTES: Final = 64 * 1024  # request line and headers

HttpHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Relay(asyncio.Protocol):
    """One direction's receiver: what arrives on this transport is written to `peer`."""

    def __init__(self, peer: asyncio.Transport | None = None) -> None:
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.early: list[bytes] = []  # data that arrived before the peer was connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self.early.append(data)
        else:
            self.peer.write(data)

    def eof_received(self) -> bool:
        if self.peer is not None and self.peer.can_write_eof():
            self.peer.write_eof()
            return True  # keep our side open for the other direction
        return False

    def connection_lost(self, exception: Exception | None) -> None:
        if self.peer is not None:
            self.peer.close()

    def pause_writing(self) -> None:  # our transport's buffer is full: stop reading the peer
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and not self.peer.is_closing():
            self.peer.resume_reading()


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
        loop = self.front.loop
        client_side = _Relay()
        client.set_protocol(client_side)
        client_side.connection_made(client)
        try:
            host, port = self.front.grpc_address
            upstream, _ = await loop.create_connection(lambda: _Relay(client), host, port)
        except OSError as error:
            log.warning("cannot reach the gRPC server at %s: %s", self.front.grpc_address, error)
            client.close()
            return
        client_side.peer = upstream
        upstream.write(first)
        for data in client_side.early:
            upstream.write(data)
        client_side.early.clear()
        if client.is_closing():
            upstream.close()
            return
        client.resume_reading()

    def _serve_http(self, transport: asyncio.Transport, first: bytes) -> None:
        loop = self.front.loop
        reader = asyncio.StreamReader(limit=HTTP_READ_LIMIT_BYTES, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(first)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        self.front.spawn(self.front.http_handler(reader, writer), writer)


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
