"""StatefulSet ``<n>`` (checklist D28–D33, C27) and the image vector (L69).

Expected argument lists follow upstream's builder.go order exactly.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest

from druid.api.etcd import Etcd
from druid.components import configmap, statefulset
from druid.components import statefulset_volumes as vol
from druid.components.base import BuildInputs, BuildOptions
from druid.config import images
from druid.config.images import Images
from druid.runtime.objects import Obj

OPTS = BuildOptions(images=Images(etcd_wrapper="wrapper:1", etcd_backup_restore="br:1", alpine="alpine:1"))
UID = "0b5a2f8e-7f7e-4c1e-9a59-0a2d2d0c4e11"
NAME, NS = "etcd-main", "shoot--dev"
DEFAULTS = {"app.kubernetes.io/managed-by": "etcd-druid", "app.kubernetes.io/part-of": NAME}
STS_LABELS = {**DEFAULTS, "app.kubernetes.io/component": "etcd-statefulset", "app.kubernetes.io/name": NAME}
TLS = {"tlsCASecretRef": {"name": "ca"}, "serverTLSSecretRef": {"name": "server"}, "clientTLSSecretRef": {"name": "c"}}
DEFAULT_RESOURCES = {"requests": {"cpu": "50m", "memory": "128Mi"}}
ETCD_ARGS = [
    "start-etcd",
    "--backup-restore-host-port=etcd-main-local:8080",
    "--etcd-server-name=etcd-main-local",
    "--backup-restore-tls-enabled=false",
    "--etcd-client-port=2379",
    "--etcd-wrapper-port=9095",
]
TAIL_ARGS = [
    "--data-dir=/var/etcd/data/new.etcd",
    "--restoration-temp-snapshots-dir=/var/etcd/data/restoration.temp",
    "--snapstore-temp-directory=/var/etcd/data/temp",
    "--etcd-connection-timeout=5m",
    "--use-etcd-wrapper=true",
]
POD_ENV = [
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
]


def make_etcd(
    replicas: int = 3,
    *,
    etcd: dict[str, Any] | None = None,
    backup: dict[str, Any] | None = None,
    meta_annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Etcd:
    body: dict[str, Any] = {
        "replicas": replicas,
        "labels": {"role": "main"},
        "etcd": etcd or {},
        "backup": backup or {},
    }
    body.update(copy.deepcopy(spec))
    meta: dict[str, Any] = {"name": NAME, "namespace": NS, "uid": UID}
    if meta_annotations is not None:
        meta["annotations"] = meta_annotations
    return Etcd.model_validate({"metadata": meta, "spec": body})


def build(etcd: Etcd, opts: BuildOptions = OPTS, **kwargs: Any) -> Obj:
    kwargs.setdefault("configmap_checksum", "sum")
    (sts,) = statefulset.build(etcd, opts, **kwargs)
    return sts


def pod(sts: Obj) -> dict[str, Any]:
    spec: dict[str, Any] = sts["spec"]["template"]["spec"]
    return spec


def container(sts: Obj, name: str) -> dict[str, Any]:
    (found,) = [c for c in pod(sts)["containers"] if c["name"] == name]
    return found


def volume(sts: Obj, name: str) -> dict[str, Any] | None:
    return next((v for v in pod(sts)["volumes"] if v["name"] == name), None)


def mounts(sts: Obj, name: str) -> list[tuple[str, str]]:
    return [(m["name"], m["mountPath"]) for m in container(sts, name)["volumeMounts"]]


def test_d28_statefulset_spec() -> None:
    sts = build(make_etcd(3))
    assert (sts["apiVersion"], sts["kind"]) == ("apps/v1", "StatefulSet")
    meta = sts["metadata"]
    assert (meta["name"], meta["namespace"], meta["labels"]) == (NAME, NS, STS_LABELS)
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "druid.gardener.cloud/v1alpha1",
            "kind": "Etcd",
            "name": NAME,
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert "annotations" not in meta
    spec = sts["spec"]
    assert spec["replicas"] == 3
    assert spec["selector"] == {"matchLabels": DEFAULTS}
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    assert spec["serviceName"] == "etcd-main-peer"
    assert spec["volumeClaimTemplates"] == [
        {
            "metadata": {"name": NAME},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Gi"}}},
        }
    ]
    assert spec["template"]["metadata"] == {
        "labels": {"role": "main", **STS_LABELS},
        "annotations": {"checksum/etcd-configmap": "sum"},
    }
    custom = build(
        make_etcd(
            5,
            storageClass="gp3",
            storageCapacity="25Gi",
            volumeClaimTemplate="main-etcd",
            labels={"role": "main", "app.kubernetes.io/name": "overridden"},
            annotations={"a": "b"},
        ),
        replicas=2,
    )["spec"]
    assert custom["replicas"] == 2  # the override used for TLS roll-out and orphan adoption
    assert custom["volumeClaimTemplates"][0] == {
        "metadata": {"name": "main-etcd"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "25Gi"}},
            "storageClassName": "gp3",
        },
    }
    assert custom["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == NAME  # STS labels win
    assert custom["template"]["metadata"]["annotations"] == {"a": "b", "checksum/etcd-configmap": "sum"}
    no_sum = build(make_etcd(), configmap_checksum=None)["spec"]["template"]["metadata"]
    assert "annotations" not in no_sum
    assert statefulset.KIND == "StatefulSet"
    assert statefulset.COMPONENT_LABEL == "etcd-statefulset"
    assert statefulset.ERROR_CODES == ("ERR_GET_STATEFULSET", "ERR_SYNC_STATEFULSET", "ERR_DELETE_STATEFULSET")


def test_d28_existing_selector_mismatch_keeps_old_template_labels() -> None:
    existing = {
        "spec": {
            "selector": {"matchLabels": {"instance": NAME, "name": "etcd"}},
            "template": {"metadata": {"labels": {"instance": NAME, "name": "etcd"}}},
        }
    }
    labels = build(make_etcd(), existing=existing)["spec"]["template"]["metadata"]["labels"]
    assert labels == {"role": "main", **STS_LABELS, "instance": NAME, "name": "etcd"}
    matching = {"spec": {"selector": {"matchLabels": DEFAULTS}, "template": {"metadata": {"labels": {"x": "y"}}}}}
    assert "x" not in build(make_etcd(), existing=matching)["spec"]["template"]["metadata"]["labels"]


def test_d29_pod_containers_args_env_probes() -> None:
    sts = build(make_etcd())
    spec = pod(sts)
    assert spec["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["etcd-main-local"]}]
    assert spec["shareProcessNamespace"] is True
    assert spec["serviceAccountName"] == NAME
    assert spec["securityContext"] == {
        "runAsGroup": 65532,
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "fsGroup": 65532,
        "fsGroupChangePolicy": "OnRootMismatch",
    }
    assert "initContainers" not in spec
    assert "affinity" not in spec and "topologySpreadConstraints" not in spec and "priorityClassName" not in spec
    assert [c["name"] for c in spec["containers"]] == ["etcd", "backup-restore"]

    etcd_c = container(sts, "etcd")
    assert etcd_c["image"] == "wrapper:1"
    assert etcd_c["imagePullPolicy"] == "IfNotPresent"
    assert etcd_c["args"] == ETCD_ARGS
    assert etcd_c["ports"] == [
        {"name": "server", "protocol": "TCP", "containerPort": 2380},
        {"name": "client", "protocol": "TCP", "containerPort": 2379},
    ]
    assert etcd_c["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": 9095, "scheme": "HTTP"},
        "initialDelaySeconds": 15,
        "periodSeconds": 5,
        "failureThreshold": 5,
    }
    assert "livenessProbe" not in etcd_c and "env" not in etcd_c
    assert etcd_c["resources"] == DEFAULT_RESOURCES
    assert etcd_c["securityContext"] == {"allowPrivilegeEscalation": False}
    assert mounts(sts, "etcd") == [(NAME, "/var/etcd/data")]

    br = container(sts, "backup-restore")
    assert br["image"] == "br:1"
    assert br["imagePullPolicy"] == "IfNotPresent"
    assert br["args"] == [
        "server",
        "--server-port=8080",
        "--etcd-defrag-timeout=15m",
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=30m",
        "--insecure-transport=true",
        "--insecure-skip-tls-verify=true",
        "--endpoints=http://etcd-main-local:2379",
        "--service-endpoints=http://etcd-main-client:2379",
        *TAIL_ARGS,
        "--enable-member-lease-renewal=true",
        "--k8s-heartbeat-duration=10s",
        "--embedded-etcd-quota-bytes=8589934592",
    ]
    assert br["ports"] == [{"name": "server", "protocol": "TCP", "containerPort": 8080}]
    assert br["env"] == POD_ENV
    assert br["resources"] == DEFAULT_RESOURCES
    assert br["securityContext"] == {"allowPrivilegeEscalation": False}
    assert "readinessProbe" not in br
    assert mounts(sts, "backup-restore") == [(NAME, "/var/etcd/data"), ("etcd-config-file", "/var/etcd/config/")]
    assert spec["volumes"] == [
        {
            "name": "etcd-config-file",
            "configMap": {
                "name": "etcd-main-config",
                "items": [{"key": "etcd.conf.yaml", "path": "etcd.conf.yaml"}],
                "defaultMode": 0o640,
            },
        }
    ]


def test_d29_full_backup_args_in_upstream_order() -> None:
    backup = {
        "port": 9090,
        "store": {
            "provider": "aws",
            "container": "bkt",
            "prefix": "shoot/etcd",
            "endpointOverride": "http://minio:9000",
        },
        "fullSnapshotSchedule": "0 */12 * * *",
        "deltaSnapshotPeriod": "300s",
        "deltaSnapshotRetentionPeriod": "72h",
        "deltaSnapshotMemoryLimit": "1Gi",
        "garbageCollectionPolicy": "LimitBased",
        "maxBackupsLimitBasedGC": 10,
        "garbageCollectionPeriod": "43200s",
        "compression": {"enabled": False, "policy": "lzw"},
        "etcdSnapshotTimeout": "10m",
        "enableProfiling": True,
        "leaderElection": {"reelectionPeriod": "5s", "etcdConnectionTimeout": "1m30s"},
        "resources": {"limits": {"memory": "1Gi"}},
        "image": "custom-br:9",
    }
    etcd = {
        "quota": "2Gi",
        "defragmentationSchedule": "0 0 * * *",
        "etcdDefragTimeout": "900s",
        "heartbeatDuration": "15s",
        "clientPort": 2479,
        "serverPort": 2480,
        "wrapperPort": 9096,
        "resources": {},
        "image": "custom-wrapper:9",
    }
    sts = build(make_etcd(etcd=etcd, backup=backup, sharedConfig={"autoCompactionMode": "revision"}))
    assert container(sts, "etcd")["args"] == [
        "start-etcd",
        "--backup-restore-host-port=etcd-main-local:9090",
        "--etcd-server-name=etcd-main-local",
        "--backup-restore-tls-enabled=false",
        "--etcd-client-port=2479",
        "--etcd-wrapper-port=9096",
    ]
    assert container(sts, "backup-restore")["args"] == [
        "server",
        "--server-port=9090",
        "--enable-snapshot-lease-renewal=true",
        "--full-snapshot-lease-name=etcd-main-full-snap",
        "--delta-snapshot-lease-name=etcd-main-delta-snap",
        "--storage-provider=S3",
        "--store-prefix=shoot/etcd",
        "--store-endpoint-override=http://minio:9000",
        "--schedule=0 */12 * * *",
        "--delta-snapshot-period=5m0s",
        "--delta-snapshot-retention-period=72h0m0s",
        "--delta-snapshot-memory-limit=1073741824",
        "--garbage-collection-policy=LimitBased",
        "--max-backups=10",
        "--garbage-collection-period=12h0m0s",
        "--compress-snapshots=false",
        "--compression-policy=lzw",
        "--etcd-snapshot-timeout=10m0s",
        "--defragmentation-schedule=0 0 * * *",
        "--etcd-defrag-timeout=15m0s",
        "--auto-compaction-mode=revision",
        "--auto-compaction-retention=30m",
        "--insecure-transport=true",
        "--insecure-skip-tls-verify=true",
        "--endpoints=http://etcd-main-local:2479",
        "--service-endpoints=http://etcd-main-client:2479",
        *TAIL_ARGS,
        "--enable-member-lease-renewal=true",
        "--k8s-heartbeat-duration=15s",
        "--embedded-etcd-quota-bytes=2147483648",
        "--enable-profiling=true",
        "--etcd-connection-timeout-leader-election=1m30s",
        "--reelection-period=5s",
    ]
    assert container(sts, "etcd")["image"] == "custom-wrapper:9"
    assert container(sts, "backup-restore")["image"] == "custom-br:9"
    assert container(sts, "etcd")["resources"] == {}  # the spec's, even if empty
    assert container(sts, "backup-restore")["resources"] == {"limits": {"memory": "1Gi"}}
    assert container(sts, "etcd")["ports"][0]["containerPort"] == 2480
    assert container(sts, "etcd")["readinessProbe"]["httpGet"]["port"] == 9096
    assert container(sts, "backup-restore")["ports"] == [{"name": "server", "protocol": "TCP", "containerPort": 9090}]

    exponential = {"store": {"provider": "gcp", "prefix": "p"}, "garbageCollectionPolicy": "Exponential"}
    args = container(build(make_etcd(backup=exponential)), "backup-restore")["args"]
    assert "--garbage-collection-policy=Exponential" in args
    assert not any(a.startswith("--max-backups") for a in args)


def test_d29_bootstrap_client_endpoints_in_service_endpoints() -> None:
    bootstrap = {
        "members": [{"name": "src-0", "peerUrls": ["https://src-0:2380"]}],
        "clientEndpoints": ["https://src-client.src:2379", "https://10.0.0.1:2379"],
    }
    etcd = {"clientUrlTls": TLS, "peerUrlTls": TLS, "bootstrapWithExistingCluster": bootstrap}
    args = container(build(make_etcd(etcd=etcd)), "backup-restore")["args"]
    assert "--service-endpoints=https://etcd-main-client:2379,https://src-client.src:2379,https://10.0.0.1:2379" in args


def test_d29_run_as_root() -> None:
    sts = build(make_etcd(runAsRoot=True, backup={"store": {"provider": "local", "container": "bkt", "prefix": "p"}}))
    assert pod(sts)["securityContext"] == {"runAsGroup": 0, "runAsNonRoot": False, "runAsUser": 0, "fsGroup": 0}
    assert "initContainers" not in pod(sts)  # no chown needed as root
    assert ("local-backup", "/root/bkt") in mounts(sts, "backup-restore")


def test_d29_scheduling_and_priority() -> None:
    affinity: dict[str, Any] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}
    tsc = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}]
    sts = build(
        make_etcd(
            schedulingConstraints={"affinity": affinity, "topologySpreadConstraints": tsc},
            priorityClassName="etcd-critical",
        )
    )
    assert pod(sts)["affinity"] == affinity
    assert pod(sts)["topologySpreadConstraints"] == tsc
    assert pod(sts)["priorityClassName"] == "etcd-critical"


def test_d30_checksum_changes_with_configmap() -> None:
    def annotation(etcd: Etcd) -> str:
        (cm,) = configmap.build(etcd, OPTS)
        sts = build(etcd, configmap_checksum=configmap.checksum(cm))
        value: str = sts["spec"]["template"]["metadata"]["annotations"]["checksum/etcd-configmap"]
        return value

    base = annotation(make_etcd(3))
    assert base == annotation(make_etcd(3))
    assert annotation(make_etcd(5)) != base  # scale-up re-renders initial-cluster and rolls the pods
    assert annotation(make_etcd(3, etcd={"quota": "16Gi"})) != base
    extra = [{"memberName": "etcd-main-0", "urls": ["http://10.0.0.1:2380"]}]
    assert annotation(make_etcd(3, etcd={"additionalAdvertisePeerURLs": extra})) != base
    # Backup-only changes do not touch the config file.
    assert annotation(make_etcd(3, backup={"deltaSnapshotPeriod": "1m"})) == base


def test_d31_local_provider_init_container_and_hostpath() -> None:
    backup = {"store": {"provider": "Local", "container": "bkt", "prefix": "p", "secretRef": {"name": "local-store"}}}
    etcd = make_etcd(backup=backup)
    sts = build(etcd)
    assert pod(sts)["initContainers"] == [
        {
            "name": "change-backup-bucket-permissions",
            "image": "alpine:1",
            "imagePullPolicy": "IfNotPresent",
            "command": ["chown", "-R", "65532:65532", "/home/nonroot/bkt"],
            "volumeMounts": [{"name": "local-backup", "mountPath": "/home/nonroot/bkt"}],
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "runAsGroup": 0,
                "runAsNonRoot": False,
                "runAsUser": 0,
            },
        }
    ]
    assert volume(sts, "local-backup") == {
        "name": "local-backup",
        "hostPath": {"path": "/etc/gardener/local-backupbuckets/bkt", "type": "DirectoryOrCreate"},
    }
    assert mounts(sts, "backup-restore")[-1] == ("local-backup", "/home/nonroot/bkt")
    env = container(sts, "backup-restore")["env"]
    assert env == [*POD_ENV, {"name": "STORAGE_CONTAINER", "value": "bkt"}]  # no credentials for Local
    assert "--storage-provider=Local" in container(sts, "backup-restore")["args"]

    # hostPath from the store secret's hostPath key (the caller reads the secret).
    secret = {"data": {"hostPath": base64.b64encode(b"/var/buckets").decode()}}
    host_path = vol.local_host_path(secret)
    assert host_path == "/var/buckets"
    custom = build(etcd, backup_host_path=host_path)
    assert volume(custom, "local-backup") == {
        "name": "local-backup",
        "hostPath": {"path": "/var/buckets/bkt", "type": "DirectoryOrCreate"},
    }
    assert vol.local_host_path({"data": {}}) == vol.local_host_path(None) == "/etc/gardener/local-backupbuckets"

    # Without a container: the hostPath volume still exists, but nothing mounts it and no chown runs.
    bare = build(make_etcd(backup={"store": {"provider": "local", "prefix": "p"}}))
    assert volume(bare, "local-backup") == {
        "name": "local-backup",
        "hostPath": {"path": "/etc/gardener/local-backupbuckets/", "type": "DirectoryOrCreate"},
    }
    assert "initContainers" not in pod(bare)
    assert all(name != "local-backup" for name, _ in mounts(bare, "backup-restore"))


CLOUD = [
    ("aws", "S3", "AWS_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("stackit", "S3", "AWS_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("azure", "ABS", "AZURE_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("gcp", "GCS", "GOOGLE_APPLICATION_CREDENTIALS", "/var/.gcp/serviceaccount.json", "/var/.gcp/"),
    ("openstack", "Swift", "OPENSTACK_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("alicloud", "OSS", "ALICLOUD_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
    ("openshift", "OCS", "OPENSHIFT_APPLICATION_CREDENTIALS", "/var/etcd-backup", "/var/etcd-backup"),
]


@pytest.mark.parametrize("with_secret", [True, False], ids=["secretRef", "no-secretRef"])
@pytest.mark.parametrize(("provider", "name", "env_name", "env_value", "mount_path"), CLOUD)
def test_d32_cloud_provider_secret_volume_and_env(
    provider: str, name: str, env_name: str, env_value: str, mount_path: str, with_secret: bool
) -> None:
    backup_store: dict[str, Any] = {"provider": provider, "container": "bkt", "prefix": "p"}
    if with_secret:
        backup_store["secretRef"] = {"name": "backup-creds"}
    sts = build(make_etcd(backup={"store": backup_store}))
    br = container(sts, "backup-restore")
    assert f"--storage-provider={name}" in br["args"]
    assert br["env"] == [
        *POD_ENV,
        {"name": "STORAGE_CONTAINER", "value": "bkt"},
        {"name": env_name, "value": env_value},
    ]
    assert "initContainers" not in pod(sts)
    if with_secret:
        assert volume(sts, "etcd-backup-secret") == {
            "name": "etcd-backup-secret",
            "secret": {"secretName": "backup-creds", "defaultMode": 0o640},
        }
        assert mounts(sts, "backup-restore")[-1] == ("etcd-backup-secret", mount_path)
    else:  # ambient credentials (workload identity): no secret volume
        assert volume(sts, "etcd-backup-secret") is None
        assert all(n != "etcd-backup-secret" for n, _ in mounts(sts, "backup-restore"))


def test_d32_ecs_env_from_secret_keys() -> None:
    backup_store = {"provider": "dell", "container": "bkt", "prefix": "p", "secretRef": {"name": "ecs"}}
    sts = build(make_etcd(backup={"store": backup_store}))
    assert container(sts, "backup-restore")["env"] == [
        *POD_ENV,
        {"name": "STORAGE_CONTAINER", "value": "bkt"},
        *(
            {"name": env, "valueFrom": {"secretKeyRef": {"name": "ecs", "key": key, "optional": False}}}
            for env, key in [
                ("ECS_ENDPOINT", "endpoint"),
                ("ECS_ACCESS_KEY_ID", "accessKeyID"),
                ("ECS_SECRET_ACCESS_KEY", "secretAccessKey"),
            ]
        ),
    ]
    assert "--storage-provider=ECS" in container(sts, "backup-restore")["args"]
    assert volume(sts, "etcd-backup-secret") is None  # ECS mounts nothing
    with pytest.raises(ValueError, match="secretRef"):
        build(make_etcd(backup={"store": {"provider": "ECS", "prefix": "p"}}))


def test_d32_unsupported_or_missing_provider() -> None:
    with pytest.raises(ValueError, match="unsupported storage provider"):
        build(make_etcd(backup={"store": {"provider": "hetzner", "prefix": "p"}}))
    # A store without provider renders an empty provider, like upstream (no volume, no credentials).
    sts = build(make_etcd(backup={"store": {"prefix": "p"}}))
    assert "--storage-provider=" in container(sts, "backup-restore")["args"]
    assert container(sts, "backup-restore")["env"] == [*POD_ENV, {"name": "STORAGE_CONTAINER"}]  # "" is omitted
    assert [v["name"] for v in pod(sts)["volumes"]] == ["etcd-config-file"]


def _secret(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "secret": {"secretName": secret, "defaultMode": 0o640}}


def test_d33_tls_variants_volumes_mounts_args_probe_scheme() -> None:
    client = {**TLS, "tlsCASecretRef": {"name": "client-ca", "dataKey": "bundle.crt"}}
    peer = {"tlsCASecretRef": {"name": "peer-ca"}, "serverTLSSecretRef": {"name": "peer-server"}}
    backup_tls = {
        "tlsCASecretRef": {"name": "br-ca", "dataKey": "ca.pem"},
        "serverTLSSecretRef": {"name": "br-server"},
        "clientTLSSecretRef": {"name": "br-client"},
    }
    sts = build(make_etcd(etcd={"clientUrlTls": client, "peerUrlTls": peer}, backup={"tls": backup_tls}))
    assert container(sts, "etcd")["args"] == [
        "start-etcd",
        "--backup-restore-host-port=etcd-main-local:8080",
        "--etcd-server-name=etcd-main-local",
        "--backup-restore-tls-enabled=true",
        "--backup-restore-ca-cert-bundle-path=/var/etcdbr/ssl/ca/ca.pem",
        "--etcd-client-cert-path=/var/etcd/ssl/client/tls.crt",
        "--etcd-client-key-path=/var/etcd/ssl/client/tls.key",
        "--etcd-client-port=2379",
        "--etcd-wrapper-port=9095",
    ]
    assert container(sts, "backup-restore")["args"] == [
        "server",
        "--server-port=8080",
        "--etcd-defrag-timeout=15m",
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=30m",
        "--cacert=/var/etcd/ssl/ca/bundle.crt",
        "--cert=/var/etcd/ssl/client/tls.crt",
        "--key=/var/etcd/ssl/client/tls.key",
        "--insecure-transport=false",
        "--insecure-skip-tls-verify=false",
        "--endpoints=https://etcd-main-local:2379",
        "--service-endpoints=https://etcd-main-client:2379",
        "--server-cert=/var/etcdbr/ssl/server/tls.crt",
        "--server-key=/var/etcdbr/ssl/server/tls.key",
        *TAIL_ARGS,
        "--enable-member-lease-renewal=true",
        "--k8s-heartbeat-duration=10s",
        "--embedded-etcd-quota-bytes=8589934592",
    ]
    assert container(sts, "etcd")["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert mounts(sts, "etcd") == [
        (NAME, "/var/etcd/data"),
        ("etcd-ca", "/var/etcd/ssl/ca"),
        ("etcd-server-tls", "/var/etcd/ssl/server"),
        ("etcd-client-tls", "/var/etcd/ssl/client"),
        ("etcd-peer-ca", "/var/etcd/ssl/peer/ca"),
        ("etcd-peer-server-tls", "/var/etcd/ssl/peer/server"),
        ("backup-restore-ca", "/var/etcdbr/ssl/ca"),
    ]
    assert mounts(sts, "backup-restore") == [
        (NAME, "/var/etcd/data"),
        ("etcd-config-file", "/var/etcd/config/"),
        ("backup-restore-server-tls", "/var/etcdbr/ssl/server"),
        ("etcd-ca", "/var/etcd/ssl/ca"),
        ("etcd-client-tls", "/var/etcd/ssl/client"),
    ]
    assert pod(sts)["volumes"][1:] == [
        _secret("etcd-ca", "client-ca"),
        _secret("etcd-server-tls", "server"),
        _secret("etcd-client-tls", "c"),
        _secret("etcd-peer-ca", "peer-ca"),
        _secret("etcd-peer-server-tls", "peer-server"),
        _secret("backup-restore-ca", "br-ca"),
        _secret("backup-restore-server-tls", "br-server"),
        _secret("backup-restore-client-tls", "br-client"),  # defined, mounted nowhere (as upstream)
    ]

    # The probe speaks the wrapper's scheme: HTTPS exactly when client TLS is on, whatever backup TLS says.
    client_only = build(make_etcd(etcd={"clientUrlTls": client}))
    assert container(client_only, "etcd")["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    backup_only = build(make_etcd(backup={"tls": backup_tls}))
    assert container(backup_only, "etcd")["readinessProbe"]["httpGet"]["scheme"] == "HTTP"

    peer_only = build(make_etcd(etcd={"peerUrlTls": peer}))
    assert container(peer_only, "etcd")["args"] == ETCD_ARGS
    assert container(peer_only, "etcd")["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert mounts(peer_only, "etcd")[1:] == [
        ("etcd-peer-ca", "/var/etcd/ssl/peer/ca"),
        ("etcd-peer-server-tls", "/var/etcd/ssl/peer/server"),
    ]
    assert mounts(peer_only, "backup-restore") == [(NAME, "/var/etcd/data"), ("etcd-config-file", "/var/etcd/config/")]

    # A client TLS config without clientTLSSecretRef: the volume is still there, without a secret name.
    no_client = {"tlsCASecretRef": {"name": "ca"}, "serverTLSSecretRef": {"name": "server"}}
    assert volume(build(make_etcd(etcd={"clientUrlTls": no_client})), "etcd-client-tls") == {
        "name": "etcd-client-tls",
        "secret": {"defaultMode": 0o640},
    }


def test_d33_tls_change_detection_helpers() -> None:
    plain, peer_tls = make_etcd(), make_etcd(etcd={"peerUrlTls": TLS})
    plain_sts = build(plain)
    assert statefulset.tls_volume_mounts(plain_sts) == {"etcd": set(), "backup-restore": set()}
    assert statefulset.tls_config_in_sync(plain, plain_sts)
    assert not statefulset.tls_config_in_sync(peer_tls, plain_sts)
    assert not statefulset.peer_tls_reflected(peer_tls, plain_sts)
    peer_sts = build(peer_tls)
    assert statefulset.tls_volume_mounts(peer_sts)["etcd"] == {
        ("etcd-peer-ca", "/var/etcd/ssl/peer/ca"),
        ("etcd-peer-server-tls", "/var/etcd/ssl/peer/server"),
    }
    assert statefulset.tls_config_in_sync(peer_tls, peer_sts)

    # A StatefulSet from etcd-druid <= v0.22 with the old peer volume names.
    old = copy.deepcopy(peer_sts)
    for m in old["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]:
        m["name"] = {"etcd-peer-ca": "peer-url-ca-etcd", "etcd-peer-server-tls": "peer-url-etcd-server-tls"}.get(
            m["name"], m["name"]
        )
    assert statefulset.peer_tls_volume_mounts(old) == [
        ("peer-url-ca-etcd", "/var/etcd/ssl/peer/ca"),
        ("peer-url-etcd-server-tls", "/var/etcd/ssl/peer/server"),
    ]
    assert statefulset.peer_tls_reflected(peer_tls, old)  # peer TLS is on, under the old names
    assert not statefulset.tls_config_in_sync(peer_tls, old)  # but the mounts get renamed by a patch

    client_sts = build(make_etcd(etcd={"clientUrlTls": TLS}))
    assert statefulset.tls_volume_mounts(client_sts)["backup-restore"] == {
        ("etcd-ca", "/var/etcd/ssl/ca"),
        ("etcd-client-tls", "/var/etcd/ssl/client"),
    }
    sts = {"spec": {"replicas": 3}, "status": {"readyReplicas": 1}}
    assert statefulset.must_wait_for_ready_members(sts)
    assert not statefulset.must_wait_for_ready_members({"spec": {"replicas": 3}, "status": {"readyReplicas": 0}})
    assert not statefulset.must_wait_for_ready_members({"spec": {"replicas": 1}, "status": {}})


def test_c27_runtime_component_creation_disabled_statefulset() -> None:
    annotations = {"druid.gardener.cloud/disable-etcd-runtime-component-creation": ""}
    backup = {"store": {"provider": "aws", "container": "bkt", "prefix": "p", "secretRef": {"name": "s"}}}
    sts = build(make_etcd(3, meta_annotations=annotations, backup=backup), replicas=2)
    assert sts["spec"]["replicas"] == 0
    assert "serviceName" not in sts["spec"]
    assert "serviceAccountName" not in pod(sts)
    args = container(sts, "backup-restore")["args"]
    assert args == [
        "server",
        "--server-port=8080",
        "--storage-provider=S3",
        "--store-prefix=p",
        "--delta-snapshot-memory-limit=104857600",
        "--garbage-collection-policy=LimitBased",
        "--max-backups=7",
        "--compress-snapshots=true",
        "--compression-policy=gzip",
        "--etcd-snapshot-timeout=15m",
        "--etcd-defrag-timeout=15m",
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=30m",
        "--insecure-transport=true",
        "--insecure-skip-tls-verify=true",
        "--endpoints=http://etcd-main-local:2379",
        *TAIL_ARGS,
        "--embedded-etcd-quota-bytes=8589934592",
    ]
    assert set(statefulset.IMMUTABLE_SPEC_FIELDS) <= {"selector", "podManagementPolicy", "serviceName", *sts["spec"]}


# L69: image vector ---------------------------------------------------------------------------------------

REPO = "europe-docker.pkg.dev/gardener-project/public"


def test_l69_default_image_vector() -> None:
    assert images.load_images({}) == Images(
        etcd_wrapper=f"{REPO}/gardener/etcd-wrapper:v0.6.2",
        etcd_backup_restore=f"{REPO}/gardener/etcdbrctl:v0.41.2",
        alpine=f"{REPO}/3rd/alpine:3.21.3",
    )
    assert images.load_images({}, upgrade_etcd_version=True) == Images(
        etcd_wrapper=f"{REPO}/gardener/etcd-wrapper:v0.8.0",
        etcd_backup_restore=f"{REPO}/gardener/etcdbrctl:v0.43.0",
        alpine=f"{REPO}/3rd/alpine:3.21.3",
    )


def test_l69_image_vector_overwrite_and_spec_images(tmp_path: Path) -> None:
    override = tmp_path / "images.yaml"
    override.write_text(
        """\
