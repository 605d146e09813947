"""etcd's JSON gateway and plain HTTP endpoints, answered on the client port's HTTP/1.1 side.

As in etcd, the gateway is a client of the member's own gRPC server: each `POST /v3/...` body
is parsed into the gRPC request, the call goes to the internal gRPC port, and the answer is
written back as JSON. The conventions are grpc-gateway's with `OrigName` (facts §1.11): proto
field names, int64 and uint64 as strings, bytes as standard base64, enums by name, fields with
zero values left out. protobuf's `json_format` follows the same rules (its parser also accepts
lowerCamel names, as jsonpb does).

* A unary error is `{"error": msg, "message": msg, "code": grpc code}` with grpc-gateway's HTTP
  status for the code (`http_status`); a body that is not a JSON
  object of the request's fields is INVALID_ARGUMENT (400), never a crash.
* Streams (`/v3/watch`, `/v3/lease/keepalive`, `/v3/maintenance/snapshot`): the body is a
  sequence of JSON requests; at its end the request side is closed and responses keep coming,
  one `{"result": ...}` line each, chunked, until the client hangs up. An error ends the stream
  with one `{"error": {...}}` line.
* `GET /health`, `GET /version`, `GET /metrics` as etcd 3.4 answers them.
* `/v3beta/` and `/v3alpha/` paths are served as `/v3/` (etcd rewrites them).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from impl.api.metrics import NodeMetrics
from impl.node.node import Node
from spec.errors import EtcdError, GrpcCode, http_status_for_grpc_code
from spec.mvcc import RangeRequest

log = logging.getLogger("etcdref.gateway")

SERVER_VERSION: Final = "3.4.23"
CLUSTER_VERSION: Final = "3.4.0"
HEALTH_TIMEOUT_SECONDS: Final = 1.0
HEADER_LINES_MAX: Final = 100
MESSAGE_DEPTH_MAX: Final = 64  # nested txns in a JSON body
CORS_HEADERS: Final = (
    ("Access-Control-Allow-Headers", "accept, content-type, authorization"),
    ("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"),
    ("Access-Control-Allow-Origin", "*"),
)
_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    412: "Precondition Failed",
    411: "Length Required",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _Route:
    def __init__(self, stub: str, method: str, request: type[Message], stream: bool) -> None:
        self.stub = stub
        self.method = method
        self.request = request
        self.stream = stream


def _routes() -> dict[str, _Route]:
    unary, stream = False, True
    r = rpc_pb2
    table: dict[str, tuple[str, str, type[Message], bool]] = {
        "/v3/kv/range": ("KV", "Range", r.RangeRequest, unary),
        "/v3/kv/put": ("KV", "Put", r.PutRequest, unary),
        "/v3/kv/deleterange": ("KV", "DeleteRange", r.DeleteRangeRequest, unary),
        "/v3/kv/txn": ("KV", "Txn", r.TxnRequest, unary),
        "/v3/kv/compaction": ("KV", "Compact", r.CompactionRequest, unary),
        "/v3/watch": ("Watch", "Watch", r.WatchRequest, stream),
        "/v3/lease/grant": ("Lease", "LeaseGrant", r.LeaseGrantRequest, unary),
        "/v3/lease/revoke": ("Lease", "LeaseRevoke", r.LeaseRevokeRequest, unary),
        "/v3/lease/keepalive": ("Lease", "LeaseKeepAlive", r.LeaseKeepAliveRequest, stream),
        "/v3/lease/timetolive": ("Lease", "LeaseTimeToLive", r.LeaseTimeToLiveRequest, unary),
        "/v3/lease/leases": ("Lease", "LeaseLeases", r.LeaseLeasesRequest, unary),
        "/v3/cluster/member/add": ("Cluster", "MemberAdd", r.MemberAddRequest, unary),
        "/v3/cluster/member/remove": ("Cluster", "MemberRemove", r.MemberRemoveRequest, unary),
        "/v3/cluster/member/update": ("Cluster", "MemberUpdate", r.MemberUpdateRequest, unary),
        "/v3/cluster/member/list": ("Cluster", "MemberList", r.MemberListRequest, unary),
        "/v3/cluster/member/promote": ("Cluster", "MemberPromote", r.MemberPromoteRequest, unary),
        "/v3/maintenance/alarm": ("Maintenance", "Alarm", r.AlarmRequest, unary),
        "/v3/maintenance/status": ("Maintenance", "Status", r.StatusRequest, unary),
        "/v3/maintenance/defragment": ("Maintenance", "Defragment", r.DefragmentRequest, unary),
        # etcd 3.4's proto also binds HashKV here, but Hash is what its gateway serves.
        "/v3/maintenance/hash": ("Maintenance", "Hash", r.HashRequest, unary),
        "/v3/maintenance/snapshot": ("Maintenance", "Snapshot", r.SnapshotRequest, stream),
        "/v3/maintenance/transfer-leadership": ("Maintenance", "MoveLeader", r.MoveLeaderRequest, unary),
    }  # fmt: skip
    for name in ("revoke", "timetolive", "leases"):  # etcd's older paths for the same calls
        table[f"/v3/kv/lease/{name}"] = table[f"/v3/lease/{name}"]
    return {path: _Route(*entry) for path, entry in table.items()}


ROUTES: Final = _routes()


class BadRequest(Exception):
    """The body cannot be read as the request (the message says why)."""


def message_to_json(message: Message) -> dict[str, Any]:
    """grpc-gateway's JSON for `message` (OrigName, zero values omitted)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


