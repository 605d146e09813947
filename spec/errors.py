"""etcd's error table: every error a v3 client can receive, with its gRPC status code and text.

etcd clients turn an error back into a typed error by comparing its description **text**
(`errStringToError` in etcd's `api/v3rpc/rpctypes/error.go`), so the strings below must match
etcd byte for byte; so must the gRPC codes, which clients use to decide whether to retry.

    EtcdError.COMPACTED.message      -> "etcdserver: mvcc: required revision has been compacted"
    EtcdError.COMPACTED.grpc_code    -> GrpcCode.OUT_OF_RANGE
    EtcdError.COMPACTED.etcd_name    -> "ErrGRPCCompacted"
    error_for_message(text)          -> the EtcdError whose message is `text`, or None
    http_status_for_grpc_code(code)  -> the HTTP status the JSON gateway answers with

Every entry is present in etcd 3.4 and 3.5 unless its `since_version` says "3.5".
Spec functions never raise these: they return them inside a typed outcome
(`spec.mvcc.outcome.Rejected`), and the API layer turns them into gRPC statuses.

Watch-creation refusals are not gRPC errors: etcd reports them in a WatchResponse's
`cancel_reason`; those texts are in `WatchCancelReason`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final


class GrpcCode(enum.IntEnum):
    """gRPC status codes with their wire numbers (grpc `codes` package)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


_INVALID = GrpcCode.INVALID_ARGUMENT
_PRECONDITION = GrpcCode.FAILED_PRECONDITION
_UNAVAILABLE = GrpcCode.UNAVAILABLE


