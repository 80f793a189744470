"""H54: the EtcdCopyBackupsTask worker Job (upstream etcdcopybackupstask createJobObject), per provider."""

from __future__ import annotations

from typing import Any

import pytest

from druid.api.copybackupstask import EtcdCopyBackupsTask
from druid.config.images import Images
from druid.controllers.copybackups.job import JobBuildError, build_job, secret_dir
from druid.controllers.copybackups.reconciler import desired_status, mirror_conditions

IMAGES = Images(etcd_wrapper="wrapper:1", etcd_backup_restore="etcdbr:2", alpine="alpine:3")


def task(source: dict[str, Any], target: dict[str, Any], **spec: Any) -> EtcdCopyBackupsTask:
    return EtcdCopyBackupsTask.model_validate(
        {
            "metadata": {"name": "copy", "namespace": "ns", "uid": "u-1"},
            "spec": {"sourceStore": source, "targetStore": target, **spec},
        }
    )


def store(provider: str | None, container: str | None = "bucket", secret: str | None = "creds", **extra: Any) -> Any:
    out: dict[str, Any] = {"prefix": "etcd-main", **extra}
    if provider is not None:
        out["provider"] = provider
    if container is not None:
        out["container"] = container
    if secret is not None:
        out["secretRef"] = {"name": secret}
    return out


