"""The compaction Job builder (G49) and the pure parts of the compaction controller: job outcome and failure-reason
mapping on real Job/Pod status shapes (G50), the condition and its messages (G50/G51), the event filter, and the
metric families (G53). Expected values follow upstream ``internal/controller/compaction``."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from druid.api.etcd import Etcd
from druid.components.base import BuildOptions
from druid.config.images import Images
from druid.config.operator import CompactionControllerConfiguration
from druid.controllers.compaction import job, outcome, predicates, status
from druid.controllers.compaction.metrics import DURATION_BUCKETS, compaction_metrics
from druid.controllers.compaction.reconciler import CompactionReconciler, Deps, thresholds
from druid.controllers.compaction.status import ETCDS
from druid.gocompat.strconv import parse_int64
from druid.runtime.client import ApiError
from druid.runtime.objects import JOBS, LEASES, Obj, ObjectKey
from druid.testing.fakekube import FakeKube

OPTS = BuildOptions(images=Images(etcd_wrapper="wrapper:1", etcd_backup_restore="br:1", alpine="alpine:1"))
CONFIG = CompactionControllerConfiguration(enabled=True, active_deadline_duration=10800.0)
NAME, NS, UID = "etcd-main", "shoot--dev", "0b5a2f8e-7f7e-4c1e-9a59-0a2d2d0c4e11"
LABELS = {
    "app.kubernetes.io/managed-by": "etcd-druid",
    "app.kubernetes.io/part-of": NAME,
    "app.kubernetes.io/name": f"{NAME}-compactor",
    "app.kubernetes.io/component": "etcd-snapshot-compaction-job",
    "networking.gardener.cloud/to-dns": "allowed",
    "networking.gardener.cloud/to-private-networks": "allowed",
    "networking.gardener.cloud/to-public-networks": "allowed",
}
POD_ENV = [
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
]
WORKSPACE = {"name": "etcd-workspace-dir", "emptyDir": {}}
WORKSPACE_MOUNT = {"name": "etcd-workspace-dir", "mountPath": "/var/etcd/data"}
HEAD_ARGS = [
    "compact",
    "--data-dir=/var/etcd/data/compaction.etcd",
    "--restoration-temp-snapshots-dir=/var/etcd/data/compaction.restoration.temp",
    "--snapstore-temp-directory=/var/etcd/data/tmp",
    "--metrics-scrape-wait-duration=0s",
    "--enable-snapshot-lease-renewal=true",
    f"--full-snapshot-lease-name={NAME}-full-snap",
    f"--delta-snapshot-lease-name={NAME}-delta-snap",
]


def make_etcd(store: dict[str, Any] | None = None, *, backup: dict[str, Any] | None = None, **spec: Any) -> Etcd:
    body: dict[str, Any] = {
        "replicas": 3,
        "labels": {"role": "main"},
        "etcd": {},
        "backup": copy.deepcopy(backup or {}),
    }
    if store is not None:
        body["backup"]["store"] = store
    body.update(copy.deepcopy(spec))
    return Etcd.model_validate({"metadata": {"name": NAME, "namespace": NS, "uid": UID}, "spec": body})


def s3(**extra: Any) -> dict[str, Any]:
    return {
        "provider": "aws",
        "container": "backups",
        "prefix": f"{NS}/{NAME}",
        "secretRef": {"name": "creds"},
        **extra,
    }


def container(j: Obj) -> dict[str, Any]:
    (only,) = j["spec"]["template"]["spec"]["containers"]
    return dict(only)


# ------------------------------------------------------------------------------------------------ G49 builder


def test_g49_job_spec() -> None:
    etcd = make_etcd(s3(), annotations={"a": "1", "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"})
    assert job.build(etcd, OPTS, CONFIG) == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{NAME}-compactor",
            "namespace": NS,
            "labels": LABELS,
            "ownerReferences": [
                {
                    "apiVersion": "druid.gardener.cloud/v1alpha1",
                    "kind": "Etcd",
                    "name": NAME,
                    "uid": UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "activeDeadlineSeconds": 10800,
            "completions": 1,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": LABELS, "annotations": {"a": "1"}},
                "spec": {
                    "activeDeadlineSeconds": 10800,
                    "terminationGracePeriodSeconds": 60,
                    "serviceAccountName": NAME,
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "compact-backup",
                            "image": "br:1",
                            "imagePullPolicy": "IfNotPresent",
                            "args": [
                                *HEAD_ARGS,
                                "--embedded-etcd-quota-bytes=8589934592",
                                "--storage-provider=S3",
                                f"--store-prefix={NS}/{NAME}",
                                "--store-container=backups",
                            ],
                            "resources": {"requests": {"cpu": "600m", "memory": "3Gi"}},
                            "securityContext": {"allowPrivilegeEscalation": False},
                            "volumeMounts": [
                                WORKSPACE_MOUNT,
                                {"name": "etcd-backup-secret", "mountPath": "/var/etcd-backup"},
                            ],
                            "env": [
                                *POD_ENV,
                                {"name": "STORAGE_CONTAINER", "value": "backups"},
                                {"name": "AWS_APPLICATION_CREDENTIALS", "value": "/var/etcd-backup"},
                            ],
                        }
                    ],
                    "volumes": [WORKSPACE, {"name": "etcd-backup-secret", "secret": {"secretName": "creds"}}],
                },
            },
        },
    }


SECRET_PROVIDERS = [
    ("aws", "S3", "AWS_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("stackit", "S3", "AWS_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("azure", "ABS", "AZURE_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("gcp", "GCS", "GOOGLE_APPLICATION_CREDENTIALS", "/var/.gcp/serviceaccount.json", "/var/.gcp/"),
    ("openstack", "Swift", "OPENSTACK_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("alicloud", "OSS", "ALICLOUD_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("openshift", "OCS", "OPENSHIFT_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
]


@pytest.mark.parametrize(("infra", "provider", "env_name", "env_value", "mount"), SECRET_PROVIDERS)
def test_g49_job_spec_secret_providers(infra: str, provider: str, env_name: str, env_value: str, mount: str) -> None:
    j = job.build(make_etcd(s3(provider=infra)), OPTS, CONFIG)
    c = container(j)
    assert f"--storage-provider={provider}" in c["args"]
    assert c["volumeMounts"] == [WORKSPACE_MOUNT, {"name": "etcd-backup-secret", "mountPath": mount}]
    assert c["env"][-1] == {"name": env_name, "value": env_value}
    assert j["spec"]["template"]["spec"]["volumes"][1] == {
        "name": "etcd-backup-secret",
        "secret": {"secretName": "creds"},
    }
    with pytest.raises(job.JobSpecError, match=f"could not configure secretRef for backup store {provider}"):
        job.build(make_etcd(s3(provider=infra, secretRef=None)), OPTS, CONFIG)


def test_g49_job_spec_ecs_reads_credentials_from_the_secret() -> None:
    c = container(job.build(make_etcd(s3(provider="dell")), OPTS, CONFIG))
    assert c["volumeMounts"] == [WORKSPACE_MOUNT]
    assert c["env"][3:] == [
        {"name": n, "valueFrom": {"secretKeyRef": {"name": "creds", "key": k, "optional": False}}}
        for n, k in (("ECS_ENDPOINT", "endpoint"), ("ECS_ACCESS_KEY_ID", "accessKeyID"),
                     ("ECS_SECRET_ACCESS_KEY", "secretAccessKey"))
    ]  # fmt: skip
    with pytest.raises(job.JobSpecError, match="no secretRef could be configured for backup store of ECS"):
        job.build(make_etcd(s3(provider="ECS", secretRef=None)), OPTS, CONFIG)


def test_g49_job_spec_local_store() -> None:
    local = {"provider": "Local", "container": "bucket", "prefix": "p"}
    j = job.build(make_etcd(local), OPTS, CONFIG)
    c = container(j)
    assert c["volumeMounts"] == [WORKSPACE_MOUNT, {"name": "host-storage", "mountPath": "/home/nonroot/bucket"}]
    assert c["env"] == [*POD_ENV, {"name": "STORAGE_CONTAINER", "value": "bucket"}]
    host = {"path": "/etc/gardener/local-backupbuckets/bucket", "type": "DirectoryOrCreate"}
    assert j["spec"]["template"]["spec"]["volumes"] == [WORKSPACE, {"name": "host-storage", "hostPath": host}]
    # host path from the store secret; runAsRoot moves the mount under /root; no container
    j = job.build(make_etcd({"provider": "local", "prefix": "p"}, runAsRoot=True), OPTS, CONFIG, host_path="/data")
    c = container(j)
    assert c["volumeMounts"][1] == {"name": "host-storage", "mountPath": "/root"}
    assert j["spec"]["template"]["spec"]["volumes"][1]["hostPath"]["path"] == "/data/"
    assert c["env"][2] == {"name": "STORAGE_CONTAINER"}
    assert not any(a.startswith("--store-container") for a in c["args"])


def test_g49_job_spec_rejects_unknown_provider() -> None:
    with pytest.raises(job.JobSpecError, match="storage provider is not recognized"):
        job.build(make_etcd(s3(provider="floppy")), OPTS, CONFIG)
    with pytest.raises(job.JobSpecError):
        job.build(make_etcd({"prefix": "p"}), OPTS, CONFIG)


def test_g49_job_args_optional_flags_and_durations() -> None:
    etcd = make_etcd(
        s3(endpointOverride="https://s3.local:9000"),
        etcd={"quota": "2Gi", "etcdDefragTimeout": "300s"},
        backup={"etcdSnapshotTimeout": "90m", "image": "custom-br:2"},
    )
    cfg = CompactionControllerConfiguration(
        enabled=True, active_deadline_duration=90.7, metrics_scrape_wait_duration=90
    )
    j = job.build(etcd, OPTS, cfg)
    c = container(j)
    assert c["image"] == "custom-br:2"
    assert c["args"] == [
        *HEAD_ARGS[:4],
        "--metrics-scrape-wait-duration=1m30s",
        *HEAD_ARGS[5:],
        "--embedded-etcd-quota-bytes=2147483648",
        "--etcd-defrag-timeout=5m0s",
        "--etcd-snapshot-timeout=1h30m0s",
        "--storage-provider=S3",
        f"--store-prefix={NS}/{NAME}",
        "--store-container=backups",
        "--store-endpoint-override=https://s3.local:9000",
    ]
    assert j["spec"]["activeDeadlineSeconds"] == 90 == j["spec"]["template"]["spec"]["activeDeadlineSeconds"]


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (None, {"cpu": "600m", "memory": "3Gi"}),
        ({}, {"cpu": "600m", "memory": "3Gi"}),
        ({"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "4"}}, {"cpu": "2", "memory": "8Gi"}),
        ({"requests": {"cpu": "0", "memory": "1Gi"}}, {"cpu": "600m", "memory": "1Gi"}),
        ({"requests": {"memory": "0Mi"}}, {"cpu": "600m", "memory": "3Gi"}),
    ],
)
def test_g49_job_requests_defaults_and_overrides(resources: dict[str, Any] | None, expected: dict[str, str]) -> None:
    compaction = {} if resources is None else {"resources": resources}
    c = container(job.build(make_etcd(s3(), backup={"snapshotCompaction": compaction}), OPTS, CONFIG))
    assert c["resources"] == {"requests": expected}  # requests only, never limits


def test_g49_labels_and_annotations_minus_safe_to_evict() -> None:
    evict = "cluster-autoscaler.kubernetes.io/safe-to-evict"
    j = job.build(make_etcd(s3()), OPTS, CONFIG)
    assert j["metadata"]["labels"] == LABELS == j["spec"]["template"]["metadata"]["labels"]
    assert "annotations" not in j["spec"]["template"]["metadata"]
    for given, kept in (({evict: "false"}, {}), ({evict: "true", "x": "y"}, {evict: "true", "x": "y"})):
        assert job.pod_annotations(make_etcd(s3(), annotations=given)) == kept


def test_g49_thresholds_per_etcd_override() -> None:
    cfg = CompactionControllerConfiguration(enabled=True)
    assert thresholds(make_etcd(s3()), cfg) == (1_000_000, 3_000_000)
    etcd = make_etcd(s3(), backup={"snapshotCompaction": {"eventsThreshold": 10}})
    assert thresholds(etcd, cfg) == (10, 3_000_000)
    etcd = make_etcd(s3(), backup={"snapshotCompaction": {"eventsThreshold": 10, "triggerFullSnapshotThreshold": 20}})
    assert thresholds(etcd, cfg) == (10, 20)


def test_g49_revisions_parse_like_go_parseint() -> None:
    assert [parse_int64(v) for v in ("42", "+7", "-3", "9223372036854775807")] == [42, 7, -3, 2**63 - 1]
    for bad in (None, "", " 1", "1_000", "0x10", "9223372036854775808", "1.0", 5):
        assert parse_int64(bad) is None


# ------------------------------------------------------------------------------------------------ G50 outcome

START = "2026-03-01T10:00:00Z"
T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)


def finished_job(*conds: tuple[str, str], start: str | None = START, **status: Any) -> Obj:
    """A Job as the job controller leaves it (k8s ≥ 1.31: interim and terminal conditions)."""
    conditions = [
        {"type": t, "status": "True", "reason": r, "message": "", "lastProbeTime": START, "lastTransitionTime": START}
        for t, r in conds
    ]
    body: dict[str, Any] = {"active": 0, "ready": 0, "terminating": 0, "conditions": conditions, **status}
    if start is not None:
        body["startTime"] = start
    return {
        "metadata": {
            "name": f"{NAME}-compactor",
            "namespace": NS,
            "uid": "j1",
            "ownerReferences": [{"kind": "Etcd", "name": NAME, "uid": UID, "controller": True}],
        },
        "spec": {"activeDeadlineSeconds": 10800, "backoffLimit": 0, "completions": 1},
        "status": body,
    }


def failed_pod(conditions: list[dict[str, Any]] | None = None, terminated: bool = False) -> Obj:
    state = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-03-01T10:05:00Z"}}
    return {
        "metadata": {"name": "p", "labels": {"batch.kubernetes.io/job-name": f"{NAME}-compactor"}},
        "status": {
            "phase": "Failed",
            "conditions": conditions or [],
            "containerStatuses": [{"name": "compact-backup", "state": state if terminated else {"waiting": {}}}],
        },
    }


def test_g50_success_outcome_condition_and_duration() -> None:
    j = finished_job(("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached"),
                     succeeded=1, completionTime="2026-03-01T10:02:30Z")  # fmt: skip
    result = outcome.outcome(j, None, T0)
    assert result == outcome.Outcome(True, "CompletionsReached", "None", "none", 150.0)
    assert status.job_condition(j, result) == {
        "type": "LastSnapshotCompactionSucceeded",
        "status": "True",
        "reason": "None",
        "message": f"Compaction job {NS}/{NAME}-compactor completed with state CompletionsReached",
    }


def test_g50_success_before_completion_time_uses_the_interim_condition() -> None:
    j = finished_job(("SuccessCriteriaMet", "CompletionsReached"), succeeded=1)
    j["status"]["conditions"][0]["lastTransitionTime"] = "2026-03-01T10:01:00Z"
    assert outcome.outcome(j, None, T0).duration == 60.0


def test_g50_deadline_exceeded_outcome() -> None:
    j = finished_job(("FailureTarget", "DeadlineExceeded"), ("Failed", "DeadlineExceeded"), failed=1)
    result = outcome.outcome(j, None, T0)
    assert result == outcome.Outcome(False, "DeadlineExceeded", "DeadlineExceeded", "deadlineExceeded", 10800.0)
    assert not outcome.needs_pod(j)
    cond = status.job_condition(j, result)
    assert (cond["status"], cond["reason"]) == ("False", "DeadlineExceeded")
    assert cond["message"] == (
        f"Compaction job {NS}/{NAME}-compactor completed with state DeadlineExceeded, Compaction will be retried"
    )


DISRUPTED = "2026-03-01T10:01:00Z"


@pytest.mark.parametrize(
    ("pod", "reason", "metric", "seconds"),
    [
        (failed_pod([{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                      "lastTransitionTime": DISRUPTED}]), "PreemptionByScheduler", "preempted", 60.0),
        (failed_pod([{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                      "lastTransitionTime": DISRUPTED}], terminated=True), "EvictionByEvictionAPI", "evicted", 60.0),
        (failed_pod([{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                      "lastTransitionTime": DISRUPTED}]), "DeletionByTaintManager", "evicted", 60.0),
        (failed_pod([{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                      "lastTransitionTime": DISRUPTED}]), "TerminationByKubelet", "evicted", 60.0),
        (failed_pod([{"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                      "lastTransitionTime": DISRUPTED}]), "DeletionByPodGC", "unknown", 60.0),
        (failed_pod([{"type": "DisruptionTarget", "status": "False", "reason": "PreemptionByScheduler"}],
                    terminated=True), "ProcessFailure", "processFailure", 300.0),
        (failed_pod(), "Unknown", "unknown", 900.0),
        (None, "Unknown", "unknown", 900.0),
    ],
)  # fmt: skip
def test_g50_backoff_limit_exceeded_failure_reason_from_pod(
    pod: Obj | None, reason: str, metric: str, seconds: float
) -> None:
    j = finished_job(("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded"), failed=1)
    assert outcome.needs_pod(j)
    now = T0 + dt.timedelta(minutes=15)
    assert outcome.outcome(j, pod, now) == outcome.Outcome(False, "BackoffLimitExceeded", reason, metric, seconds)


def test_g50_other_failures_and_unfinished_jobs() -> None:
    j = finished_job(("Failed", "PodFailurePolicy"), failed=1)
    assert outcome.outcome(j, None, T0 + dt.timedelta(seconds=5)) == outcome.Outcome(
        False, "PodFailurePolicy", "Unknown", "unknown", 5.0
    )
    assert outcome.outcome(finished_job(("Failed", "X"), start=None), None, T0).duration is None
    # no finishing condition yet (pod not created, or the job controller still counting): not finished
    fresh = finished_job()
    assert outcome.finished(fresh) is None and outcome.active(fresh) == 0
    assert outcome.finished(finished_job(("Suspended", "JobSuspended"))) is None
    # upstream: no condition counts as a failure with an empty reason
    assert outcome.outcome(fresh, None, T0).reason == "Unknown"


def test_g50_condition_transition_time_moves_only_on_change() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "r", "message": "m", "lastTransitionTime": "a",
             "lastUpdateTime": "a"}  # fmt: skip
    cond = status.full_snapshot_condition(NS, NAME, None)
    first = status.with_condition([ready], cond, "t1")
    assert first == [ready, {**cond, "lastTransitionTime": "t1", "lastUpdateTime": "t1"}]
    same = status.with_condition(first, cond, "t2")
    assert same[1]["lastTransitionTime"] == "t1" and same[1]["lastUpdateTime"] == "t2"
    failed = status.full_snapshot_condition(NS, NAME, "boom")
    moved = status.with_condition(same, failed, "t3")
    assert moved[1]["lastTransitionTime"] == "t3" and moved[0] == ready


def test_g51_full_snapshot_conditions_and_retrigger() -> None:
    ok = status.full_snapshot_condition(NS, NAME, None)
    assert (ok["status"], ok["reason"]) == ("True", "FullSnapshotTakenSuccessfully")
    assert ok["message"] == f"Full snapshot taken successfully for etcd {NS}/{NAME}"
    bad = status.full_snapshot_condition(NS, NAME, "error while triggering full snapshot: x")
    assert (bad["status"], bad["reason"]) == ("False", "ErrorTriggeringFullSnapshot")
    assert bad["message"] == (
        f"Error while triggering full snapshot for etcd {NS}/{NAME}: error while triggering full snapshot: x "
        ",Compaction will be retried"
    )

    def etcd_with(status_: str, reason: str) -> Obj:
        return {"status": {"conditions": [{"type": "LastSnapshotCompactionSucceeded", "status": status_,
                                           "reason": reason}]}}  # fmt: skip

    assert status.full_snapshot_required(etcd_with("False", "DeadlineExceeded"))
    assert status.full_snapshot_required(etcd_with("False", "ErrorTriggeringFullSnapshot"))
    assert not status.full_snapshot_required(etcd_with("False", "ProcessFailure"))
    assert not status.full_snapshot_required(etcd_with("True", "None"))
    assert not status.full_snapshot_required({})


# ------------------------------------------------------------------------------------------------ event filter


def lease(name: str, holder: str | None) -> Obj:
    return {"metadata": {"name": name}, "spec": {} if holder is None else {"holderIdentity": holder}}


def compaction_job(owner: str, name: str | None = None, **st: Any) -> Obj:
    ref = {"apiVersion": "druid.gardener.cloud/v1alpha1", "kind": "Etcd", "name": owner, "controller": True}
    return {"metadata": {"name": name or f"{owner}-compactor", "ownerReferences": [ref]}, "status": st}


def test_event_filter_matches_upstream_predicates() -> None:
    p = predicates
    assert p.passes_create(LEASES, lease("e-full-snap", None))
    assert p.passes_create(LEASES, lease("e-delta-snap", "1"))
    assert not p.passes_create(LEASES, lease("e-0", None))
    assert p.passes_update(LEASES, lease("e-delta-snap", "1"), lease("e-delta-snap", "2"))
    assert p.passes_update(LEASES, lease("e-delta-snap", None), lease("e-delta-snap", "2"))
    assert not p.passes_update(LEASES, lease("e-delta-snap", "2"), lease("e-delta-snap", "2"))
    assert not p.passes_update(LEASES, lease("e-0", "a"), lease("e-0", "b"))
    assert not p.passes_create(JOBS, compaction_job("e"))
    assert p.passes_update(JOBS, compaction_job("e", active=1), compaction_job("e", succeeded=1))
    assert p.passes_update(JOBS, compaction_job("e", active=1, ready=1), compaction_job("e", ready=0))
    assert not p.passes_update(JOBS, compaction_job("e", active=1), compaction_job("e", active=2))  # still running
    assert not p.passes_update(JOBS, compaction_job("e"), compaction_job("e"))  # nothing changed
    assert p.passes_update(JOBS, compaction_job("e", ready=None), compaction_job("e", ready=0))  # nil → 0 counts
    assert not p.passes_update(JOBS, compaction_job("e", active=1), compaction_job("e", "other", succeeded=1))


def test_event_filter_etcd_events_only_when_the_job_must_go() -> None:
    def etcd(store: bool = True, deleting: bool = False) -> Obj:
        meta: dict[str, Any] = {"name": "e", **({"deletionTimestamp": START} if deleting else {})}
        return {"metadata": meta, "spec": {"backup": {"store": {"prefix": "p"}} if store else {}}}

    assert not predicates.passes_create(ETCDS, etcd())
    assert predicates.passes_create(ETCDS, etcd(store=False))
    assert predicates.passes_create(ETCDS, etcd(deleting=True))
    assert not predicates.passes_update(ETCDS, etcd(), etcd())
    assert predicates.passes_update(ETCDS, etcd(), etcd(store=False))
    assert not predicates.passes_update(ETCDS, etcd(store=False), etcd(store=False))
    assert predicates.passes_update(ETCDS, etcd(), etcd(deleting=True))
    assert not predicates.passes_update(ETCDS, etcd(deleting=True), etcd(deleting=True))


# ------------------------------------------------------------------------------------------------ G53 metrics


def test_g53_metric_families_labels_and_buckets() -> None:
    registry = CollectorRegistry()
    m = compaction_metrics(registry)
    assert compaction_metrics(registry) is m
    assert DURATION_BUCKETS == (60, 300, 600, 900, 1200, 1800)
    ok = outcome.Outcome(True, "CompletionsReached", "None", "none", 150.0)
    m.job_finished(NS, ok)
    m.job_finished(NS, outcome.Outcome(False, "BackoffLimitExceeded", "Unknown", "unknown", -1.0))  # not observed
    m.full_snapshot_triggered(NS, True)
    m.jobs_current.labels(NS).set(1)
    m.num_delta_events.labels(NS).set(42)
    get = registry.get_sample_value
    assert (
        get("etcddruid_compaction_jobs_total", {"succeeded": "true", "failureReason": "none", "etcd_namespace": NS})
        == 1
    )
    assert (
        get("etcddruid_compaction_jobs_total", {"succeeded": "false", "failureReason": "unknown", "etcd_namespace": NS})
        == 1
    )
    labels = {"succeeded": "true", "failureReason": "none", "etcd_namespace": NS}
    assert get("etcddruid_compaction_job_duration_seconds_bucket", {**labels, "le": "300.0"}) == 1
    assert get("etcddruid_compaction_job_duration_seconds_bucket", {**labels, "le": "60.0"}) == 0
    failed = {"succeeded": "false", "failureReason": "unknown", "etcd_namespace": NS}
    assert get("etcddruid_compaction_job_duration_seconds_count", failed) is None
    assert get("etcddruid_compaction_full_snapshot_triggered_total", {"succeeded": "true", "etcd_namespace": NS}) == 1
    assert get("etcddruid_compaction_jobs_current", {"etcd_namespace": NS}) == 1
    assert get("etcddruid_compaction_num_delta_events", {"etcd_namespace": NS}) == 42


# ------------------------------------------------------------------------------------------------ reconcile decisions


def reconciler(etcd: Obj, leases: dict[str, str | None], job_obj: Obj | None = None) -> tuple[Any, Any, Any]:
    from druid.controllers.compaction.reconciler import CompactionReconciler, Deps

    def store(objs: dict[str, Obj]) -> Any:
        class S:
            def get(self, key: ObjectKey) -> Obj | None:
                return objs.get(key.name)

        return S()

    lease_objs = {n: lease(n, h) for n, h in leases.items()}
    jobs_objs = {} if job_obj is None else {f"{NAME}-compactor": job_obj}
    kube = FakeKube()  # the decisions below must not need the API server: tests check kube.requests == []
    registry = CollectorRegistry()
    deps = Deps(
        kube=kube,
        config=CompactionControllerConfiguration(enabled=True, events_threshold=100),
        build_options=OPTS,
        jobs=store(jobs_objs),
        leases=store(lease_objs),
        metrics=compaction_metrics(registry),
    )
    return CompactionReconciler(deps), kube, registry


def etcd_obj(**backup: Any) -> Obj:
    store_ = {"provider": "Local", "container": "bucket", "prefix": "p", **backup.pop("store", {})}
    spec = {"replicas": 1, "labels": {}, "etcd": {}, "backup": {"store": store_, **backup}}
    return {"apiVersion": "druid.gardener.cloud/v1alpha1", "kind": "Etcd",
            "metadata": {"name": NAME, "namespace": NS, "uid": UID}, "spec": spec}  # fmt: skip


async def test_g50_reconcile_decisions_without_api_calls() -> None:
    from druid.runtime.objects import ObjectKey
    from druid.runtime.reconcile import Action, TerminalError

    key = ObjectKey(NS, NAME)
    full, delta = f"{NAME}-full-snap", f"{NAME}-delta-snap"
    # a job neither active nor finished (no pod yet): looked at again with backoff, not judged
    r, kube, _ = reconciler(etcd_obj(), {}, finished_job())
    assert await r.reconcile(key, etcd_obj()) == Action.retry() and kube.requests == []
    # a job being deleted: wait
    deleting = finished_job(("Complete", "CompletionsReached"))
    deleting["metadata"]["deletionTimestamp"] = START
    r, kube, _ = reconciler(etcd_obj(), {}, deleting)
    assert await r.reconcile(key, etcd_obj()) == Action.requeue(10.0) and kube.requests == []
    # a finished job of that name the Etcd does not control is someone else's: never judged nor deleted
    foreign = finished_job(("Complete", "CompletionsReached"))
    del foreign["metadata"]["ownerReferences"]
    r, kube, _ = reconciler(etcd_obj(), {}, foreign)
    assert await r.reconcile(key, etcd_obj()) == Action.done() and kube.requests == []
    deleted = etcd_obj()
    deleted["metadata"]["deletionTimestamp"] = START
    r, kube, _ = reconciler(deleted, {}, foreign)
    assert await r.reconcile(key, deleted) == Action.done() and kube.requests == []
    # a running job: jobs_current 1
    r, kube, registry = reconciler(etcd_obj(), {}, finished_job(active=1))
    assert await r.reconcile(key, etcd_obj()) == Action.done() and kube.requests == []
    assert registry.get_sample_value("etcddruid_compaction_jobs_current", {"etcd_namespace": NS}) == 1
    # revisions not there yet: nothing to do until the next lease change
    cases: list[dict[str, str | None]] = [{}, {full: "1", delta: None}, {full: "x", delta: "5"}]
    for leases in cases:
        r, kube, _ = reconciler(etcd_obj(), leases)
        assert await r.reconcile(key, etcd_obj()) == Action.done() and kube.requests == []
    # below the events threshold: only the gauge
    r, kube, registry = reconciler(etcd_obj(), {full: "100", delta: "150"})
    assert await r.reconcile(key, etcd_obj()) == Action.done() and kube.requests == []
    assert registry.get_sample_value("etcddruid_compaction_num_delta_events", {"etcd_namespace": NS}) == 50
    # a spec that cannot give a job: terminal, no API call
    bad = etcd_obj(store={"provider": "floppy"})
    r, kube, _ = reconciler(bad, {full: "0", delta: "150"})
    with pytest.raises(TerminalError, match=f"error while creating compaction job in {NS} for {NAME} : "):
        await r.reconcile(key, bad)
    assert kube.requests == []


async def test_g50_a_finished_job_is_counted_once_when_its_deletion_must_be_retried() -> None:
    """Under load the Job's DELETE can time out after the outcome was written and counted; the retried reconcile
    deletes the job again without writing or counting its outcome a second time."""
    kube = FakeKube()
    etcd = make_etcd(s3()).to_dict()
    kube.add(ETCDS, etcd)
    failed = finished_job(("FailureTarget", "DeadlineExceeded"), ("Failed", "DeadlineExceeded"), failed=1)
    kube.add(JOBS, failed)

    class Jobs:
        def get(self, key: ObjectKey) -> Obj | None:
            return kube.object(JOBS, key.name, key.namespace)

    registry = CollectorRegistry()
    deps = Deps(kube, CONFIG, OPTS, Jobs(), None, compaction_metrics(registry), now=lambda: T0)
    reconciler = CompactionReconciler(deps)
    kube.fail(ApiError(504, "Timeout", "the server was unable to return a response in time"), method="DELETE")
    key = ObjectKey(NS, NAME)
    with pytest.raises(ApiError):
        await reconciler.reconcile(key, kube.object(ETCDS, NAME, NS))
    labels = {"succeeded": "false", "failureReason": "deadlineExceeded", "etcd_namespace": NS}
    assert registry.get_sample_value("etcddruid_compaction_jobs_total", labels) == 1
    status_writes = len(kube.writes("PATCH"))
    await reconciler.reconcile(key, kube.object(ETCDS, NAME, NS))
    assert kube.object(JOBS, f"{NAME}-compactor", NS) is None, "deleted on the second pass"
    assert registry.get_sample_value("etcddruid_compaction_jobs_total", labels) == 1, "counted once"
    assert len(kube.writes("PATCH")) == status_writes, "the condition is not written again"
