"""Before any check: is each endpoint reachable, and does it speak etcd's v3 API?

Answers within seconds with a sentence naming the endpoint and what failed, so a typo in an
address or a server of the wrong kind never produces a traceback or a long hang.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from conformance.client import EtcdClient, RequestFailed, normalize_endpoint
from etcdpb.etcdserverpb import rpc_pb2

PROBE_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Probe:
    endpoint: str
    version: str = ""  # from Status; empty when the server does not implement it
    problem: str = ""  # empty when the endpoint is usable


def describe_failure(endpoint: str, failure: RequestFailed) -> str:
    details = failure.details
    lowered = details.lower()
    if "http1" in lowered or "http/1" in lowered or "failed parsing http/2" in lowered:
        return f"{endpoint} answers HTTP/1, not gRPC: not an etcd v3 API endpoint"
    if failure.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return f"cannot reach {endpoint} within {PROBE_TIMEOUT_SECONDS:.0f} s ({failure.code.name}: {details})"
    return f"{endpoint} answered {failure.method} with {failure.code.name}: {details!r}: not an etcd v3 API server?"


def probe(endpoint: str) -> Probe:
    try:
        address = normalize_endpoint(endpoint)
    except ValueError as error:
        return Probe(endpoint, problem=str(error))
    with EtcdClient(address, timeout_seconds=PROBE_TIMEOUT_SECONDS) as client:
        try:
            return Probe(address, version=client.status().version)
        except RequestFailed as status_failure:
            if not status_failure.unsupported:
                return Probe(address, problem=describe_failure(address, status_failure))
        return probe_range(client, address)


def probe_range(client: EtcdClient, address: str) -> Probe:
    """For a server without Maintenance.Status: does it at least serve KV.Range?"""
    try:
        client.range(rpc_pb2.RangeRequest(key=b"\x00", range_end=b"\x00", count_only=True))
        return Probe(address)
    except RequestFailed as failure:
        if failure.unsupported:
            return Probe(
                address,
                problem=f"{address} speaks gRPC but implements neither etcdserverpb.Maintenance/"
                "Status nor etcdserverpb.KV/Range: not an etcd v3 API server",
            )
        return Probe(address, problem=describe_failure(address, failure))