class EtcdError(enum.Enum):
    """One member per error in etcd's `rpctypes/error.go`: (etcd name, gRPC code, text, since)."""

    _value_: tuple[str, GrpcCode, str, str]

    # --- Requests ------------------------------------------------------------------------
    EMPTY_KEY = ("ErrGRPCEmptyKey", _INVALID, "etcdserver: key is not provided", "3.4")
    KEY_NOT_FOUND = ("ErrGRPCKeyNotFound", _INVALID, "etcdserver: key not found", "3.4")
    VALUE_PROVIDED = ("ErrGRPCValueProvided", _INVALID, "etcdserver: value is provided", "3.4")
    LEASE_PROVIDED = ("ErrGRPCLeaseProvided", _INVALID, "etcdserver: lease is provided", "3.4")
    TOO_MANY_OPERATIONS = (
        "ErrGRPCTooManyOps",
        _INVALID,
        "etcdserver: too many operations in txn request",
        "3.4",
    )
    DUPLICATE_KEY = (
        "ErrGRPCDuplicateKey",
        _INVALID,
        "etcdserver: duplicate key given in txn request",
        "3.4",
    )
    REQUEST_TOO_LARGE = (
        "ErrGRPCRequestTooLarge",
        _INVALID,
        "etcdserver: request is too large",
        "3.4",
    )
    TOO_MANY_REQUESTS = (
        "ErrGRPCRequestTooManyRequests",
        GrpcCode.RESOURCE_EXHAUSTED,
        "etcdserver: too many requests",
        "3.4",
    )
    # --- MVCC ------------------------------------------------------------------------------
    COMPACTED = (
        "ErrGRPCCompacted",
        GrpcCode.OUT_OF_RANGE,
        "etcdserver: mvcc: required revision has been compacted",
        "3.4",
    )
    FUTURE_REVISION = (
        "ErrGRPCFutureRev",
        GrpcCode.OUT_OF_RANGE,
        "etcdserver: mvcc: required revision is a future revision",
        "3.4",
    )
    NO_SPACE = (
        "ErrGRPCNoSpace",
        GrpcCode.RESOURCE_EXHAUSTED,
        "etcdserver: mvcc: database space exceeded",
        "3.4",
    )
    # --- Leases and watch ----------------------------------------------------------------------
    LEASE_NOT_FOUND = (
        "ErrGRPCLeaseNotFound",
        GrpcCode.NOT_FOUND,
        "etcdserver: requested lease not found",
        "3.4",
    )
    LEASE_EXISTS = ("ErrGRPCLeaseExist", _PRECONDITION, "etcdserver: lease already exists", "3.4")
    LEASE_TTL_TOO_LARGE = (
        "ErrGRPCLeaseTTLTooLarge",
        GrpcCode.OUT_OF_RANGE,
        "etcdserver: too large lease TTL",
        "3.4",
    )
    WATCH_CANCELED = (
        "ErrGRPCWatchCanceled",
        GrpcCode.CANCELLED,
        "etcdserver: watch canceled",
        "3.4",
    )
    # --- Membership ----------------------------------------------------------------------------
    MEMBER_EXISTS = (
        "ErrGRPCMemberExist",
        _PRECONDITION,
        "etcdserver: member ID already exist",
        "3.4",
    )
    PEER_URL_EXISTS = (
        "ErrGRPCPeerURLExist",
        _PRECONDITION,
        "etcdserver: Peer URLs already exists",
        "3.4",
    )
    MEMBER_NOT_ENOUGH_STARTED = (
        "ErrGRPCMemberNotEnoughStarted",
        _PRECONDITION,
        "etcdserver: re-configuration failed due to not enough started members",
        "3.4",
    )
    MEMBER_BAD_URLS = (
        "ErrGRPCMemberBadURLs",
        _INVALID,
        "etcdserver: given member URLs are invalid",
        "3.4",
    )
    MEMBER_NOT_FOUND = (
        "ErrGRPCMemberNotFound",
        GrpcCode.NOT_FOUND,
        "etcdserver: member not found",
        "3.4",
    )
    MEMBER_NOT_LEARNER = (
        "ErrGRPCMemberNotLearner",
        _PRECONDITION,
        "etcdserver: can only promote a learner member",
        "3.4",
    )
    LEARNER_NOT_READY = (
        "ErrGRPCLearnerNotReady",
        _PRECONDITION,
        "etcdserver: can only promote a learner member which is in sync with leader",
        "3.4",
    )
    TOO_MANY_LEARNERS = (
        "ErrGRPCTooManyLearners",
        _PRECONDITION,
        "etcdserver: too many learner members in cluster",
        "3.4",
    )
    # --- Authentication ------------------------------------------------------------------------
    ROOT_USER_NOT_EXIST = (
        "ErrGRPCRootUserNotExist",
        _PRECONDITION,
        "etcdserver: root user does not exist",
        "3.4",
    )
    ROOT_ROLE_NOT_EXIST = (
        "ErrGRPCRootRoleNotExist",
        _PRECONDITION,
        "etcdserver: root user does not have root role",
        "3.4",
    )
    USER_ALREADY_EXISTS = (
        "ErrGRPCUserAlreadyExist",
        _PRECONDITION,
        "etcdserver: user name already exists",
        "3.4",
    )
    USER_EMPTY = ("ErrGRPCUserEmpty", _INVALID, "etcdserver: user name is empty", "3.4")
    USER_NOT_FOUND = (
        "ErrGRPCUserNotFound",
        _PRECONDITION,
        "etcdserver: user name not found",
        "3.4",
    )
    ROLE_ALREADY_EXISTS = (
        "ErrGRPCRoleAlreadyExist",
        _PRECONDITION,
        "etcdserver: role name already exists",
        "3.4",
    )
    ROLE_NOT_FOUND = (
        "ErrGRPCRoleNotFound",
        _PRECONDITION,
        "etcdserver: role name not found",
        "3.4",
    )
    ROLE_EMPTY = ("ErrGRPCRoleEmpty", _INVALID, "etcdserver: role name is empty", "3.4")
    AUTH_FAILED = (
        "ErrGRPCAuthFailed",
        _INVALID,
        "etcdserver: authentication failed, invalid user ID or password",
        "3.4",
    )
    PERMISSION_NOT_GIVEN = (
        "ErrGRPCPermissionNotGiven",
        _INVALID,
        "etcdserver: permission not given",
        "3.4",
    )
    PERMISSION_DENIED = (
        "ErrGRPCPermissionDenied",
        GrpcCode.PERMISSION_DENIED,
        "etcdserver: permission denied",
        "3.4",
    )
    ROLE_NOT_GRANTED = (
        "ErrGRPCRoleNotGranted",
        _PRECONDITION,
        "etcdserver: role is not granted to the user",
        "3.4",
    )
    PERMISSION_NOT_GRANTED = (
        "ErrGRPCPermissionNotGranted",
        _PRECONDITION,
        "etcdserver: permission is not granted to the role",
        "3.4",
    )
    AUTH_NOT_ENABLED = (
        "ErrGRPCAuthNotEnabled",
        _PRECONDITION,
        "etcdserver: authentication is not enabled",
        "3.4",
    )
    INVALID_AUTH_TOKEN = (
        "ErrGRPCInvalidAuthToken",
        GrpcCode.UNAUTHENTICATED,
        "etcdserver: invalid auth token",
        "3.4",
    )
    INVALID_AUTH_MANAGEMENT = (
        "ErrGRPCInvalidAuthMgmt",
        _INVALID,
        "etcdserver: invalid auth management",
        "3.4",
    )
    AUTH_OLD_REVISION = (
        "ErrGRPCAuthOldRevision",
        _INVALID,
        "etcdserver: revision of auth store is old",
        "3.4",
    )
    # --- Server and cluster state --------------------------------------------------------------
    NO_LEADER = ("ErrGRPCNoLeader", _UNAVAILABLE, "etcdserver: no leader", "3.4")
    NOT_LEADER = ("ErrGRPCNotLeader", _PRECONDITION, "etcdserver: not leader", "3.4")
    LEADER_CHANGED = ("ErrGRPCLeaderChanged", _UNAVAILABLE, "etcdserver: leader changed", "3.4")
    NOT_CAPABLE = ("ErrGRPCNotCapable", _UNAVAILABLE, "etcdserver: not capable", "3.4")
    STOPPED = ("ErrGRPCStopped", _UNAVAILABLE, "etcdserver: server stopped", "3.4")
    TIMEOUT = ("ErrGRPCTimeout", _UNAVAILABLE, "etcdserver: request timed out", "3.4")
    TIMEOUT_DUE_TO_LEADER_FAIL = (
        "ErrGRPCTimeoutDueToLeaderFail",
        _UNAVAILABLE,
        "etcdserver: request timed out, possibly due to previous leader failure",
        "3.4",
    )
    TIMEOUT_DUE_TO_CONNECTION_LOST = (
        "ErrGRPCTimeoutDueToConnectionLost",
        _UNAVAILABLE,
        "etcdserver: request timed out, possibly due to connection lost",
        "3.4",
    )
    TIMEOUT_WAIT_APPLIED_INDEX = (
        "ErrGRPCTimeoutWaitAppliedIndex",
        _UNAVAILABLE,
        "etcdserver: request timed out, waiting for the applied index took too long",
        "3.4",
    )
    UNHEALTHY = ("ErrGRPCUnhealthy", _UNAVAILABLE, "etcdserver: unhealthy cluster", "3.4")
    CORRUPT = ("ErrGRPCCorrupt", GrpcCode.DATA_LOSS, "etcdserver: corrupt cluster", "3.4")
    NOT_SUPPORTED_FOR_LEARNER = (
        "ErrGPRCNotSupportedForLearner",  # sic: etcd's own spelling of the constant
        _UNAVAILABLE,
        "etcdserver: rpc not supported for learner",
        "3.4",
    )
    BAD_LEADER_TRANSFEREE = (
        "ErrGRPCBadLeaderTransferee",
        _PRECONDITION,
        "etcdserver: bad leader transferee",
        "3.4",
    )
    # --- Downgrade and request context (etcd 3.5 only) -----------------------------------------
    CLUSTER_VERSION_UNAVAILABLE = (
        "ErrGRPCClusterVersionUnavailable",
        _UNAVAILABLE,
        "etcdserver: cluster version not found during downgrade",
        "3.5",
    )
    WRONG_DOWNGRADE_VERSION_FORMAT = (
        "ErrGRPCWrongDowngradeVersionFormat",
        _INVALID,
        "etcdserver: wrong downgrade target version format",
        "3.5",
    )
    INVALID_DOWNGRADE_TARGET_VERSION = (
        "ErrGRPCInvalidDowngradeTargetVersion",
        _INVALID,
        "etcdserver: invalid downgrade target version",
        "3.5",
    )
    DOWNGRADE_IN_PROCESS = (
        "ErrGRPCDowngradeInProcess",
        _PRECONDITION,
        "etcdserver: cluster has a downgrade job in progress",
        "3.5",
    )
    NO_INFLIGHT_DOWNGRADE = (
        "ErrGRPCNoInflightDowngrade",
        _PRECONDITION,
        "etcdserver: no inflight downgrade job",
        "3.5",
    )
    REQUEST_CANCELED = (
        "ErrGRPCCanceled",
        GrpcCode.CANCELLED,
        "etcdserver: request canceled",
        "3.5",
    )
    DEADLINE_EXCEEDED = (
        "ErrGRPCDeadlineExceeded",
        GrpcCode.DEADLINE_EXCEEDED,
        "etcdserver: context deadline exceeded",
        "3.5",
    )

    @property
    def etcd_name(self) -> str:
        """The name of the constant in etcd's rpctypes package, for cross-reference."""
        return self._value_[0]

    @property
    def grpc_code(self) -> GrpcCode:
        """The gRPC status code etcd sends with this error."""
        return self._value_[1]

    @property
    def message(self) -> str:
        """The exact status description etcd sends; clients match on it byte for byte."""
        return self._value_[2]

    @property
    def since_version(self) -> str:
        """The first etcd minor version ("3.4" or "3.5") that has this error."""
        return self._value_[3]


