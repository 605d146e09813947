"""A watch that asks for fragments gets a big catch-up response split as etcd 3.4 splits it
(v3rpc sendFragments: pieces under --max-request-bytes plus gRPC overhead, every piece but
the last marked `fragment`); a watch that does not ask gets it whole."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from etcdpb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.impl.api.cluster_tools import on_both

pytestmark = pytest.mark.etcd
VALUE = b"v" * 600_000  # four of these make one catch-up response of 2.4 MB, over 1.5 MiB
KEYS = 4
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]


def watch_shape(endpoint: str, fragment: bool) -> list[tuple[int, bool]]:
    """(events, fragment flag) of each response carrying events, for a watch from revision 1."""
    with grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS) as channel:
        request = rpc_pb2.WatchRequest(
            create_request=rpc_pb2.WatchCreateRequest(
                key=b"big/", range_end=b"big0", start_revision=1, fragment=fragment
            )
        )
        call = rpc_pb2_grpc.WatchStub(channel).Watch(iter([request]), timeout=20)
        shape: list[tuple[int, bool]] = []
        seen = 0
        for response in call:
            if response.events:
                shape.append((len(response.events), response.fragment))
                seen += len(response.events)
            if seen >= KEYS:
                break
        call.cancel()
        return shape


def fragment_script(endpoints: list[str]) -> list[list[tuple[int, bool]]]:
    endpoint = endpoints[0]
    with grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS) as channel:
        kv = rpc_pb2_grpc.KVStub(channel)
        for number in range(KEYS):
            kv.Put(rpc_pb2.PutRequest(key=b"big/%d" % number, value=VALUE), timeout=20)
    time.sleep(0.2)
    return [watch_shape(endpoint, fragment=True), watch_shape(endpoint, fragment=False)]


def test_big_catch_up_is_fragmented_as_etcd_fragments_it(tmp_path: Path) -> None:
    ours_shapes, etcd_shapes = on_both(tmp_path, fragment_script, size=1)
    assert ours_shapes == etcd_shapes
    fragmented, whole = ours_shapes
    assert len(fragmented) > 1 and fragmented[-1][1] is False, "pieces, the last one unmarked"
    assert all(flag for _, flag in fragmented[:-1]), "every piece but the last is a fragment"
    assert whole == [(KEYS, False)], "without the request, one response"
