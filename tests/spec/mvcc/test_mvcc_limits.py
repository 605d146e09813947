"""Request size and quota limits (spec.mvcc.limits)."""

from __future__ import annotations

from spec import constants
from spec.errors import EtcdError
from spec.mvcc import DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest
from spec.mvcc.limits import (
    check_lease_grant_quota,
    check_quota,
    check_request_size,
    write_cost_bytes,
)


def test_request_size_limit_is_one_and_a_half_mebibytes() -> None:
    assert check_request_size(1_572_864) is None
    assert check_request_size(1_572_865) == EtcdError.REQUEST_TOO_LARGE


def test_write_costs() -> None:
    put = PutRequest(key=b"key", value=b"value")
    assert write_cost_bytes(put) == 256 + 3 + 5
    nested = TxnRequest(success=(put,))
    txn = TxnRequest(success=(put, put, nested), failure=(PutRequest(key=b"k"),))
    assert write_cost_bytes(txn) == 2 * (256 + 8)  # the larger branch; nested txns not counted
    assert write_cost_bytes(DeleteRangeRequest(key=b"k")) == 0


def test_quota_refuses_puts_and_txns_at_the_limit_only() -> None:
    quota = constants.backend_quota_bytes
    put = PutRequest(key=b"k", value=b"v")
    assert check_quota(put, quota - 259) is None
    assert check_quota(put, quota - 258) == EtcdError.NO_SPACE
    assert check_quota(TxnRequest(), quota) == EtcdError.NO_SPACE  # even a txn that costs nothing
    assert check_quota(TxnRequest(), quota - 1) is None
    assert check_quota(DeleteRangeRequest(key=b"k"), quota * 2) is None
    assert check_quota(RangeRequest(key=b"k"), quota * 2) is None
    assert check_lease_grant_quota(quota - 65) is None
    assert check_lease_grant_quota(quota - 64) == EtcdError.NO_SPACE