images:
- name: etcd-wrapper
  repository: registry.local/etcd-wrapper
- name: etcd-backup-restore
  tag: "v9.9.9"
  repository: registry.local/etcdbrctl
- name: alpine
  ref: registry.local/alpine@sha256:0123
- name: something-else
  repository: registry.local/other
  tag: v1
"""
    )
    env = {"IMAGEVECTOR_OVERWRITE": str(override)}
    loaded = images.load_images(env)
    assert loaded == Images(
        etcd_wrapper="registry.local/etcd-wrapper:v0.6.2",  # a new repository keeps the default tag
        etcd_backup_restore="registry.local/etcdbrctl:v9.9.9",
        alpine="registry.local/alpine@sha256:0123",  # a ref replaces repository and tag
    )
    # The -next images are untouched by this overwrite.
    assert images.load_images(env, upgrade_etcd_version=True).etcd_wrapper == f"{REPO}/gardener/etcd-wrapper:v0.8.0"
    vector = images.image_vector(env)
    assert images.find_image(vector, "something-else") == "registry.local/other:v1"
    digest = [images.ImageSource(name="alpine", repository="r/alpine", tag="sha256:abc")]
    assert images.find_image(images.merge(vector, digest), "alpine") == "r/alpine@sha256:abc"

    # spec.etcd.image / spec.backup.image win over the vector; alpine always comes from the vector.
    opts = BuildOptions(images=loaded)
    sts = build(
        make_etcd(
            etcd={"image": "spec/wrapper:1"},
            backup={"image": "spec/br:1", "store": {"provider": "local", "container": "bkt", "prefix": "p"}},
        ),
        opts,
    )
    assert container(sts, "etcd")["image"] == "spec/wrapper:1"
    assert container(sts, "backup-restore")["image"] == "spec/br:1"
    assert pod(sts)["initContainers"][0]["image"] == "registry.local/alpine@sha256:0123"
    sts = build(make_etcd(), opts)
    assert container(sts, "etcd")["image"] == "registry.local/etcd-wrapper:v0.6.2"
    assert container(sts, "backup-restore")["image"] == "registry.local/etcdbrctl:v9.9.9"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("images:\n- repository: r\n  tag: t\n", "images[0].name: Required value"),
        ("images:\n- name: alpine\n  tag: t\n", "either image ref or repository+tag is required"),
        ("images:\n- name: alpine\n  ref: r\n  repository: x\n", "cannot specify repository when ref is set"),
        ("images:\n- name: alpine\n  repository: ''\n", "repository must not be empty"),
        ("images:\n- name: alpine\n  repository: r\n  tag: ''\n", "image tag must not be empty"),
        ("images: {name: alpine}\n", "images: expected a list"),
        ("images:\n- name: [alpine]\n  repository: r\n", "images[0].name: expected a string"),
        ("- just a list\n", "expected a mapping"),
        ("images: [\n", "not valid YAML"),
    ],
)
def test_l69_invalid_overwrite_file(tmp_path: Path, text: str, problem: str) -> None:
    override = tmp_path / "bad.yaml"
    override.write_text(text)
    with pytest.raises(images.ImageVectorError) as err:
        images.load_images({"IMAGEVECTOR_OVERWRITE": str(override)})
    assert problem in str(err.value)
    assert "IMAGEVECTOR_OVERWRITE=" in str(err.value)


def test_l69_overwrite_file_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(images.ImageVectorError, match="cannot read"):
        images.load_images({"IMAGEVECTOR_OVERWRITE": str(tmp_path / "nope.yaml")})
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert images.load_images({"IMAGEVECTOR_OVERWRITE": str(empty)}) == images.load_images({})
    assert images.load_images({"IMAGEVECTOR_OVERWRITE": ""}) == images.load_images({})


def test_l69_overwrite_values_typed_like_go(tmp_path: Path) -> None:
    override = tmp_path / "images.yaml"
    override.write_text("images:\n- name: alpine\n  repository: r/alpine\n  tag: 3.20\n")
    assert images.load_images({"IMAGEVECTOR_OVERWRITE": str(override)}).alpine == "r/alpine:3.2"
    override.write_text("images:\n- name: alpine\n  repository: r/alpine\n  architectures: [arm64]\n")
    # An arm64-only entry is a separate entry (different key) and not chosen for amd64.
    assert images.load_images({"IMAGEVECTOR_OVERWRITE": str(override)}).alpine == f"{REPO}/3rd/alpine:3.21.3"
    override.write_text("images:\n- name: alpine\n  repository: r/alpine\n  tag: t\n  architectures: [amd64]\n")
    assert images.load_images({"IMAGEVECTOR_OVERWRITE": str(override)}).alpine == "r/alpine:t"


@pytest.mark.parametrize("disabled", [False, True])
def test_variant_of_a_built_statefulset_equals_building_it_with_replicas_and_existing(disabled: bool) -> None:
    annotations = {"druid.gardener.cloud/disable-etcd-runtime-component-creation": ""} if disabled else None
    etcd = make_etcd(3, meta_annotations=annotations)
    desired = build(etcd)
    old = {
        "spec": {
            "selector": {"matchLabels": {"instance": NAME, "name": "etcd"}},
            "template": {"metadata": {"labels": {"instance": NAME, "name": "etcd"}}},
        }
    }
    matching = {"spec": {"selector": {"matchLabels": DEFAULTS}, "template": {"metadata": {"labels": {"x": "y"}}}}}
    before = copy.deepcopy(desired)
    for kwargs in ({}, {"replicas": 1}, {"existing": old}, {"existing": matching}, {"replicas": 5, "existing": old}):
        assert statefulset.variant(etcd, desired, **kwargs) == build(etcd, **kwargs), kwargs
    assert desired == before  # the planned object is left as it was


def test_component_takes_the_checksum_from_the_configmap_built_before_it() -> None:
    etcd = make_etcd(3, backup={"store": {"provider": "Local", "container": "bkt", "prefix": "p"}})
    cm = configmap.build(etcd, OPTS)
    built = statefulset.COMPONENT.build(etcd, OPTS, BuildInputs({"ConfigMap": cm}, backup_host_path="/srv/b"))
    assert built == statefulset.build(
        etcd, OPTS, configmap_checksum=configmap.checksum(cm[0]), backup_host_path="/srv/b"
    )
    assert statefulset.COMPONENT.build(etcd, OPTS, BuildInputs()) == statefulset.build(etcd, OPTS)


def test_d28_ordered_member_update_gate_makes_the_statefulset_ondelete_and_turns_the_gateway_on() -> None:
    """Off (the default) the StatefulSet and the etcd configuration stay etcd-druid's; on, the StatefulSet is
    OnDelete and etcd's JSON gateway is on unless the Etcd says otherwise (docs/member-updates.md)."""
    gated = BuildOptions(images=OPTS.images, feature_gates={"OrderedMemberUpdate": True})
    etcd = make_etcd(3)
    assert build(etcd)["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert build(etcd, gated)["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert configmap.etcd_config(etcd, OPTS)["enable-grpc-gateway"] is False
    assert configmap.etcd_config(etcd, gated)["enable-grpc-gateway"] is True
    explicit = make_etcd(3, etcd={"enableGRPCGateway": False})
    assert configmap.etcd_config(explicit, gated)["enable-grpc-gateway"] is False
