"""etcd's error table: the exact texts and codes (a sample checked by hand against etcd's
rpctypes/error.go via the facts file), uniqueness, lookups, and the gateway's HTTP statuses."""

from __future__ import annotations

import pytest

from spec.errors import (
    EtcdError,
    GrpcCode,
    WatchCancelReason,
    error_for_message,
    http_status_for_grpc_code,
)


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (EtcdError.EMPTY_KEY, GrpcCode.INVALID_ARGUMENT, "etcdserver: key is not provided"),
        (
            EtcdError.COMPACTED,
            GrpcCode.OUT_OF_RANGE,
            "etcdserver: mvcc: required revision has been compacted",
        ),
        (
            EtcdError.FUTURE_REVISION,
            GrpcCode.OUT_OF_RANGE,
            "etcdserver: mvcc: required revision is a future revision",
        ),
        (EtcdError.LEASE_NOT_FOUND, GrpcCode.NOT_FOUND, "etcdserver: requested lease not found"),
        (
            EtcdError.DUPLICATE_KEY,
            GrpcCode.INVALID_ARGUMENT,
            "etcdserver: duplicate key given in txn request",
        ),
        (
            EtcdError.TOO_MANY_OPERATIONS,
            GrpcCode.INVALID_ARGUMENT,
            "etcdserver: too many operations in txn request",
        ),
        (
            EtcdError.NO_SPACE,
            GrpcCode.RESOURCE_EXHAUSTED,
            "etcdserver: mvcc: database space exceeded",
        ),
        (
            EtcdError.PEER_URL_EXISTS,
            GrpcCode.FAILED_PRECONDITION,
            "etcdserver: Peer URLs already exists",
        ),
        (EtcdError.NO_LEADER, GrpcCode.UNAVAILABLE, "etcdserver: no leader"),
        (EtcdError.CORRUPT, GrpcCode.DATA_LOSS, "etcdserver: corrupt cluster"),
        (EtcdError.INVALID_AUTH_TOKEN, GrpcCode.UNAUTHENTICATED, "etcdserver: invalid auth token"),
        (
            EtcdError.DEADLINE_EXCEEDED,
            GrpcCode.DEADLINE_EXCEEDED,
            "etcdserver: context deadline exceeded",
        ),
    ],
)
def test_exact_text_and_code(error: EtcdError, code: GrpcCode, message: str) -> None:
    assert error.message == message
    assert error.grpc_code == code
    assert error_for_message(message) is error


def test_every_error_of_the_facts_table_is_present() -> None:
    """The facts file §1.13 lists 60 errors: 53 in 3.4 and 3.5, 7 added in 3.5."""
    assert len(EtcdError) == 60
    assert sum(error.since_version == "3.5" for error in EtcdError) == 7
    assert all(error.message.startswith("etcdserver: ") for error in EtcdError)
    assert all(error.etcd_name.startswith(("ErrGRPC", "ErrGPRC")) for error in EtcdError)


def test_texts_are_unique_and_map_back() -> None:
    for error in EtcdError:
        assert error_for_message(error.message) is error
    assert error_for_message("etcdserver: key is not provided ") is None


def test_watch_cancel_reasons() -> None:
    assert WatchCancelReason.RANGE_EMPTY.value == "mvcc: watcher range is empty"
    assert (
        WatchCancelReason.DUPLICATE_WATCH_ID.value
        == "mvcc: duplicate watch ID provided on the WatchStream"
    )
    assert WatchCancelReason.COMPACTED.value == EtcdError.COMPACTED.message


def test_gateway_http_status() -> None:
    assert http_status_for_grpc_code(GrpcCode.FAILED_PRECONDITION) == 400
    assert http_status_for_grpc_code(GrpcCode.NOT_FOUND) == 404
    assert http_status_for_grpc_code(GrpcCode.UNAVAILABLE) == 503
    assert http_status_for_grpc_code(GrpcCode.CANCELLED) == 408
    assert http_status_for_grpc_code(EtcdError.COMPACTED.grpc_code) == 400
