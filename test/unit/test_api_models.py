"""druid.api models: wire round-trips of full objects, strictness, helpers and operator defaults."""

from __future__ import annotations

import copy
import types
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel, ValidationError

from druid.api import constants as c
from druid.api import defaults as d
from druid.api import names
from druid.api.common import ObjectMeta, format_time, parse_time
from druid.api.copybackupstask import EtcdCopyBackupsTask
from druid.api.etcd import Etcd
from druid.api.opstask import EtcdOpsTask, EtcdOpsTaskConfig, EtcdOpsTaskSpec, OnDemandSnapshotConfig
from druid.api.store import storage_provider

TLS = {
    "tlsCASecretRef": {"name": "ca-etcd", "namespace": "garden", "dataKey": "bundle.crt"},
    "serverTLSSecretRef": {"name": "etcd-server", "namespace": "garden"},
    "clientTLSSecretRef": {"name": "etcd-client", "namespace": "garden"},
}
RESOURCES = {"limits": {"cpu": "2", "memory": "4Gi"}, "requests": {"cpu": "500m", "memory": 1073741824}}
STORE = {
    "container": "shoot--dev--backups",
    "endpointOverride": "https://s3.local.example:4566",
    "prefix": "shoot--dev--main/etcd-main",
    "provider": "aws",
    "secretRef": {"name": "etcd-backup", "namespace": "shoot--dev"},
}
T0 = "2025-03-01T10:00:00Z"

ETCD: dict[str, Any] = {
    "apiVersion": "druid.gardener.cloud/v1alpha1",
    "kind": "Etcd",
    "metadata": {
        "name": "etcd-main",
        "namespace": "shoot--dev",
        "uid": "0b5a2f8e-7f7e-4c1e-9a59-0a2d2d0c4e11",
        "resourceVersion": "4711",
        "generation": 4,
        "creationTimestamp": T0,
        "labels": {"role": "main"},
        "annotations": {"druid.gardener.cloud/operation": "reconcile"},
        "finalizers": ["druid.gardener.cloud/etcd-druid"],
        "managedFields": [{"manager": "kubectl", "operation": "Update"}],
    },
    "spec": {
        "memberNamePrefix": "pfx",
        "selector": {"matchLabels": {"app": "etcd-statefulset"}},
        "labels": {"app": "etcd-statefulset", "role": "main"},
        "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        "etcd": {
            "quota": "8Gi",
            "snapshotCount": 75000,
            "enableGRPCGateway": True,
            "defragmentationSchedule": "0 */24 * * *",
            "serverPort": 2390,
            "clientPort": 2389,
            "wrapperPort": 9096,
            "image": "registry.example/etcd-wrapper:v0.4.0",
            "authSecretRef": {"name": "etcd-auth", "namespace": "shoot--dev"},
            "metrics": "extensive",
            "resources": RESOURCES,
            "clientUrlTls": TLS,
            "additionalAdvertisePeerURLs": [
                {"memberName": "pfx-etcd-main-0", "urls": ["https://10.0.0.1:2380", "https://lb.example:2380"]}
            ],
            "peerUrlTls": {**TLS, "skipClientSANVerification": True},
            "etcdDefragTimeout": "480s",
            "heartbeatDuration": "1m30s",
            "clientService": {
                "annotations": {"service.beta.kubernetes.io/topology": "auto"},
                "labels": {"team": "storage"},
                "trafficDistribution": "PreferClose",
            },
            "backendBboltFreelistType": "map",
            "bootstrapWithExistingCluster": {
                "members": [{"name": "source-0", "peerUrls": ["https://source-0.source-peer:2380"]}],
                "clientEndpoints": ["https://etcd-source-client.source-ns.svc:2379"],
            },
        },
        "backup": {
            "port": 8081,
            "tls": TLS,
            "image": "registry.example/etcdbrctl:v0.30.0",
            "store": STORE,
            "resources": RESOURCES,
            "snapshotCompaction": {
                "resources": {"requests": {"cpu": "0", "memory": "6Gi"}},
                "eventsThreshold": 1000000,
                "triggerFullSnapshotThreshold": 3000000,
            },
            "fullSnapshotSchedule": "0 */1 * * *",
            "garbageCollectionPolicy": "Exponential",
            "maxBackupsLimitBasedGC": 10,
            "garbageCollectionPeriod": "12h",
            "deltaSnapshotPeriod": "300s",
            "deltaSnapshotMemoryLimit": "1Gi",
            "deltaSnapshotRetentionPeriod": "72h",
            "compression": {"enabled": False, "policy": "lzw"},
            "enableProfiling": True,
            "etcdSnapshotTimeout": "20m",
            "leaderElection": {"reelectionPeriod": "5s", "etcdConnectionTimeout": "1.5s"},
        },
        "sharedConfig": {"autoCompactionMode": "revision", "autoCompactionRetention": "1000"},
        "schedulingConstraints": {
            "affinity": {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/part-of": "etcd-main"}},
                            "topologyKey": "kubernetes.io/hostname",
                        }
                    ]
                }
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/part-of": "etcd-main"}},
                }
            ],
        },
        "replicas": 3,
        "priorityClassName": "gardener-system-500",
        "storageClass": "gp3",
        "storageCapacity": 25769803776,
        "volumeClaimTemplate": "main-etcd",
        "runAsRoot": False,
    },
    "status": {
        "observedGeneration": 4,
        "etcd": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "etcd-main"},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
                "reason": "Quorate",
                "message": "The majority of ETCD members is ready",
            },
            {
                "type": "BootstrappedWithExistingCluster",
                "status": "True",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
                "reason": "BootstrapSucceeded",
                "message": "All members have successfully joined the existing cluster",
            },
        ],
        "lastErrors": [{"code": "ERR_SYNC_CLIENT_SERVICE", "description": "boom", "observedAt": T0}],
        "lastOperation": {
            "type": "Reconcile",
            "state": "Succeeded",
            "description": "Etcd cluster has been successfully reconciled",
            "runID": "8d0f0f5e-1",
            "lastUpdateTime": T0,
        },
        "currentReplicas": 3,
        "replicas": 3,
        "readyReplicas": 3,
        "ready": True,
        "labelSelector": {"matchLabels": {"app.kubernetes.io/part-of": "etcd-main"}},
        "members": [
            {
                "name": "pfx-etcd-main-0",
                "id": "a1b2c3",
                "role": "Leader",
                "status": "Ready",
                "reason": "LeaseSucceeded",
                "lastTransitionTime": T0,
            }
        ],
        "peerUrlTLSEnabled": True,
        "selector": "app.kubernetes.io/managed-by=etcd-druid,app.kubernetes.io/part-of=etcd-main",
        "bootstrapWithExistingCluster": {
            "joinedAt": T0,
            "members": [{"name": "source-0", "peerUrls": ["https://source-0.source-peer:2380"]}],
        },
    },
}

