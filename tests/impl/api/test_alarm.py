"""impl/api/alarm.py without a cluster: which applier each alarm selects and when it ends, as
etcd 3.4's applierV3backend.Alarm decides (the cluster comparison is in
test_maintenance_matches_etcd.py)."""

from __future__ import annotations

import pytest

from impl.api.alarm import (
    AlarmAction,
    AlarmMember,
    AlarmRequest,
    Alarms,
    AlarmType,
    Applier,
    BackendQuota,
    txn_cost,
)
from spec import lease
from spec.errors import EtcdError
from spec.mvcc import DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest

GET, ACTIVATE, DEACTIVATE = AlarmAction.GET, AlarmAction.ACTIVATE, AlarmAction.DEACTIVATE
NOSPACE, CORRUPT, NONE = AlarmType.NOSPACE, AlarmType.CORRUPT, AlarmType.NONE
PUT = PutRequest(key=b"k", value=b"v")


def applier_of(alarms: Alarms) -> Applier:
    return alarms.applier


def test_nospace_caps_writes_that_add_data_and_nothing_else() -> None:
    alarms = Alarms()
    assert alarms.apply(AlarmRequest(ACTIVATE, 7, NOSPACE)).alarms == (AlarmMember(7, NOSPACE),)
    assert alarms.applier is Applier.CAPPED
    assert alarms.refusal(PUT) is EtcdError.NO_SPACE
    assert alarms.refusal(lease.LeaseGrantRequest(TTL=60, ID=1)) is EtcdError.NO_SPACE  # type: ignore[arg-type]
    assert alarms.refusal(TxnRequest(success=(PUT,))) is EtcdError.NO_SPACE
    assert alarms.refusal(TxnRequest(failure=(RangeRequest(key=b"k"),))) is None
    assert alarms.refusal(DeleteRangeRequest(key=b"k")) is None
    assert alarms.refusal(lease.LeaseRevokeRequest(ID=1)) is None  # type: ignore[arg-type]


def test_corrupt_refuses_every_write() -> None:
    alarms = Alarms()
    alarms.apply(AlarmRequest(ACTIVATE, 7, CORRUPT))
    for request in (PUT, DeleteRangeRequest(key=b"k"), lease.LeaseRevokeRequest(ID=1)):  # type: ignore[arg-type]
        assert alarms.refusal(request) is EtcdError.CORRUPT


def test_clearing_the_last_alarm_of_a_type_restores_the_normal_applier_even_if_others_remain() -> (
    None
):
    alarms = Alarms()
    alarms.apply(AlarmRequest(ACTIVATE, 1, NOSPACE))
    alarms.apply(AlarmRequest(ACTIVATE, 2, NOSPACE))
    alarms.apply(AlarmRequest(ACTIVATE, 3, CORRUPT))
    assert alarms.applier is Applier.CORRUPT
    alarms.apply(AlarmRequest(DEACTIVATE, 1, NOSPACE))
    assert alarms.applier is Applier.CORRUPT, "one NOSPACE alarm is still active"
    alarms.apply(AlarmRequest(DEACTIVATE, 2, NOSPACE))
    assert applier_of(alarms) is Applier.NORMAL, "etcd's quirk: CORRUPT is still listed"
    assert alarms.apply(AlarmRequest(GET, 0, NONE)).alarms == (AlarmMember(3, CORRUPT),)


def test_repeated_activation_and_unknown_deactivation() -> None:
    alarms = Alarms()
    alarms.apply(AlarmRequest(ACTIVATE, 1, NOSPACE))
    assert alarms.apply(AlarmRequest(ACTIVATE, 1, NOSPACE)).alarms == (AlarmMember(1, NOSPACE),)
    assert alarms.active == (AlarmMember(1, NOSPACE),)
    assert alarms.apply(AlarmRequest(DEACTIVATE, 9, NOSPACE)).alarms == ()
    assert alarms.apply(AlarmRequest(GET, 0, CORRUPT)).alarms == ()


def test_status_text_is_gogoprotos_compact_text() -> None:
    assert AlarmMember(10276657743932975437, NOSPACE).text() == (
        "memberID:10276657743932975437 alarm:NOSPACE "
    )
    assert AlarmMember(5, NONE).text() == "memberID:5 "


def test_txn_cost_is_the_larger_branchs_puts() -> None:
    small, large = PutRequest(key=b"a", value=b"x"), PutRequest(key=b"b", value=b"y" * 100)
    assert txn_cost(TxnRequest(success=(small,), failure=(large,))) == 256 + 1 + 100
    assert txn_cost(TxnRequest(success=(TxnRequest(success=(large,)),))) == 0


def test_stored_alarms_come_back_with_their_applier() -> None:
    """etcd restoreAlarms: a restarted member takes its alarms from the backend, and any CORRUPT
    alarm selects the corrupt applier, else any NOSPACE alarm the capped one."""
    alarms = Alarms()
    alarms.apply(AlarmRequest(ACTIVATE, 1, NOSPACE))
    restored = Alarms.restored(alarms.encode())
    assert (restored.active, restored.applier) == ((AlarmMember(1, NOSPACE),), Applier.CAPPED)
    alarms.apply(AlarmRequest(ACTIVATE, 2, CORRUPT))
    assert Alarms.restored(alarms.encode()).applier is Applier.CORRUPT
    nothing = Alarms.restored(None)
    assert (nothing.active, nothing.applier) == ((), Applier.NORMAL)


def test_a_damaged_alarm_record_is_refused() -> None:
    for damaged in (b"{", b'[["x", "NOSPACE"]]', b'[[1, "FULL"]]', b"7"):
        with pytest.raises(ValueError, match="damaged alarm record"):
            Alarms.restored(damaged)


def test_the_quota_counts_what_etcd_counts() -> None:
    """etcd quota.go: size + cost < quota; a put costs 256 + key + value, a lease grant 64;
    deletes and revokes cost nothing; 0 means 2 GiB, a negative quota none."""
    quota = BackendQuota(1000)
    assert quota.available(PutRequest(key=b"k", value=b"v" * 100), 1000 - 358)
    assert not quota.available(PutRequest(key=b"k", value=b"v" * 100), 1000 - 357)
    assert not quota.available(lease.LeaseGrantRequest(TTL=60, ID=1), 1000 - 64)  # type: ignore[arg-type]
    assert quota.available(DeleteRangeRequest(key=b"k"), 10**9)
    assert quota.available(lease.LeaseRevokeRequest(ID=1), 10**9)  # type: ignore[arg-type]
    assert BackendQuota(0).limit_bytes == 2 * 1024**3
    assert BackendQuota(-1).available(PUT, 10**12)
