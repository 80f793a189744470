"""Etcd status computation (docs/compatibility.md, items E37–E46), all against a fixed ``NOW``."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from druid.controllers.etcd.status import MemberThresholds, Observed, compute_status, merge_patch, status_changed
from druid.runtime.clock import micro_time, rfc3339

NOW = dt.datetime(2026, 3, 8, 12, 0, 0, tzinfo=dt.UTC)  # a Sunday
NOW_S = "2026-03-08T12:00:00Z"
EARLIER = "2026-03-01T00:00:00Z"
NAME, NS, UID = "etcd-test", "shoot", "uid-1"
T = MemberThresholds()


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def make_etcd(replicas: int = 3, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "druid.gardener.cloud/v1alpha1",
        "kind": "Etcd",
        "metadata": {"name": NAME, "namespace": NS, "uid": UID, "generation": 2},
        "spec": {"replicas": replicas, "labels": {}, "etcd": {}, "backup": {}, **spec},
        "status": {"observedGeneration": 2} if status is None else status,
    }


def lease(holder: str | None, renewed: dt.datetime | None, name: str = "", created: str = EARLIER) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if holder is not None:
        spec["holderIdentity"] = holder
    if renewed is not None:
        spec["renewTime"] = micro_time(renewed)
    return {"metadata": {"name": name, "namespace": NS, "creationTimestamp": created}, "spec": spec}


def pod(ready: bool) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": "ContainersReady", "status": "True" if ready else "False"}]}}


def member_leases(*holders_and_ages: tuple[str, float]) -> dict[str, dict[str, Any]]:
    return {f"{NAME}-{i}": lease(h, ago(a), f"{NAME}-{i}") for i, (h, a) in enumerate(holders_and_ages)}


def ready_pods(n: int = 3) -> dict[str, dict[str, Any]]:
    return {f"{NAME}-{i}": pod(True) for i in range(n)}


def make_sts(replicas: int = 3, ready: int = 3, controlled: bool = True, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "generation": 5,
            "ownerReferences": [{"uid": UID if controlled else "other", "controller": True, "kind": "Etcd"}],
        },
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 5,
            "replicas": replicas,
            "readyReplicas": ready,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
            "currentRevision": "r1",
            "updateRevision": "r1",
            **status,
        },
    }


def observe(etcd: dict[str, Any], now: dt.datetime = NOW, **kw: Any) -> dict[str, Any]:
    kw.setdefault("statefulset", make_sts())
    kw.setdefault("pvc_warnings", {})
    return compute_status(Observed(etcd=etcd, now=now, **kw), T)


def cond(status: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((x for x in status.get("conditions", []) if x["type"] == ctype), None)


def csr(status: dict[str, Any], ctype: str) -> tuple[str, str, str] | None:
    """(status, reason, message) of a condition."""
    x = cond(status, ctype)
    return None if x is None else (x["status"], x["reason"], x["message"])


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    x = cond(status, ctype)
    assert x is not None, f"no {ctype} condition"
    return x


def cstatus(status: dict[str, Any], ctype: str) -> str | None:
    x = cond(status, ctype)
    return None if x is None else x["status"]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = apply_merge_patch(out.get(k), v)
    return out


# E37 members ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("holder", "renew_ago", "pod_state", "expected"),
    [
        ("a1:Leader", 30, "ready", ("Ready", "LeaseSucceeded", "Leader")),
        ("a1:Member", 60, "missing", ("Ready", "LeaseSucceeded", "Member")),  # not yet past 1 m
        ("a1:c1:Member", 120, "ready", ("Unknown", "LeaseExpired", "Member")),
        ("a1:c1:Leader", 120, "missing", ("NotReady", "ContainersNotReady", "Leader")),
        ("a1:Member", 120, "not-ready", ("NotReady", "ContainersNotReady", "Member")),
        ("a1:Member", 360, "ready", ("Unknown", "LeaseExpired", "Member")),  # exactly 6 m: not past it
        ("a1:Member", 420, "ready", ("NotReady", "UnknownGracePeriodExceeded", "Member")),
        ("a1:Learner", 30, "ready", ("Ready", "LeaseSucceeded", None)),  # unknown role: no role
        ("a1:Leader", None, "ready", None),  # never renewed: still bootstrapping, omitted
        (None, 30, "ready", None),
        ("a1", 30, "ready", None),
        ("a1:c1:x:Leader", 30, "ready", None),
    ],
)
def test_e37_member_ready_unknown_notready_thresholds(
    holder: str | None, renew_ago: float | None, pod_state: str, expected: tuple[str, str, str | None] | None
) -> None:
    leases = {f"{NAME}-0": lease(holder, None if renew_ago is None else ago(renew_ago), f"{NAME}-0")}
    pods = {} if pod_state == "missing" else {f"{NAME}-0": pod(pod_state == "ready")}
    status = observe(make_etcd(1), member_leases=leases, pods=pods)
    if expected is None:
        assert "members" not in status
        return
    member = {
        "name": f"{NAME}-0",
        "id": "a1",
        "status": expected[0],
        "reason": expected[1],
        "lastTransitionTime": NOW_S,
    }
    if expected[2] is not None:
        member["role"] = expected[2]
    assert status["members"] == [member]


def test_e37_members_sorted_prefixed_and_transition_kept() -> None:
    prefix = "pfx"
    leases = {
        f"{prefix}-{NAME}-{i}": lease(f"m{i}:Member", ago(age), f"{prefix}-{NAME}-{i}")
        for i, age in ((2, 10), (0, 120), (1, 120))
    }
    leases[f"{prefix}-{NAME}-9"] = lease("m9:Member", ago(1), f"{prefix}-{NAME}-9")  # beyond replicas: ignored
    old_members = [
        {"name": f"{prefix}-{NAME}-{i}", "id": f"m{i}", "status": s, "reason": r, "lastTransitionTime": EARLIER}
        for i, s, r in ((0, "Unknown", "LeaseExpired"), (1, "Ready", "LeaseSucceeded"), (5, "Ready", "LeaseSucceeded"))
    ]
    etcd = make_etcd(3, {"observedGeneration": 2, "members": old_members}, memberNamePrefix=prefix)
    # pods are named without the member prefix; pod 1 is missing
    status = observe(etcd, member_leases=leases, pods={f"{NAME}-0": pod(True), f"{NAME}-2": pod(True)})
    assert [(m["name"], m["status"], m["reason"], m["lastTransitionTime"]) for m in status["members"]] == [
        (f"{prefix}-{NAME}-0", "Unknown", "LeaseExpired", EARLIER),  # unchanged status keeps its time
        (f"{prefix}-{NAME}-1", "NotReady", "ContainersNotReady", NOW_S),
        (f"{prefix}-{NAME}-2", "Ready", "LeaseSucceeded", NOW_S),
    ]


# E38-E40 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ages", "expected"),
    [
        ((10, 10, 420), ("True", "Quorate", "The majority of ETCD members is ready")),
        ((10, 120, 420), ("True", "Quorate", "The majority of ETCD members is ready")),  # Unknown counts
        ((10, 420, 420), ("False", "QuorumLost", "The majority of ETCD members is not ready")),
        ((10,), ("True", "Quorate", "The majority of ETCD members is ready")),  # of the listed members
    ],
)
def test_e38_ready_quorate(ages: tuple[float, ...], expected: tuple[str, str, str]) -> None:
    leases = member_leases(*((f"m{i}:Member", a) for i, a in enumerate(ages)))
    assert csr(observe(make_etcd(3), member_leases=leases, pods=ready_pods()), "Ready") == expected


def test_e38_no_members_unknown() -> None:
    leases = {f"{NAME}-0": lease(None, None, f"{NAME}-0")}
    status = observe(make_etcd(3), member_leases=leases)
    no_members = ("Unknown", "NoMembersInStatus", "Cannot determine readiness since status has no members")
    assert csr(status, "Ready") == no_members
    assert csr(status, "AllMembersReady") == no_members
    assert cond(status, "Ready") == {
        "type": "Ready",
        "status": "Unknown",
        "lastTransitionTime": NOW_S,
        "lastUpdateTime": NOW_S,
        "reason": "NoMembersInStatus",
        "message": "Cannot determine readiness since status has no members",
    }
    assert "members" not in status


@pytest.mark.parametrize(
    ("ages", "expected"),
    [
        ((10, 10, 10), ("True", "AllMembersReady", "All members are ready")),
        ((10, 10), ("False", "NotAllMembersReady", "At least one member is not ready")),
        ((10, 120, 10), ("False", "NotAllMembersReady", "At least one member is not ready")),
    ],
)
def test_e39_all_members_ready(ages: tuple[float, ...], expected: tuple[str, str, str]) -> None:
    leases = member_leases(*((f"m{i}:Member", a) for i, a in enumerate(ages)))
    assert csr(observe(make_etcd(3), member_leases=leases, pods=ready_pods()), "AllMembersReady") == expected


@given(
    ages=st.lists(st.floats(min_value=0, max_value=1000), min_size=1, max_size=5),
    pod_states=st.lists(st.sampled_from(["ready", "unready", "missing"]), min_size=5, max_size=5),
)
def test_ready_never_true_without_ready_pods(ages: list[float], pod_states: list[str]) -> None:
    """Ready and AllMembersReady count a member only while its pod's containers are ready: with no Ready pod
    the Etcd is never Ready, whatever the leases say; with fewer Ready pods than a quorum, never Quorate."""
    n = len(ages)
    leases = member_leases(*((f"m{i}:Member", a) for i, a in enumerate(ages)))
    pods = {f"{NAME}-{i}": pod(state == "ready") for i, state in enumerate(pod_states[:n]) if state != "missing"}
    status = observe(make_etcd(n), member_leases=leases, pods=pods)
    ready_pods_count = sum(1 for state in pod_states[:n] if state == "ready")
    if ready_pods_count < n // 2 + 1:
        assert csr(status, "Ready")[0] == "False"
    if ready_pods_count < n:
        assert csr(status, "AllMembersReady")[0] == "False"
    if ready_pods_count == n:  # pods all ready: the leases alone decide, as upstream
        assert csr(status, "Ready") == csr(observe(make_etcd(n), member_leases=leases, pods=ready_pods(n)), "Ready")


UPDATED = ("True", "AllMembersUpdated", "All members reflect latest desired spec")
NOT_UPDATED = ("False", "NotAllMembersUpdated", "At least one member is not yet updated")
STS_NOT_FOUND = ("Unknown", "StatefulSetNotFound", f"StatefulSet {NAME} not found for etcd")


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, UPDATED),
        ({"statefulset": make_sts(observedGeneration=4)}, NOT_UPDATED),
        ({"statefulset": make_sts(updatedReplicas=2)}, NOT_UPDATED),
        ({"statefulset": make_sts(updateRevision="r2")}, NOT_UPDATED),
        ({"statefulset": None}, STS_NOT_FOUND),
        ({"statefulset": make_sts(controlled=False)}, STS_NOT_FOUND),
    ],
)
def test_e40_all_members_updated(kw: dict[str, Any], expected: tuple[str, str, str]) -> None:
    status = observe(make_etcd(3), **kw)
    assert csr(status, "AllMembersUpdated") == expected
    if expected[0] == "Unknown":  # the same StatefulSet outcome drives DataVolumesReady
        assert csr(status, "DataVolumesReady") == expected


# E41 BackupReady ------------------------------------------------------------------------------------

STORE = {"store": {"provider": "S3", "prefix": "p", "container": "c"}}


def backup_etcd(old_backup_status: str | None = None, **backup: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": 2}
    if old_backup_status is not None:
        status["conditions"] = [
            {
                "type": "BackupReady",
                "status": old_backup_status,
                "lastTransitionTime": EARLIER,
                "lastUpdateTime": EARLIER,
                "reason": "x",
                "message": "y",
            },
        ]
    return make_etcd(3, status, backup={**STORE, "deltaSnapshotPeriod": "5m", **backup})


def snap(full: dt.datetime | None, delta: dt.datetime | None, full_created: str = EARLIER) -> dict[str, Any]:
    return {
        "full": lease(None, full, f"{NAME}-full-snap", full_created),
        "delta": lease(None, delta, f"{NAME}-delta-snap"),
    }


def test_e41_backup_ready_absent_without_store_or_provider() -> None:
    stale = [
        {
            "type": "BackupReady",
            "status": "True",
            "lastTransitionTime": EARLIER,
            "lastUpdateTime": EARLIER,
            "reason": "BackupSucceeded",
            "message": "Snapshot backup succeeded",
        }
    ]
    for backup in ({}, {"store": {"prefix": "p"}}, {"store": {"provider": "", "prefix": "p"}}):
        etcd = make_etcd(3, {"observedGeneration": 2, "conditions": stale}, backup=backup)
        status = observe(etcd, snapshot_leases=snap(ago(1), ago(1)))
        assert cond(status, "BackupReady") is None
        patched = merge_patch(etcd["status"], status)["conditions"]  # lists are replaced whole: the old one goes
        assert [x["type"] for x in patched] == [x["type"] for x in status["conditions"]]


def test_e41_backup_ready_true_fresh() -> None:
    status = observe(backup_etcd(), snapshot_leases=snap(ago(3600), ago(599)))
    assert csr(status, "BackupReady") == ("True", "BackupSucceeded", "Snapshot backup succeeded")
    # delta renewed exactly 2 periods ago is no longer fresh
    status = observe(backup_etcd(), snapshot_leases=snap(ago(3600), ago(600)))
    assert csr(status, "BackupReady") == ("Unknown", "Unknown", "Cannot determine etcd backup status")
    # full lease never renewed: its creation time must be within the full snapshot interval (24 h)
    status = observe(backup_etcd(), snapshot_leases=snap(None, ago(10), full_created=rfc3339(ago(23 * 3600))))
    assert csr(status, "BackupReady") == ("True", "BackupSucceeded", "Delta snapshot backup succeeded")
    status = observe(backup_etcd(), snapshot_leases=snap(None, ago(10), full_created=rfc3339(ago(25 * 3600))))
    assert csr(status, "BackupReady") == ("Unknown", "Unknown", "Cannot determine etcd backup status")


def test_e41_backup_ready_unknown_cases() -> None:
    unknown = ("Unknown", "Unknown", "Cannot determine etcd backup status")
    assert csr(observe(backup_etcd(), snapshot_leases={}), "BackupReady") == unknown
    assert csr(observe(backup_etcd(), snapshot_leases={"full": snap(ago(1), ago(1))["full"]}), "BackupReady") == unknown
    assert csr(observe(backup_etcd(), snapshot_leases=snap(None, None)), "BackupReady") == unknown
    # full renewed, delta never: Unknown; after 5 delta periods with a specific message
    assert csr(observe(backup_etcd(), snapshot_leases=snap(ago(1500), None)), "BackupReady") == unknown
    status = observe(backup_etcd(), snapshot_leases=snap(ago(1501), None))
    assert csr(status, "BackupReady") == ("Unknown", "Unknown", "Periodic delta snapshots not started yet")


def test_e41_backup_ready_unknown_then_false_stale() -> None:
    leases = snap(ago(3600), ago(901))  # delta older than 3 x 5m
    first = observe(backup_etcd("True"), snapshot_leases=leases)
    assert csr(first, "BackupReady") == ("Unknown", "Unknown", "Cannot determine etcd backup status")
    etcd = backup_etcd()
    etcd["status"] = apply_merge_patch(etcd["status"], merge_patch(etcd["status"], first))
    second = observe(etcd, snapshot_leases=leases)
    assert csr(second, "BackupReady") == ("False", "BackupFailed", "Stale snapshot leases. Not renewed in a long time")
    assert condition(second, "BackupReady")["lastTransitionTime"] == NOW_S
    # between 2 and 3 periods stale: Unknown even after Unknown
    assert (
        cstatus(observe(backup_etcd("Unknown"), snapshot_leases=snap(ago(3600), ago(900))), "BackupReady") == "Unknown"
    )
    assert cstatus(observe(backup_etcd("False"), snapshot_leases=snap(ago(3600), ago(901))), "BackupReady") == "False"


def test_e41_backup_ready_stale_only_after_own_condition() -> None:
    # Upstream falls back to the *last* condition (here Ready=False) when BackupReady is absent.
    etcd = backup_etcd()
    etcd["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "lastTransitionTime": EARLIER,
            "lastUpdateTime": EARLIER,
            "reason": "QuorumLost",
            "message": "m",
        },
    ]
    status = observe(etcd, snapshot_leases=snap(ago(3600), ago(3600)))
    assert csr(status, "BackupReady") == ("Unknown", "Unknown", "Cannot determine etcd backup status")


def test_e41_backup_ready_default_delta_period_when_unset() -> None:
    etcd = make_etcd(3, backup=dict(STORE))  # no deltaSnapshotPeriod: backup-restore's 20s
    assert cstatus(observe(etcd, snapshot_leases=snap(ago(60), ago(39))), "BackupReady") == "True"
    assert cstatus(observe(etcd, snapshot_leases=snap(ago(60), ago(41))), "BackupReady") == "Unknown"


@pytest.mark.parametrize(
    ("schedule", "full_renewed", "fresh"),
    [
        ("0 */6 * * *", ago(5 * 3600 + 59 * 60), True),
        ("0 */6 * * *", ago(6 * 3600 + 1), False),
        # Mon and Wed at midnight; NOW is Sunday noon. The Wednesday snapshot is good until Monday.
        ("0 0 * * 1,3", dt.datetime(2026, 3, 4, 0, 5, tzinfo=dt.UTC), True),
        ("0 0 * * 1,3", dt.datetime(2026, 3, 2, 0, 5, tzinfo=dt.UTC), False),
        (None, ago(23 * 3600), True),
        (None, ago(24 * 3600 + 1), False),
    ],
)
def test_e41_backup_ready_full_snapshot_interval_from_schedule(
    schedule: str | None, full_renewed: dt.datetime, fresh: bool
) -> None:
    etcd = backup_etcd() if schedule is None else backup_etcd(fullSnapshotSchedule=schedule)
    status = observe(etcd, snapshot_leases=snap(full_renewed, ago(10)))
    assert cstatus(status, "BackupReady") == ("True" if fresh else "Unknown")


# E42-E44 --------------------------------------------------------------------------------------------


def event(message: str, last: str, count: int = 1, first: str | None = None, etype: str = "Warning") -> dict[str, Any]:
    return {
        "type": etype,
        "message": message,
        "count": count,
        "firstTimestamp": first or last,
        "lastTimestamp": last,
        "source": {"component": "persistentvolume-controller"},
    }


def test_e42_data_volumes_ready_warnings() -> None:
    pvc0, pvc1 = f"{NAME}-{NAME}-0", f"{NAME}-{NAME}-1"
    warnings = {
        pvc1: [
            event("no storage class", "2026-03-08T11:58:00Z", count=4, first="2026-03-08T11:50:00Z"),
            event("oldest", "2026-03-08T11:00:00Z"),
            event("provisioning failed", "2026-03-08T11:30:00Z"),
            event("normal event", "2026-03-08T11:59:00Z", etype="Normal"),
        ],
        pvc0: [
            {
                "type": "Warning",
                "message": "quota",
                "eventTime": "2026-03-08T11:00:00.123456Z",
                "reportingComponent": "ebs.csi",
            }
        ],
    }
    status = observe(make_etcd(3), pvc_warnings=warnings)
    assert csr(status, "DataVolumesReady") == (
        "False",
        "FoundWarningsForDataVolumes",
        f"Warning for PVC {NS}/{pvc0}: -> Events:\n* ebs.csi reported at 2026-03-08T11:00:00Z: quota; "
        f"Warning for PVC {NS}/{pvc1}: -> Events:\n"
        "* persistentvolume-controller reported at 2026-03-08T11:30:00Z: provisioning failed\n"
        "* persistentvolume-controller reported at 2026-03-08T11:58:00Z (x4 since 2026-03-08T11:50:00Z): "
        "no storage class",
    )
    only_normal = {pvc0: [event("n", EARLIER, etype="Normal")]}
    assert csr(observe(make_etcd(3), pvc_warnings=only_normal), "DataVolumesReady") == (
        "True",
        "NoWarningsFoundForDataVolumes",
        f"No warning events found for PVCs used by StatefulSet {NS}/{NAME}",
    )
    assert csr(observe(make_etcd(3), pvc_warnings=None), "DataVolumesReady") == (
        "Unknown",
        "UnableToFetchWarningEventsForDataVolumes",
        f"Unable to fetch warning events for PVCs used by StatefulSet {NS}/{NAME}",
    )


MISMATCH = ("True", "MultipleClusterIDsDetected", "Multiple cluster IDs detected among ETCD members")
NO_MISMATCH = ("False", "NoClusterIDMismatchDetected", "No cluster ID mismatch detected among ETCD members")
UNPARSEABLE = (
    "Unknown",
    "UnableToParseLeaseHolderIdentity",
    f"Unable to parse Lease {NAME}-1 holder identity: unexpected lease holder identity format: b:c1:x:Member",
)


@pytest.mark.parametrize(
    ("holders", "ages", "expected"),
    [
        (("a:c1:Leader", "b:c2:Member", "c:c1:Member"), (1, 1, 1), MISMATCH),
        (("a:c1:Leader", "b:c1:Member", "c:c1:Member"), (1, 1, 1), NO_MISMATCH),
        (("a:c1:Leader", "b:c2:Member", "c:c1:Member"), (1, 120, 1), NO_MISMATCH),  # Unknown members don't count
        (("a:c1:Leader", "b:c2:Member", "c:c1:Member"), (1, 420, 1), MISMATCH),  # NotReady ones do
        (
            ("a:Leader", "b:Member", "c:Member"),
            (1, 1, 1),
            ("Unknown", "NoClusterIDDetected", "No cluster ID could be detected from known ETCD members"),
        ),
        (("a:c1:Leader", "b:c1:x:Member", "c:c1:Member"), (1, 1, 1), UNPARSEABLE),
    ],
)
def test_e43_cluster_id_mismatch(
    holders: tuple[str, ...], ages: tuple[float, ...], expected: tuple[str, str, str]
) -> None:
    leases = member_leases(*zip(holders, ages, strict=True))
    assert csr(observe(make_etcd(3), member_leases=leases, pods=ready_pods()), "ClusterIDMismatch") == expected


def test_e43_cluster_id_mismatch_seen_while_scaling_up() -> None:
    # Members 3 and 4 have empty leases (not started yet); upstream reports Unknown/UnableToParse... here.
    leases = member_leases(("a:c1:Leader", 1), ("b:c2:Member", 1), ("c:c1:Member", 1))
    leases |= {f"{NAME}-{i}": lease(None, None, f"{NAME}-{i}") for i in (3, 4)}
    status = observe(make_etcd(5), member_leases=leases, pods=ready_pods())
    assert csr(status, "ClusterIDMismatch") == MISMATCH


def test_e44_scaled_down_not_checked() -> None:
    old = make_etcd(3)
    old["status"] = observe(
        old,
        member_leases=member_leases(("a:Leader", 1), ("b:Member", 1), ("c:Member", 1)),
        pods=ready_pods(),
        snapshot_leases={},
    )
    old["status"]["conditions"] = [x for x in old["status"]["conditions"] if x["type"] != "ClusterIDMismatch"]
    etcd = make_etcd(0, copy.deepcopy(old["status"]))
    later = NOW + dt.timedelta(minutes=5)
    status = observe(etcd, now=later, statefulset=make_sts(replicas=0, ready=0))
    later_s = rfc3339(later)
    assert "members" not in status
    assert merge_patch(etcd["status"], status)["members"] is None
    assert [(x["type"], x["status"], x["reason"], x["message"]) for x in status["conditions"]] == [
        (t, s, "NotChecked", "etcd cluster has been scaled down")
        for t, s in (
            ("AllMembersReady", "True"),
            ("AllMembersUpdated", "True"),
            ("ClusterIDMismatch", "Unknown"),
            ("DataVolumesReady", "True"),
            ("Ready", "True"),
        )
    ]
    ready = condition(status, "Ready")
    assert (ready["lastTransitionTime"], ready["lastUpdateTime"]) == (NOW_S, later_s)  # status kept, reason changed
    assert condition(status, "ClusterIDMismatch")["lastTransitionTime"] == later_s  # new condition


# E45-E46 --------------------------------------------------------------------------------------------


def test_e45_mirrors_statefulset_selector_and_sorted_conditions() -> None:
    compaction = {
        "type": "LastSnapshotCompactionSucceeded",
        "status": "False",
        "lastTransitionTime": EARLIER,
        "lastUpdateTime": EARLIER,
        "reason": "BackoffLimitExceeded",
        "message": "m",
    }
    etcd = make_etcd(3, {"observedGeneration": 2, "conditions": [compaction], "replicas": 3})
    status = observe(etcd, statefulset=make_sts(3, 3))
    assert {k: v for k, v in status.items() if k not in ("conditions", "members")} == {
        "etcd": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": NAME},
        "ready": True,
        "currentReplicas": 3,
        "readyReplicas": 3,
        "replicas": 3,
        "selector": f"app.kubernetes.io/managed-by=etcd-druid,app.kubernetes.io/part-of={NAME}",
    }
    assert [x["type"] for x in status["conditions"]] == [
        "AllMembersReady",
        "AllMembersUpdated",
        "ClusterIDMismatch",
        "DataVolumesReady",
        "LastSnapshotCompactionSucceeded",
        "Ready",
    ]
    assert cond(status, "LastSnapshotCompactionSucceeded") == compaction
    assert observe(etcd, statefulset=make_sts(3, 2))["ready"] is False
    assert observe(etcd, statefulset=make_sts(3, 3, currentRevision="r0"))["ready"] is False
    assert observe(etcd, statefulset=make_sts(3, 3, observedGeneration=4))["ready"] is False
    assert observe(etcd, statefulset=make_sts(3, 3, updatedReplicas=2))["ready"] is False
    # spec not reconciled yet (observedGeneration != generation): readiness against sts.spec.replicas
    unreconciled = make_etcd(5, {"observedGeneration": 1})
    assert observe(unreconciled, statefulset=make_sts(3, 3))["ready"] is True
    assert observe(make_etcd(5), statefulset=make_sts(3, 3))["ready"] is False
    # no (controlled) StatefulSet: nothing runs; zero counts are omitted and removed
    old = observe(etcd)
    for sts in (None, make_sts(controlled=False)):
        gone = observe(make_etcd(3, {**old, "observedGeneration": 2}), statefulset=sts)
        assert gone["ready"] is False and gone["etcd"] == old["etcd"]
        assert not {"currentReplicas", "readyReplicas", "replicas"} & gone.keys()
        patch = merge_patch(old, gone)
        assert [patch[k] for k in ("ready", "currentReplicas", "readyReplicas", "replicas")] == [
            False,
            None,
            None,
            None,
        ]


def test_e46_bootstrap_condition_and_write_once_status() -> None:
    source = [
        {"name": "src-0", "peerUrls": ["http://10.0.0.1:2380"]},
        {"name": "src-1", "peerUrls": ["http://10.0.0.2:2380"]},
    ]
    bootstrap = {"members": source, "clientEndpoints": ["http://src-client:2379"]}

    def run(ages: tuple[float, ...], status: dict[str, Any] | None = None, now: dt.datetime = NOW) -> dict[str, Any]:
        etcd = make_etcd(3, status, etcd={"bootstrapWithExistingCluster": bootstrap})
        leases = member_leases(*((f"m{i}:Member", a) for i, a in enumerate(ages)))
        return observe(etcd, now=now, member_leases=leases, pods=ready_pods())

    key = "BootstrappedWithExistingCluster"
    assert csr(run((1, 1)), key) == ("False", "BootstrapInProgress", "Not all members have joined the cluster yet")
    joining = run((1, 1, 120))
    assert csr(joining, key) == ("False", "BootstrapInProgress", "Not all members are ready")
    assert "bootstrapWithExistingCluster" not in joining
    done = run((1, 1, 1), {"observedGeneration": 2, **joining})
    assert csr(done, key) == ("True", "BootstrapSucceeded", "All members have successfully joined the existing cluster")
    assert done["bootstrapWithExistingCluster"] == {"joinedAt": NOW_S, "members": source}
    # sticky: a later outage neither regresses the condition nor rewrites the record
    later = run((420, 1), {"observedGeneration": 2, **done}, now=NOW + dt.timedelta(hours=1))
    assert csr(later, key) == csr(done, key)
    assert later["bootstrapWithExistingCluster"] == done["bootstrapWithExistingCluster"]
    assert "bootstrapWithExistingCluster" not in merge_patch(done, later)
    # not configured: no condition, no record
    assert cond(observe(make_etcd(3)), key) is None


# steady state and patches ---------------------------------------------------------------------------


def full_observation(etcd: dict[str, Any], now: dt.datetime) -> Observed:
    return Observed(
        etcd=etcd,
        statefulset=make_sts(),
        member_leases=member_leases(("a:c1:Leader", 5), ("b:c1:Member", 5), ("c:c1:Member", 5)),
        snapshot_leases=snap(ago(600), ago(5)),
        pods=ready_pods(),
        pvc_warnings={f"{NAME}-{NAME}-0": [event("slow disk", "2026-03-08T11:00:00Z", count=3, first=EARLIER)]},
        now=now,
    )


def test_steady_state_no_change() -> None:
    bootstrap = {
        "members": [{"name": "src-0", "peerUrls": ["http://10.0.0.1:2380"]}],
        "clientEndpoints": ["http://s:2379"],
    }
    etcd = make_etcd(3, backup={**STORE, "deltaSnapshotPeriod": "1m"}, etcd={"bootstrapWithExistingCluster": bootstrap})
    first = compute_status(full_observation(etcd, NOW), T)
    assert merge_patch(etcd["status"], first) == first  # everything is new
    etcd["status"] = apply_merge_patch(etcd["status"], merge_patch(etcd["status"], first))
    later = NOW + dt.timedelta(seconds=30)
    second = compute_status(full_observation(etcd, later), T)
    assert second == first
    assert merge_patch(etcd["status"], second) == {}
    assert status_changed(etcd["status"], second) is False
    # a change of message alone moves lastUpdateTime, not lastTransitionTime
    changed = dataclasses.replace(
        full_observation(etcd, later), pvc_warnings={f"{NAME}-{NAME}-0": [event("x", EARLIER)]}
    )
    third = compute_status(changed, T)
    dv = cond(third, "DataVolumesReady")
    assert dv is not None and (dv["lastTransitionTime"], dv["lastUpdateTime"]) == (NOW_S, rfc3339(later))
    assert list(merge_patch(etcd["status"], third)) == ["conditions"]


def test_merge_patch_minimal_and_removals() -> None:
    ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "x"}
    old = {"observedGeneration": 2, "members": [{"name": "a"}], "ready": True, "etcd": ref, "selector": "s"}
    old["lastOperation"] = {"type": "Reconcile"}
    new = {"ready": True, "etcd": {"kind": "StatefulSet", "name": "y"}, "selector": "s"}
    assert merge_patch(old, new) == {"members": None, "etcd": {"apiVersion": None, "name": "y"}}
    assert status_changed(old, new) is True
    assert merge_patch(None, {"ready": False}) == {"ready": False}
    untouched = {"observedGeneration": 2, "lastOperation": {"type": "Reconcile"}}
    assert apply_merge_patch(old, merge_patch(old, new)) == {**untouched, **new}