COPY_TASK: dict[str, Any] = {
    "apiVersion": "druid.gardener.cloud/v1alpha1",
    "kind": "EtcdCopyBackupsTask",
    "metadata": {"name": "copy", "namespace": "shoot--dev"},
    "spec": {
        "podLabels": {"networking.gardener.cloud/to-public-networks": "allowed"},
        "sourceStore": STORE,
        "targetStore": {
            "container": "target.bucket",
            "endpointOverride": "http://minio.local:9000",
            "prefix": "target/etcd-main",
            "provider": "S3",
            "secretRef": {"name": "target-backup", "namespace": "shoot--dev"},
        },
        "maxBackupAge": 7,
        "maxBackups": 0,
        "waitForFinalSnapshot": {"enabled": True, "timeout": "0"},
    },
    "status": {
        "conditions": [
            {
                "type": "Succeeded",
                "status": "True",
                "lastTransitionTime": T0,
                "lastUpdateTime": T0,
                "reason": "Completed",
                "message": "job finished",
            }
        ],
        "observedGeneration": 1,
        "lastError": "none so far",
    },
}

OPS_TASK: dict[str, Any] = {
    "apiVersion": "druid.gardener.cloud/v1alpha1",
    "kind": "EtcdOpsTask",
    "metadata": {"name": "snap", "namespace": "shoot--dev"},
    "spec": {
        "config": {
            "onDemandSnapshot": {"type": "full", "isFinal": True, "timeoutSecondsDelta": 60, "timeoutSecondsFull": 600}
        },
        "ttlSecondsAfterFinished": 120,
        "etcdName": "etcd-main",
    },
    "status": {
        "state": "Succeeded",
        "lastTransitionTime": T0,
        "startedAt": T0,
        "lastErrors": [{"code": "ERR_ETCD_NOT_READY", "description": "not ready", "observedAt": T0}],
        "lastOperation": {
            "type": "Execution",
            "state": "Completed",
            "description": "Snapshot created successfully",
            "runID": "run-1",
            "lastUpdateTime": T0,
        },
        "steps": [
            {
                "name": "Snapshot",
                "state": "Succeeded",
                "startedAt": T0,
                "finishedAt": T0,
                "message": "Snapshot created successfully",
                "details": {"revision": "42"},
            }
        ],
    },
}