_GO_ESCAPES: Final = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def dumps(value: object) -> bytes:
    """Compact JSON as Go's encoding/json writes it: UTF-8, with <, > and & escaped."""
    return (
        json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(_GO_ESCAPES).encode()
    )


def parse_request(body: bytes, request_class: type[Message]) -> Message:
    """One request from a JSON object; an empty body is the empty request (as in etcd)."""
    message = request_class()
    if not body.strip():
        return message
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise BadRequest(f"invalid JSON body: {error}") from None
    return _parse_value(value, request_class)


def _parse_value(value: object, request_class: type[Message]) -> Message:
    if not isinstance(value, dict):
        raise BadRequest(
            f"the body must be a JSON object of {request_class.DESCRIPTOR.name} fields"
        )
    problem = _strict_problem(value, request_class.DESCRIPTOR)
    if problem is not None:
        raise BadRequest(problem)
    message = request_class()
    try:
        json_format.ParseDict(value, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, AttributeError, RecursionError) as error:
        raise BadRequest(str(error) or type(error).__name__) from None
    return message


def _strict_problem(value: dict[str, Any], descriptor: Any, depth: int = 0) -> str | None:
    """What jsonpb refuses but `json_format` lets through with unknown fields ignored: bytes that
    are not standard base64, and enum names the enum does not have. None when neither occurs."""
    if depth > MESSAGE_DEPTH_MAX:
        return "the request nests too deeply"
    fields = {field.name: field for field in descriptor.fields}
    fields.update({field.json_name: field for field in descriptor.fields})
    for name, item in value.items():
        field = fields.get(name)
        if field is None or item is None:
            continue
        items = item if isinstance(item, list) and _is_repeated(field) else [item]
        for element in items:
            problem = _field_problem(field, element, depth)
            if problem is not None:
                return problem
    return None


def _is_repeated(field: Any) -> bool:
    return bool(field.is_repeated)


def _field_problem(field: Any, element: object, depth: int) -> str | None:
    if field.type == field.TYPE_BYTES and isinstance(element, str):
        try:
            base64.b64decode(element, validate=True)
        except (ValueError, binascii.Error):
            return f"illegal base64 data in field {field.name}"
    elif field.type == field.TYPE_ENUM and isinstance(element, str):
        if field.enum_type.values_by_name.get(element) is None:
            return f'unknown value "{element}" for enum {field.enum_type.full_name}'
    elif field.type == field.TYPE_MESSAGE and isinstance(element, dict):
        return _strict_problem(element, field.message_type, depth + 1)
    return None


def parse_request_stream(body: bytes, request_class: type[Message]) -> list[Message]:
    """A streaming call's body: JSON objects one after the other (whitespace between them)."""
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        raise BadRequest(f"invalid JSON body: {error}") from None
    decoder = json.JSONDecoder()
    requests: list[Message] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return requests
        try:
            value, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError) as error:
            raise BadRequest(f"invalid JSON body: {error}") from None
        requests.append(_parse_value(value, request_class))


def http_status(code: int) -> int:
    """grpc-gateway's HTTP status for a gRPC code, as etcd 3.4.23 answers: its older
    grpc-gateway maps FailedPrecondition to 412 (measured; later versions answer 400)."""
    if code == GrpcCode.FAILED_PRECONDITION.value:
        return 412
    return http_status_for_grpc_code(GrpcCode(code))


def error_body(code: int, message: str) -> bytes:
    return dumps({"error": message, "message": message, "code": code})


def stream_error_line(code: int, message: str) -> bytes:
    status = http_status(code)
    error = {
        "grpc_code": code,
        "http_code": status,
        "message": message,
        "http_status": _REASONS.get(status, ""),
        "details": [],
    }
    return dumps({"error": error}) + b"\n"


class _Request:
    def __init__(self, method: str, target: str, version: str, headers: dict[str, str]) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        split = urlsplit(target)
        self.path = split.path
        self.query = parse_qs(split.query)

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


