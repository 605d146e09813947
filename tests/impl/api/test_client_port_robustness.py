"""The client port survives what is not a proper request: garbage, a broken HTTP/2 preface,
oversized headers and bodies, bad chunking, clients that vanish mid-request. Each gets a clear
answer or a closed connection, and the member keeps serving gRPC and JSON afterwards."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.impl.node.harness import EtcdrefCluster


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("etcdref")
    with EtcdrefCluster(root, size=1) as cluster:
        yield cluster.endpoints[0]


def exchange(endpoint: str, data: bytes, read_bytes: int = 65536) -> bytes:
    """Send `data`, half-close, and return what comes back before the server closes."""
    host, port = endpoint.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while len(received) < read_bytes:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def still_serves(endpoint: str) -> None:
    with grpc.insecure_channel(endpoint) as channel:
        stub = rpc_pb2_grpc.KVStub(channel)
        stub.Put(rpc_pb2.PutRequest(key=b"alive", value=b"yes"), timeout=10)
    host, port = endpoint.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", "/v3/kv/range", body=b'{"key":"YWxpdmU="}')
    body = json.loads(connection.getresponse().read())
    assert body["kvs"][0]["value"] == "eWVz"


@pytest.mark.parametrize(
    ("name", "data", "expected_start"),
    [
        ("garbage", b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        ("too few bytes to sniff", b"GE", b""),
        ("no request line", b"\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        ("header without a colon", b"POST /v3/kv/range HTTP/1.1\r\nbroken\r\n\r\n", b"HTTP/1.1 400"),
        ("negative length", b"POST /v3/kv/range HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"HTTP/1.1 400"),
        ("huge length", b"POST /v3/kv/range HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"HTTP/1.1 413"),
        ("bad chunk size", b"POST /v3/kv/range HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"HTTP/1.1 400"),
        ("headers too large", b"GET /health HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n", b"HTTP/1.1 431"),
        ("body cut short", b"POST /v3/kv/put HTTP/1.1\r\nContent-Length: 100\r\n\r\n{", b""),
        ("HTTP/2 preface then garbage", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64, b""),
        ("deeply nested JSON", b"POST /v3/kv/txn HTTP/1.1\r\nContent-Length: 200000\r\n\r\n" + b"[" * 100_000 + b"]" * 100_000, b"HTTP/1.1 400"),
        ("chunked request", b"POST /v3/kv/range HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", b"HTTP/1.1 400"),
    ],
)  # fmt: skip
def test_the_client_port_answers_or_closes_and_keeps_serving(
    endpoint: str, name: str, data: bytes, expected_start: bytes
) -> None:
    received = exchange(endpoint, data)
    assert received.startswith(expected_start), (name, received[:200])
    still_serves(endpoint)


def test_keep_alive_serves_several_requests_on_one_connection(endpoint: str) -> None:
    host, port = endpoint.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    for _ in range(3):
        connection.request("GET", "/version")
        assert json.loads(connection.getresponse().read())["etcdserver"] == "3.4.23"
    connection.request("POST", "/v3/kv/range", body=b'{"key":"eA=="}')
    assert connection.getresponse().status == 200