RECOVERY_TASK: dict[str, Any] = {
    "apiVersion": "druid.gardener.cloud/v1alpha1",
    "kind": "EtcdOpsTask",
    "metadata": {"name": "recover", "namespace": "shoot--dev"},
    "spec": {
        "config": {"quorumLossRecovery": {"minQuorumLossDuration": "15m", "force": True}},
        "etcdName": "etcd-main",
    },
    "status": {
        "state": "Succeeded",
        "quorumLossRecovery": {
            "originalReplicas": 3,
            "dataLossWindow": {"start": T0, "end": T0},
            "restoredRevision": 1234,
            "clusterID": "cdf818194e3a8c32",
            "restoredMemberID": "8e9e05c52164694d",
        },
    },
}

VERIFIED_RESTORE_TASK: dict[str, Any] = {
    "apiVersion": "druid.gardener.cloud/v1alpha1",
    "kind": "EtcdOpsTask",
    "metadata": {"name": "verify", "namespace": "shoot--dev"},
    "spec": {
        "config": {"verifiedRestore": {"timeoutSeconds": 300, "etcdImage": "registry.local/etcd:v3.5.21"}},
        "etcdName": "etcd-main",
    },
    "status": {
        "state": "Succeeded",
        "verifiedRestore": {
            "fullSnapshot": "v2/Full-00000000-00000040-1764800000.gz",
            "deltaSnapshots": 2,
            "latestSnapshot": "v2/Incr-00000041-00000057-1764800060.gz",
            "latestSnapshotTime": T0,
            "snapshotRevision": 57,
            "leaseRevision": 57,
            "restoredRevision": 57,
            "keyCount": 30,
            "restoreDuration": "4.5s",
            "recoveryPointGap": "12s",
            "jobName": "etcd-main-verify-restore",
            "verifiedAt": T0,
            "reason": "",
        },
    },
}

DEFRAG_TASK: dict[str, Any] = {
    "apiVersion": "druid.gardener.cloud/v1alpha1",
    "kind": "EtcdOpsTask",
    "metadata": {"name": "defrag", "namespace": "shoot--dev"},
    "spec": {
        "config": {"defragmentation": {"fragmentationThresholdPercent": 30, "timeoutSecondsPerMember": 120}},
        "etcdName": "etcd-main",
    },
    "status": {
        "state": "InProgress",
        "steps": [
            {
                "name": "Defragment/etcd-main-1",
                "state": "Succeeded",
                "startedAt": T0,
                "finishedAt": T0,
                "details": {"dbSizeBefore": "41943040", "dbSizeAfter": "1048576"},
            }
        ],
        "defragmentation": {
            "leaderBefore": "etcd-main-0",
            "leaderMovedTo": "etcd-main-1",
            "defragmented": ["etcd-main-1", "etcd-main-2"],
            "skipped": ["etcd-main-0"],
        },
    },
}

SAMPLES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (Etcd, ETCD),
    (EtcdCopyBackupsTask, COPY_TASK),
    (EtcdOpsTask, OPS_TASK),
    (EtcdOpsTask, RECOVERY_TASK),
    (EtcdOpsTask, VERIFIED_RESTORE_TASK),
    (EtcdOpsTask, DEFRAG_TASK),
]


def minimal_etcd(**spec: Any) -> Etcd:
    body: dict[str, Any] = {"labels": {"app": "etcd"}, "replicas": 1, "etcd": {}, "backup": {}}
    body.update(spec)
    return Etcd.model_validate({"metadata": {"name": "etcd-test", "namespace": "ns"}, "spec": body})