class WatchCancelReason(enum.Enum):
    """Texts etcd puts in `WatchResponse.cancel_reason` when it refuses to create a watch."""

    RANGE_EMPTY = "mvcc: watcher range is empty"
    DUPLICATE_WATCH_ID = "mvcc: duplicate watch ID provided on the WatchStream"
    # A negative start revision is refused with the text of the compaction error.
    COMPACTED = EtcdError.COMPACTED.message


_ERRORS_BY_MESSAGE: Final[Mapping[str, EtcdError]] = {error.message: error for error in EtcdError}


def error_for_message(message: str) -> EtcdError | None:
    """The error whose text is exactly `message` (etcd's client maps errors back the same way)."""
    return _ERRORS_BY_MESSAGE.get(message)


# grpc-gateway's HTTPStatusFromCode (v1.11 and v1.16 agree); FailedPrecondition is 400, not 412.
_HTTP_STATUS_BY_GRPC_CODE: Final[Mapping[GrpcCode, int]] = {
    GrpcCode.OK: 200,
    GrpcCode.CANCELLED: 408,
    GrpcCode.UNKNOWN: 500,
    GrpcCode.INVALID_ARGUMENT: 400,
    GrpcCode.DEADLINE_EXCEEDED: 504,
    GrpcCode.NOT_FOUND: 404,
    GrpcCode.ALREADY_EXISTS: 409,
    GrpcCode.PERMISSION_DENIED: 403,
    GrpcCode.UNAUTHENTICATED: 401,
    GrpcCode.RESOURCE_EXHAUSTED: 429,
    GrpcCode.FAILED_PRECONDITION: 400,
    GrpcCode.ABORTED: 409,
    GrpcCode.OUT_OF_RANGE: 400,
    GrpcCode.UNIMPLEMENTED: 501,
    GrpcCode.INTERNAL: 500,
    GrpcCode.UNAVAILABLE: 503,
    GrpcCode.DATA_LOSS: 500,
}


def http_status_for_grpc_code(code: GrpcCode) -> int:
    """The HTTP status etcd's JSON gateway answers with for a gRPC code (grpc-gateway rule)."""
    return _HTTP_STATUS_BY_GRPC_CODE[code]


assert len(_ERRORS_BY_MESSAGE) == len(EtcdError), "every etcd error text is unique"
assert set(_HTTP_STATUS_BY_GRPC_CODE) == set(GrpcCode), "every gRPC code has an HTTP status"