def pod(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def test_h54_job_spec() -> None:
    t = task(
        store("aws", "src-bucket", "src-creds"),
        store("gcp", "dst-bucket", "dst-creds", endpointOverride="https://gcs.example"),
        podLabels={"team": "a", "app.kubernetes.io/name": "override"},
        maxBackupAge=7,
        maxBackups=3,
        waitForFinalSnapshot={"enabled": True, "timeout": "300s"},
    )
    job = build_job(t, IMAGES)
    labels = {
        "app.kubernetes.io/component": "etcd-copy-backups-job",
        "app.kubernetes.io/part-of": "copy",
        "app.kubernetes.io/managed-by": "etcd-druid",
        "app.kubernetes.io/name": "copy-worker",
    }
    assert job["metadata"] == {
        "name": "copy-worker",
        "namespace": "ns",
        "labels": labels,
        "ownerReferences": [
            {
                "apiVersion": "druid.gardener.cloud/v1alpha1",
                "kind": "EtcdCopyBackupsTask",
                "name": "copy",
                "uid": "u-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    assert job["spec"]["template"]["metadata"]["labels"] == {
        **labels,
        "team": "a",
        "app.kubernetes.io/name": "override",
    }
    assert pod(job) == {
        "restartPolicy": "OnFailure",
        "shareProcessNamespace": True,
        "securityContext": {"runAsGroup": 65532, "runAsNonRoot": True, "runAsUser": 65532, "fsGroup": 65532},
        "containers": [
            {
                "name": "copy-backups",
                "image": "etcdbr:2",
                "imagePullPolicy": "IfNotPresent",
                "args": [
                    "copy",
                    "--snapstore-temp-directory=/home/nonroot/data/tmp",
                    "--storage-provider=GCS",
                    "--store-prefix=etcd-main",
                    "--store-container=dst-bucket",
                    "--store-endpoint-override=https://gcs.example",
                    "--source-storage-provider=S3",
                    "--source-store-prefix=etcd-main",
                    "--source-store-container=src-bucket",
                    "--max-backup-age=7",
                    "--max-backups-to-copy=3",
                    "--wait-for-final-snapshot=true",
                    "--wait-for-final-snapshot-timeout=5m0s",
                ],
                "env": [
                    {"name": "SOURCE_STORAGE_CONTAINER", "value": "src-bucket"},
                    {"name": "SOURCE_AWS_APPLICATION_CREDENTIALS", "value": "/var/source-etcd-backup"},
                    {"name": "STORAGE_CONTAINER", "value": "dst-bucket"},
                    {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/var/.gcp/serviceaccount.json"},
                ],
                "volumeMounts": [
                    {"name": "source-etcd-backup-secret", "mountPath": "/var/source-etcd-backup/"},
                    {"name": "etcd-backup-secret", "mountPath": "/var/.gcp/"},
                ],
                "securityContext": {"allowPrivilegeEscalation": False},
            }
        ],
        "volumes": [
            {"name": "source-etcd-backup-secret", "secret": {"secretName": "src-creds", "defaultMode": 0o640}},
            {"name": "etcd-backup-secret", "secret": {"secretName": "dst-creds", "defaultMode": 0o640}},
        ],
    }


CLOUD = [
    ("aws", "S3", "AWS_APPLICATION_CREDENTIALS"),
    ("azure", "ABS", "AZURE_APPLICATION_CREDENTIALS"),
    ("gcp", "GCS", "GOOGLE_APPLICATION_CREDENTIALS"),
    ("openstack", "Swift", "OPENSTACK_APPLICATION_CREDENTIALS"),
    ("alicloud", "OSS", "ALICLOUD_APPLICATION_CREDENTIALS"),
    ("openshift", "OCS", "OPENSHIFT_APPLICATION_CREDENTIALS"),
    ("stackit", "S3", "AWS_APPLICATION_CREDENTIALS"),
]


@pytest.mark.parametrize(("provider", "name", "env"), CLOUD)
def test_h54_job_spec_cloud_provider_env_and_volumes(provider: str, name: str, env: str) -> None:
    job = build_job(task(store(provider, "aaa", "sa"), store(provider, "bbb", "sb")), IMAGES)
    gcs = name == "GCS"
    src_dir, dst_dir = ("/var/.source-gcp/", "/var/.gcp/") if gcs else ("/var/source-etcd-backup/", "/var/etcd-backup/")
    src_env = f"{src_dir}serviceaccount.json" if gcs else src_dir.rstrip("/")
    dst_env = f"{dst_dir}serviceaccount.json" if gcs else dst_dir.rstrip("/")
    container = pod(job)["containers"][0]
    assert f"--storage-provider={name}" in container["args"]
    assert f"--source-storage-provider={name}" in container["args"]
    assert container["env"] == [
        {"name": "SOURCE_STORAGE_CONTAINER", "value": "aaa"},
        {"name": f"SOURCE_{env}", "value": src_env},
        {"name": "STORAGE_CONTAINER", "value": "bbb"},
        {"name": env, "value": dst_env},
    ]
    assert container["volumeMounts"] == [
        {"name": "source-etcd-backup-secret", "mountPath": src_dir},
        {"name": "etcd-backup-secret", "mountPath": dst_dir},
    ]
    assert [v["secret"]["secretName"] for v in pod(job)["volumes"]] == ["sa", "sb"]
    assert "initContainers" not in pod(job)


def test_h54_job_spec_local_init_container() -> None:
    t = task(store("Local", "src", None), store("local", "dst", "local-secret"))
    job = build_job(t, IMAGES, target_host_path="/custom/buckets")
    spec = pod(job)
    mounts = [
        {"name": "source-host-storage", "mountPath": "/home/nonroot/src"},
        {"name": "host-storage", "mountPath": "/home/nonroot/dst"},
    ]
    assert spec["containers"][0]["volumeMounts"] == mounts
    assert spec["containers"][0]["env"] == [
        {"name": "SOURCE_STORAGE_CONTAINER", "value": "src"},
        {"name": "STORAGE_CONTAINER", "value": "dst"},
    ]
    assert spec["volumes"] == [
        {
            "name": "source-host-storage",
            "hostPath": {"path": "/etc/gardener/local-backupbuckets/src", "type": "DirectoryOrCreate"},
        },
        {"name": "host-storage", "hostPath": {"path": "/custom/buckets/dst", "type": "DirectoryOrCreate"}},
    ]
    assert spec["initContainers"] == [
        {
            "name": "change-backup-bucket-permissions",
            "image": "alpine:3",
            "command": ["chown", "-R", "65532:65532", "/home/nonroot/dst", "/home/nonroot/src"],
            "volumeMounts": mounts,
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "runAsGroup": 0,
                "runAsNonRoot": False,
                "runAsUser": 0,
            },
        }
    ]


def test_h54_local_source_only_has_no_init_container() -> None:
    job = build_job(task(store("Local", "src", None), store("aws", "dst", "creds")), IMAGES)
    assert "initContainers" not in pod(job)


def test_h54_ecs_and_unset_provider() -> None:
    job = build_job(task(store("dell", "aaa", "sa"), store(None, "bbb", None)), IMAGES)
    container = pod(job)["containers"][0]
    # ECS: flags and container variable only; no provider: no store flags at all (as upstream)
    assert container["args"] == [
        "copy",
        "--snapstore-temp-directory=/home/nonroot/data/tmp",
        "--source-storage-provider=ECS",
        "--source-store-prefix=etcd-main",
        "--source-store-container=aaa",
    ]
    assert container["env"] == [
        {"name": "SOURCE_STORAGE_CONTAINER", "value": "aaa"},
        {"name": "STORAGE_CONTAINER", "value": "bbb"},
    ]
    assert "volumeMounts" not in container and "volumes" not in pod(job)


def test_h54_wait_for_final_snapshot_without_timeout() -> None:
    job = build_job(task(store("aws"), store("aws"), waitForFinalSnapshot={"enabled": False}), IMAGES)
    args = pod(job)["containers"][0]["args"]
    assert args[-1] == "--wait-for-final-snapshot=false"
    assert not any(a.startswith("--wait-for-final-snapshot-timeout") for a in args)


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (store("aws", secret=None), store("aws"), "no secretRef is configured for backup source-store"),
        (store("aws"), store("gcp", secret=None), "no secretRef is configured for backup store"),
        (store("aws"), store("nope"), "unsupported storage provider: 'nope'"),
        (store("aws"), store("aws", container=None), "no container is configured for backup store"),
    ],
)
def test_h54_job_build_errors(source: dict[str, Any], target: dict[str, Any], message: str) -> None:
    with pytest.raises(JobBuildError, match=message):
        build_job(task(source, target), IMAGES)


def test_secret_dir() -> None:
    assert secret_dir("S3") == "/var/etcd-backup/"
    assert secret_dir("S3", "source-") == "/var/source-etcd-backup/"
    assert secret_dir("GCS", "source-") == "/var/.source-gcp/"


def test_h55_status_from_job_conditions() -> None:
    job = {
        "status": {
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": "t0", "lastProbeTime": "t0"},
                {
                    "type": "Complete",
                    "status": "True",
                    "lastTransitionTime": "t1",
                    "lastProbeTime": "t2",
                    "reason": "CompletionsReached",
                    "message": "done",
                },
                {"type": "Failed", "status": "False", "lastTransitionTime": "t3"},
            ]
        }
    }
    assert mirror_conditions(job) == [
        {
            "type": "Succeeded",
            "status": "True",
            "lastTransitionTime": "t1",
            "lastUpdateTime": "t2",
            "reason": "CompletionsReached",
            "message": "done",
        },
        {
            "type": "Failed",
            "status": "False",
            "lastTransitionTime": "t3",
            "lastUpdateTime": "t3",
            "reason": "",
            "message": "",
        },
    ]
    assert mirror_conditions(None) is None
    t = {"metadata": {"generation": 4}, "status": {"conditions": [{"type": "x"}], "lastError": "old"}}
    assert desired_status(t, None, None) == {"observedGeneration": 4}
    assert desired_status(t, None, "boom") == {"observedGeneration": 4, "lastError": "boom"}


async def test_h54_add_copy_backups_controller_wiring() -> None:
    from kubernetes_asyncio import client
    from prometheus_client import CollectorRegistry

    from druid.config.operator import OperatorConfiguration
    from druid.controllers.copybackups.setup import add_copy_backups_controller
    from druid.runtime.client import Kube
    from druid.runtime.manager import Manager

    kube = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")))
    manager = Manager(kube, registry=CollectorRegistry())
    try:
        controller = add_copy_backups_controller(manager, OperatorConfiguration())  # disabled: concurrentSyncs unset
        assert manager.controllers == [controller]
        assert controller.name == "etcdcopybackupstask-controller" and controller.workers == 3
        informers = sorted(i.name for i in manager.informers)
        assert informers == [
            "etcdcopybackupstasks.druid.gardener.cloud/v1alpha1",
            "jobs.batch/v1 labels=app.kubernetes.io/component=etcd-copy-backups-job",
        ]
    finally:
        await kube.close()