def wire_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every wire path of a model, list items written as ``[]`` (embedded Kubernetes types are leaves)."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}"
        paths.add(path)
        tp = info.annotation
        while True:
            origin = get_origin(tp)
            if origin is Annotated:
                tp = get_args(tp)[0]
            elif origin in (Union, types.UnionType):
                tp = next(a for a in get_args(tp) if a is not type(None))
            elif origin is list:
                tp, path = get_args(tp)[0], path + "[]"
            else:
                break
        if isinstance(tp, type) and issubclass(tp, BaseModel) and tp is not ObjectMeta:
            paths |= wire_paths(tp, path)
    return paths


def present_paths(value: Any, prefix: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(f"{prefix}.{key}")
            found |= present_paths(item, f"{prefix}.{key}")
    elif isinstance(value, list):
        for item in value:
            found |= present_paths(item, prefix + "[]")
    return found


# round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(dict.fromkeys(m for m, _ in SAMPLES)), ids=lambda m: m.__name__)
def test_samples_set_every_field(model: type[BaseModel]) -> None:
    """Together, the samples of a model set every field (EtcdOpsTask: one sample per config, as exactly one
    config member is allowed)."""
    present = set().union(*(present_paths(sample) for m, sample in SAMPLES if m is model))
    missing = wire_paths(model) - present
    assert not missing, f"samples lack {sorted(missing)}"


@pytest.mark.parametrize(("model", "sample"), SAMPLES, ids=[m.__name__ for m, _ in SAMPLES])
def test_round_trip_reproduces_input(model: type[BaseModel], sample: dict[str, Any]) -> None:
    obj = model.model_validate(copy.deepcopy(sample))
    assert obj.model_dump(by_alias=True, exclude_none=True) == sample
    assert model.model_validate(obj.model_dump(by_alias=True, exclude_none=True)) == obj


def test_round_trip_keeps_absent_fields_absent() -> None:
    etcd = minimal_etcd()
    assert etcd.to_dict()["spec"] == {"labels": {"app": "etcd"}, "replicas": 1, "etcd": {}, "backup": {}}
    assert "status" not in etcd.to_dict()


def test_metadata_keeps_unknown_fields() -> None:
    meta = ObjectMeta.model_validate({"name": "x", "selfLink": "/apis/x", "labels": {"a": "b"}})
    assert meta.to_dict() == {"name": "x", "selfLink": "/apis/x", "labels": {"a": "b"}}


def test_populate_by_python_name() -> None:
    etcd = Etcd.model_validate(copy.deepcopy(ETCD))
    assert etcd.spec.etcd.enable_grpc_gateway is True
    assert etcd.spec.etcd.client_url_tls is not None
    assert etcd.spec.etcd.client_url_tls.tls_ca_secret_ref.data_key == "bundle.crt"
    assert etcd.spec.backup.max_backups_limit_based_gc == 10
    assert etcd.status is not None and etcd.status.last_operation is not None
    assert etcd.status.last_operation.run_id == "8d0f0f5e-1"
    snapshot = OnDemandSnapshotConfig(type="delta")
    task = EtcdOpsTask(spec=EtcdOpsTaskSpec(config=EtcdOpsTaskConfig(on_demand_snapshot=snapshot), etcd_name="e"))
    assert task.to_dict()["spec"] == {"config": {"onDemandSnapshot": {"type": "delta"}}, "etcdName": "e"}


# strictness --------------------------------------------------------------------------------------------


def errors(model: type[BaseModel], obj: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(obj)
    return [(tuple(e["loc"]), e["type"]) for e in info.value.errors()]


def test_unknown_field_rejected_with_path() -> None:
    obj = copy.deepcopy(ETCD)
    obj["spec"]["etcd"]["quotaBytes"] = 1
    obj["spec"]["etcd"]["additionalAdvertisePeerURLs"][0]["port"] = 2380
    obj["status"]["members"][0]["health"] = "ok"
    assert sorted(errors(Etcd, obj)) == [
        (("spec", "etcd", "additionalAdvertisePeerURLs", 0, "port"), "extra_forbidden"),
        (("spec", "etcd", "quotaBytes"), "extra_forbidden"),
        (("status", "members", 0, "health"), "extra_forbidden"),
    ]


def test_unknown_field_rejected_in_tasks() -> None:
    task = copy.deepcopy(COPY_TASK)
    task["spec"]["sourceStore"]["region"] = "eu"
    assert errors(EtcdCopyBackupsTask, task) == [(("spec", "sourceStore", "region"), "extra_forbidden")]
    ops = copy.deepcopy(OPS_TASK)
    ops["spec"]["config"]["onDemandSnapshot"]["final"] = True
    assert errors(EtcdOpsTask, ops) == [(("spec", "config", "onDemandSnapshot", "final"), "extra_forbidden")]


def test_python_field_names_are_not_wire_names() -> None:
    obj = copy.deepcopy(ETCD)
    obj["spec"]["etcd"]["enableGrpcGateway"] = True  # the generated camelCase is not the wire name
    assert (("spec", "etcd", "enableGrpcGateway"), "extra_forbidden") in errors(Etcd, obj)


def test_types_are_strict() -> None:
    obj = copy.deepcopy(ETCD)
    obj["spec"]["replicas"] = "3"
    obj["spec"]["runAsRoot"] = "false"
    assert sorted(errors(Etcd, obj)) == [
        (("spec", "replicas"), "int_type"),
        (("spec", "runAsRoot"), "bool_type"),
    ]


def test_required_fields() -> None:
    obj = copy.deepcopy(ETCD)
    del obj["spec"]["labels"]
    del obj["status"]["conditions"][0]["reason"]
    assert sorted(errors(Etcd, obj)) == [
        (("spec", "labels"), "missing"),
        (("status", "conditions", 0, "reason"), "missing"),
    ]


def test_enum_values() -> None:
    obj = copy.deepcopy(ETCD)
    obj["spec"]["etcd"]["metrics"] = "verbose"
    assert errors(Etcd, obj) == [(("spec", "etcd", "metrics"), "literal_error")]


@pytest.mark.parametrize("value", ["8Gi", "100Mi", "1.5G", "500m", "1e3", 1024])
def test_quantity_fields_accept_quantities(value: int | str) -> None:
    assert minimal_etcd(storageCapacity=value).spec.storage_capacity == value


@pytest.mark.parametrize("value", ["8GB", "", "1.5.5", 1.5, True])
def test_quantity_fields_reject_garbage(value: Any) -> None:
    with pytest.raises(ValidationError):
        minimal_etcd(storageCapacity=value)


@pytest.mark.parametrize(("field", "value"), [("deltaSnapshotPeriod", "5 m"), ("fullSnapshotSchedule", "0 25 * * *")])
def test_duration_and_cron_patterns(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        minimal_etcd(backup={field: value})


def test_a6_peer_url_bounds_checked_in_python() -> None:
    entry = {"memberName": "etcd-test-0", "urls": [f"http://10.0.0.{i}:2380" for i in range(6)]}
    with pytest.raises(ValidationError, match="at most 5 items"):
        minimal_etcd(etcd={"additionalAdvertisePeerURLs": [entry]})
    entries = [{"memberName": f"etcd-test-{i}", "urls": ["http://a:2380"]} for i in range(11)]
    with pytest.raises(ValidationError, match="at most 10 items"):
        minimal_etcd(etcd={"additionalAdvertisePeerURLs": entries})
    with pytest.raises(ValidationError, match="should match pattern"):
        minimal_etcd(etcd={"additionalAdvertisePeerURLs": [{"memberName": "no-index", "urls": ["http://a"]}]})


def test_a8_ops_task_config_must_name_one_operation() -> None:
    with pytest.raises(ValidationError, match="exactly one operation"):
        EtcdOpsTask.model_validate({"spec": {"config": {}}})
    with pytest.raises(ValidationError, match="greater than or equal to 120"):
        EtcdOpsTask.model_validate(
            {"spec": {"config": {"onDemandSnapshot": {"type": "full", "timeoutSecondsFull": 60}}}}
        )


@pytest.mark.parametrize("container", ["ab", "-bucket", "bucket-", "a" * 64, "bad/name"])
def test_a9_store_container_pattern_in_python(container: str) -> None:
    with pytest.raises(ValidationError):
        minimal_etcd(backup={"store": {"prefix": "p", "container": container}})
    task = copy.deepcopy(COPY_TASK)
    task["spec"]["targetStore"]["container"] = container
    with pytest.raises(ValidationError):
        EtcdCopyBackupsTask.model_validate(task)


@pytest.mark.parametrize("container", ["abc", "my.bucket_1", "A" * 63])
def test_a9_store_container_pattern_accepts_valid_names(container: str) -> None:
    etcd = minimal_etcd(backup={"store": {"prefix": "p", "container": container}})
    assert etcd.spec.backup.store is not None and etcd.spec.backup.store.container == container


# defaults ----------------------------------------------------------------------------------------------


def test_defaults_for_a_minimal_etcd() -> None:
    etcd = minimal_etcd()
    spec, cfg, backup = etcd.spec, etcd.spec.etcd, etcd.spec.backup
    assert d.quota_bytes(cfg) == 8589934592
    assert d.storage_capacity(spec) == "16Gi"
    assert (d.client_port(cfg), d.server_port(cfg), d.wrapper_port(cfg), d.backup_port(backup)) == (
        2379,
        2380,
        9095,
        8080,
    )
    assert d.snapshot_count(cfg) == 10000
    assert d.enable_grpc_gateway(cfg) is False
    assert d.metrics(cfg) == "basic"
    assert (d.auto_compaction_mode(spec), d.auto_compaction_retention(spec)) == ("periodic", "30m")
    assert d.etcd_defrag_timeout(cfg) == "15m"
    assert d.heartbeat_duration(cfg) == "10s"
    assert d.backend_bbolt_freelist_type(cfg) == "array"
    assert d.garbage_collection_policy(backup) == "LimitBased"
    assert d.max_backups_limit_based_gc(backup) == 7
    assert d.delta_snapshot_memory_limit_bytes(backup) == 104857600
    assert (d.compression_enabled(backup), d.compression_policy(backup)) == (True, "gzip")
    assert d.etcd_snapshot_timeout(backup) == "15m"
    assert d.full_snapshot_request_timeout_seconds(backup) == 900
    assert d.etcd_resources(cfg) == d.backup_resources(backup) == {"requests": {"cpu": "50m", "memory": "128Mi"}}
    assert d.compaction_job_requests(backup) == {"cpu": "600m", "memory": "3Gi"}
    assert d.volume_claim_template_name(etcd) == "etcd-test"


def test_defaults_accessors_return_spec_values() -> None:
    etcd = Etcd.model_validate(copy.deepcopy(ETCD))
    spec, cfg, backup = etcd.spec, etcd.spec.etcd, etcd.spec.backup
    assert d.quota_bytes(cfg) == 8 * 1024**3
    assert d.storage_capacity(spec) == 25769803776
    assert (d.client_port(cfg), d.server_port(cfg), d.wrapper_port(cfg), d.backup_port(backup)) == (
        2389,
        2390,
        9096,
        8081,
    )
    assert d.snapshot_count(cfg) == 75000
    assert d.enable_grpc_gateway(cfg) is True
    assert d.metrics(cfg) == "extensive"
    assert (d.auto_compaction_mode(spec), d.auto_compaction_retention(spec)) == ("revision", "1000")
    assert d.etcd_defrag_timeout(cfg) == "8m0s"  # rendered like Go's Duration.String()
    assert d.heartbeat_duration(cfg) == "1m30s"
    assert d.etcd_snapshot_timeout(backup) == "20m0s"
    assert d.full_snapshot_request_timeout_seconds(backup) == 1200
    assert d.backend_bbolt_freelist_type(cfg) == "map"
    assert d.garbage_collection_policy(backup) == "Exponential"
    assert d.max_backups_limit_based_gc(backup) == 10
    assert d.delta_snapshot_memory_limit_bytes(backup) == 1024**3
    assert (d.compression_enabled(backup), d.compression_policy(backup)) == (False, "lzw")
    assert d.etcd_resources(cfg) == RESOURCES
    assert d.compaction_job_requests(backup) == {"cpu": "600m", "memory": "6Gi"}  # zero cpu falls back
    assert d.volume_claim_template_name(etcd) == "main-etcd"
    assert d.ca_data_key(cfg.client_url_tls) == "bundle.crt"  # type: ignore[arg-type]


def test_defaults_do_not_leak_into_the_wire_form() -> None:
    etcd = minimal_etcd()
    d.etcd_resources(etcd.spec.etcd)["requests"]["cpu"] = "1"
    assert d.DEFAULT_RESOURCES["requests"]["cpu"] == "50m"
    assert etcd.to_dict()["spec"]["etcd"] == {}


def test_ops_task_defaults() -> None:
    task = EtcdOpsTask.model_validate({"spec": {"config": {"onDemandSnapshot": {"type": "delta"}}}})
    assert task.ttl_seconds_after_finished == 3600
    assert task.spec.config.on_demand_snapshot is not None
    assert task.spec.config.on_demand_snapshot.timeout_seconds == 60
    full = EtcdOpsTask.model_validate({"spec": {"config": {"onDemandSnapshot": {"type": "full"}}}})
    assert full.spec.config.on_demand_snapshot is not None
    assert full.spec.config.on_demand_snapshot.timeout_seconds == 900
    assert task.to_dict()["spec"] == {"config": {"onDemandSnapshot": {"type": "delta"}}}


# helpers -----------------------------------------------------------------------------------------------


def test_resource_names() -> None:
    assert names.peer_service_name("e") == "e-peer"
    assert names.client_service_name("e") == "e-client"
    assert names.config_map_name("e") == "e-config"
    assert names.compaction_job_name("e") == "e-compactor"
    assert names.role_name("e") == names.role_binding_name("e") == "druid.gardener.cloud:etcd:e"
    assert names.full_snapshot_lease_name("e") == "e-full-snap"
    assert names.delta_snapshot_lease_name("e") == "e-delta-snap"
    assert names.service_account_name("e") == names.statefulset_name("e") == names.pod_disruption_budget_name("e")
    assert names.member_lease_names("e", 3) == ["e-0", "e-1", "e-2"]
    assert names.member_lease_names("e", 2, "pfx") == ["pfx-e-0", "pfx-e-1"]
    assert names.member_lease_names("e", 1, "") == ["e-0"]
    assert names.copy_backups_job_name("t") == "t-worker"
    assert EtcdCopyBackupsTask.model_validate(COPY_TASK).job_name == "copy-worker"


def test_labels_selector_and_owner_reference() -> None:
    labels = names.default_labels("etcd-main")
    assert labels == {"app.kubernetes.io/managed-by": "etcd-druid", "app.kubernetes.io/part-of": "etcd-main"}
    assert names.selector_string(labels) == ETCD["status"]["selector"]
    assert names.owner_reference("etcd-main", "u-1") == {
        "apiVersion": "druid.gardener.cloud/v1alpha1",
        "kind": "Etcd",
        "name": "etcd-main",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_etcd_annotation_and_status_helpers() -> None:
    etcd = Etcd.model_validate(copy.deepcopy(ETCD))
    assert etcd.name == "etcd-main" and etcd.namespace == "shoot--dev"
    assert etcd.backup_store_enabled and not minimal_etcd().backup_store_enabled
    assert etcd.runtime_component_creation_enabled
    assert etcd.ready and etcd.condition_status(c.CONDITION_BACKUP_READY) is None
    etcd.metadata.annotations = {c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION: ""}
    assert not etcd.runtime_component_creation_enabled


def test_ops_task_completion_and_ttl() -> None:
    task = EtcdOpsTask.model_validate(copy.deepcopy(OPS_TASK))
    assert task.completed
    start = parse_time(T0)
    assert task.time_to_expiry(start + timedelta(seconds=20)) == timedelta(seconds=100)
    assert task.time_to_expiry(start + timedelta(hours=1)) == timedelta(0)
    assert task.status is not None
    task.status.state = "InProgress"
    assert not task.completed


def test_time_helpers() -> None:
    moment = datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert format_time(moment) == T0
    assert parse_time(T0) == moment.replace(microsecond=0)


@pytest.mark.parametrize(
    ("provider", "expected"),
    [("aws", "S3"), ("stackit", "S3"), ("azure", "ABS"), ("gcs", "GCS"), ("openstack", "Swift"),
     ("alicloud", "OSS"), ("dell", "ECS"), ("ocs", "OCS"), ("local", "Local"), ("Local", "Local")],
)  # fmt: skip
def test_storage_provider_mapping(provider: str, expected: str) -> None:
    assert storage_provider(provider) == expected


@pytest.mark.parametrize("provider", [None, "", "LOCAL", "minio"])
def test_storage_provider_unsupported(provider: str | None) -> None:
    with pytest.raises(ValueError, match="unsupported storage provider"):
        storage_provider(provider)