class Gateway:
    """Serves HTTP/1.1 connections for one member; `handle` is the front's HTTP handler."""

    def __init__(self, node: Node, grpc_address: str, metrics: NodeMetrics) -> None:
        self.node = node
        self.metrics = metrics
        self.max_body_bytes = node.config.max_request_bytes + 512 * 1024
        self.request_timeout_seconds = 5 + 2 * node.config.election_timeout_ms / 1000
        self.channel = grpc.insecure_channel(
            grpc_address,
            options=[
                ("grpc.max_receive_message_length", 2**31 - 1),
                ("grpc.max_send_message_length", self.max_body_bytes),
            ],
        )
        self.stubs: dict[str, Any] = {
            "KV": rpc_pb2_grpc.KVStub(self.channel),
            "Watch": rpc_pb2_grpc.WatchStub(self.channel),
            "Lease": rpc_pb2_grpc.LeaseStub(self.channel),
            "Cluster": rpc_pb2_grpc.ClusterStub(self.channel),
            "Maintenance": rpc_pb2_grpc.MaintenanceStub(self.channel),
        }
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="gateway")

    # --- one connection ---------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await self._read_head(reader, writer)
            if request is None:
                return
            body = await self._read_body(request, reader, writer)
            if body is None:
                return
            try:
                keep_open = await self._dispatch(request, body, reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                raise
            except Exception as error:  # a bug here must cost one answer, not the connection
                log.exception("%s %s failed", request.method, request.path)
                code = grpc.StatusCode.INTERNAL.value[0]
                await self._respond(writer, 500, error_body(code, f"etcdref: {error}"), close=True)
                return
            if not keep_open or not request.keep_alive:
                return

    async def _read_head(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # the client closed the connection between requests
        except asyncio.LimitOverrunError:
            await self._plain(writer, 431, "Request Header Fields Too Large\n", close=True)
            return None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or len(lines) > HEADER_LINES_MAX:
            await self._plain(writer, 400, "Bad Request\n", close=True)
            return None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, colon, value = line.partition(":")
            if not colon:
                await self._plain(writer, 400, "Bad Request\n", close=True)
                return None
            headers[name.strip().lower()] = value.strip()
        return _Request(parts[0], parts[1], parts[2], headers)

    async def _read_body(
        self, request: _Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes | None:
        if request.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                line = await reader.readuntil(b"\r\n")
                try:
                    length = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    await self._plain(writer, 400, "Bad Request\n", close=True)
                    return None
                if length == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    return b"".join(chunks)
                size += length
                if size > self.max_body_bytes:
                    await self._plain(writer, 413, "Request Entity Too Large\n", close=True)
                    return None
                chunks.append(await reader.readexactly(length))
                await reader.readexactly(2)
        try:
            length = int(request.headers.get("content-length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            await self._plain(writer, 400, "Bad Request\n", close=True)
            return None
        if length > self.max_body_bytes:
            await self._plain(writer, 413, "Request Entity Too Large\n", close=True)
            return None
        return await reader.readexactly(length) if length else b""

    # --- routing ------------------------------------------------------------------------------

    async def _dispatch(
        self,
        request: _Request,
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        path = request.path
        for old in ("/v3beta/", "/v3alpha/"):
            if path.startswith(old):
                path = "/v3/" + path[len(old) :]
        if request.method == "OPTIONS":
            await self._respond(writer, 200, b"", "text/plain; charset=utf-8")
            return True
        if path in ("/health", "/version", "/metrics"):
            if request.method not in ("GET", "HEAD"):
                await self._plain(writer, 405, "Method Not Allowed\n")
                return True
            await self._plain_endpoint(path, request, writer)
            return True
        route = ROUTES.get(path)
        if route is None:
            await self._plain(writer, 404, "Not Found\n")
            return True
        if request.method != "POST":
            await self._plain(writer, 405, "Method Not Allowed\n")
            return True
        if route.stream:
            await self._stream(route, body, reader, writer)
            return False
        await self._unary(route, body, writer)
        return True

    async def _unary(self, route: _Route, body: bytes, writer: asyncio.StreamWriter) -> None:
        try:
            message = parse_request(body, route.request)
        except BadRequest as error:
            code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
            await self._respond(writer, 400, error_body(code, str(error)))
            return
        call = getattr(self.stubs[route.stub], route.method)
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                self.executor,
                lambda: call(message, timeout=self.request_timeout_seconds + 1),
            )
        except grpc.RpcError as error:
            code, details = _code_and_details(error)
            status = http_status(code)
            await self._respond(writer, status, error_body(code, details))
            return
        await self._respond(writer, 200, dumps(message_to_json(response)))

    async def _stream(
        self,
        route: _Route,
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            requests = parse_request_stream(body, route.request)
        except BadRequest as error:
            await self._respond(
                writer, 500, error_body(grpc.StatusCode.UNKNOWN.value[0], str(error))
            )
            return
        stub_method = getattr(self.stubs[route.stub], route.method)
        if route.method == "Snapshot":
            first = requests[0] if requests else route.request()
            call = stub_method(first)
        else:
            call = stub_method(iter(requests))
        await self._send_head(writer, 200, [("Transfer-Encoding", "chunked")])
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[bytes | None] = asyncio.Queue()
        done = threading.Event()

        def pump() -> None:
            try:
                for response in _responses(call):
                    if done.is_set():
                        break
                    line = dumps({"result": message_to_json(response)}) + b"\n"
                    loop.call_soon_threadsafe(lines.put_nowait, line)
            except grpc.RpcError as error:
                if not done.is_set():
                    code, details = _code_and_details(error)
                    loop.call_soon_threadsafe(lines.put_nowait, stream_error_line(code, details))
            finally:
                loop.call_soon_threadsafe(lines.put_nowait, None)

        # A thread of its own: a stream lasts as long as the client stays, and must not hold
        # one of the workers that unary calls need.
        threading.Thread(target=pump, name="gateway-stream", daemon=True).start()
        hang_up = loop.create_task(reader.read())  # the client sends nothing more; EOF = gone
        try:
            while True:
                next_line = loop.create_task(lines.get())
                finished, _ = await asyncio.wait(
                    {next_line, hang_up}, return_when=asyncio.FIRST_COMPLETED
                )
                if next_line not in finished:
                    next_line.cancel()
                    return
                line = next_line.result()
                if line is None:
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                    return
                writer.write(b"%x\r\n%s\r\n" % (len(line), line))
                await writer.drain()
        finally:
            done.set()
            call.cancel()
            hang_up.cancel()
            if hang_up.done() and not hang_up.cancelled():
                hang_up.exception()  # a reset by the client is how a stream often ends

    # --- /health, /version, /metrics ----------------------------------------------------------

    async def _plain_endpoint(
        self, path: str, request: _Request, writer: asyncio.StreamWriter
    ) -> None:
        if path == "/version":
            body = dumps({"etcdserver": SERVER_VERSION, "etcdcluster": CLUSTER_VERSION})
            await self._respond(writer, 200, body)
        elif path == "/metrics":
            loop = asyncio.get_running_loop()
            text = await loop.run_in_executor(self.executor, self.metrics.exposition)
            await self._respond(writer, 200, text, self.metrics.content_type)
        else:
            excluded = set(request.query.get("exclude", []))
            serializable = request.query.get("serializable", ["false"])[-1] == "true"
            loop = asyncio.get_running_loop()
            healthy = await loop.run_in_executor(
                self.executor, lambda: self.healthy(excluded, serializable)
            )
            body = dumps({"health": "true" if healthy else "false"})
            await self._respond(writer, 200 if healthy else 503, body, "text/plain; charset=utf-8")

    def healthy(self, excluded_alarms: set[str], serializable: bool = False) -> bool:
        """etcd 3.4 checkHealth: no alarm (but the excluded ones), a leader, and a read within a
        second: linearizable (through Raft), or from this member with `?serializable=true`."""
        node = self.node
        if any(member.alarm.name not in excluded_alarms for member in node.alarms.active):
            return False
        if node.leader is None:
            return False
        future = node.read(RangeRequest(key=b"health", serializable=serializable))
        try:
            result = future.result(timeout=HEALTH_TIMEOUT_SECONDS)
        except Exception:
            return False
        return not isinstance(result, EtcdError)

    # --- writing ------------------------------------------------------------------------------

    async def _send_head(
        self, writer: asyncio.StreamWriter, status: int, extra: list[tuple[str, str]]
    ) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines += [f"{name}: {value}" for name, value in CORS_HEADERS]
        lines += ["Content-Type: application/json", "Grpc-Metadata-Content-Type: application/grpc"]
        lines += [f"{name}: {value}" for name, value in extra]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        close: bool = False,
    ) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines += [f"{name}: {value}" for name, value in CORS_HEADERS]
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    async def _plain(
        self, writer: asyncio.StreamWriter, status: int, text: str, close: bool = False
    ) -> None:
        await self._respond(writer, status, text.encode(), "text/plain; charset=utf-8", close)

    def close(self) -> None:
        self.channel.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _responses(call: Any) -> Iterator[Message]:
    yield from call


def _code_and_details(error: grpc.RpcError) -> tuple[int, str]:
    code: grpc.StatusCode = error.code()
    details: str = error.details() or ""
    return int(code.value[0]), details
