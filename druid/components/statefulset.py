"""StatefulSet ``<n>`` running the etcd members: an ``etcd`` (etcd-wrapper) and a ``backup-restore`` container.

``build`` is pure; what upstream reads from the cluster while building is passed in:

- ``configmap_checksum``: ``configmap.checksum`` of the synced ConfigMap, put on the pod template as
  ``checksum/etcd-configmap`` (left out when None, as upstream does without a checksum; the component takes
  it from the ConfigMap built before it);
- ``backup_host_path``: for the Local provider, the host directory of the buckets
  (``statefulset_volumes.local_host_path(store secret)``; None means ``/etc/gardener/local-backupbuckets``);
- ``replicas``: overrides ``spec.replicas`` (TLS roll-out keeps the current replicas, orphan adoption uses
  ``len(status.members)``); with ``disable-etcd-runtime-component-creation`` replicas are always 0;
- ``existing``: the StatefulSet in the cluster, if any: when its selector does not match the new pod labels,
  its template labels are merged in (so a TLS-only patch stays valid before the orphan re-creation).

``variant(etcd, desired, replicas=..., existing=...)`` derives those last two from an already built object.

For a TLS-only patch upstream leaves the immutable fields alone: drop ``IMMUTABLE_SPEC_FIELDS`` from the
built spec. Images: ``spec.etcd.image``/``spec.backup.image`` if set, else ``opts.images``
(``options.build_options`` lets the UpgradeEtcdVersion gate select the ``-next`` images). ``build`` raises
``ValueError`` for an unsupported store provider or ECS without ``secretRef``.

``updateStrategy`` is upstream's ``RollingUpdate``; with druid's ``OrderedMemberUpdate`` gate it is ``OnDelete``
and the Etcd controller replaces out-of-date pods itself (``controllers/etcd/memberupdate.py``).
"""

from __future__ import annotations

import copy
from typing import Any

from druid.api import constants as c
from druid.api import defaults, names, store
from druid.api.etcd import Etcd
from druid.components import configmap
from druid.components import statefulset_volumes as vol
from druid.components.base import BuildInputs, BuildOptions, Component, ErrorCodes, metadata, obj
from druid.components.statefulset_args import backup_restore_args, etcd_args
from druid.config import features
from druid.config.images import backup_restore_image, etcd_image
from druid.runtime.objects import STATEFULSETS, Obj

KIND = "StatefulSet"
RESOURCE = STATEFULSETS
COMPONENT_LABEL = c.COMPONENT_STATEFULSET
ERROR_CODES = ErrorCodes("ERR_GET_STATEFULSET", "ERR_SYNC_STATEFULSET", "ERR_DELETE_STATEFULSET")
ERR_GET_STATEFULSET, ERR_SYNC_STATEFULSET, ERR_DELETE_STATEFULSET = ERROR_CODES
ERR_GET_ETCDOPSTASK = "ERR_GET_ETCDOPSTASK"
ERR_CREATE_ETCDOPSTASK = "ERR_CREATE_ETCDOPSTASK"
ERR_GET_ETCD_WRAPPER_IMAGE = "ERR_GET_ETCD_WRAPPER_IMAGE"

CONTAINER_ETCD = "etcd"
CONTAINER_BACKUP_RESTORE = "backup-restore"
INIT_CONTAINER = "change-backup-bucket-permissions"
READINESS_PATH = "/readyz"
IMMUTABLE_SPEC_FIELDS = ("selector", "podManagementPolicy", "serviceName", "volumeClaimTemplates")

# TLS volume mounts compared to detect TLS changes (upstream's per-container sets; non-etcd containers use
# the backup-restore set), and the peer ones including the names of etcd-druid <= v0.22.
ETCD_TLS_VOLUMES = frozenset(
    {vol.ETCD_CA, vol.ETCD_SERVER_TLS, vol.ETCD_CLIENT_TLS, vol.ETCD_PEER_CA, vol.ETCD_PEER_SERVER_TLS}
    | {vol.BACKUP_RESTORE_CA}
)
BACKUP_RESTORE_TLS_VOLUMES = frozenset({vol.BACKUP_RESTORE_SERVER_TLS, vol.ETCD_CA, vol.ETCD_CLIENT_TLS})
PEER_TLS_VOLUMES = frozenset(
    {vol.ETCD_PEER_CA, vol.OLD_ETCD_PEER_CA, vol.ETCD_PEER_SERVER_TLS, vol.OLD_ETCD_PEER_SERVER_TLS}
)


def _selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics (nil matches everything)."""
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if not {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, False):
            return False
    return True


def pod_labels(etcd: Etcd, existing: Obj | None = None) -> dict[str, str]:
    """``spec.labels`` overlaid with the StatefulSet labels; plus the existing template labels if needed.

    The StatefulSet's own labels always win (etcd-druid lets an existing template's labels override them)."""
    sts_labels = metadata(etcd, names.statefulset_name(etcd.name), COMPONENT_LABEL)["labels"]
    labels = {**etcd.spec.labels, **sts_labels}
    spec = (existing or {}).get("spec") or {}
    if not _selector_matches(spec.get("selector"), labels):
        old = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        labels = {**labels, **old, **sts_labels}
    return labels


def _security_context(etcd: Etcd) -> dict[str, Any]:
    if etcd.spec.run_as_root:
        return {"runAsGroup": 0, "runAsNonRoot": False, "runAsUser": 0, "fsGroup": 0}
    user = defaults.NON_ROOT_USER
    return {
        "runAsGroup": user,
        "runAsNonRoot": True,
        "runAsUser": user,
        "fsGroup": user,
        "fsGroupChangePolicy": "OnRootMismatch",
    }


def _init_containers(etcd: Etcd, opts: BuildOptions, provider: str | None) -> list[dict[str, Any]]:
    backup_mount = vol.backup_mount(etcd)
    if provider != store.LOCAL or etcd.spec.run_as_root or backup_mount is None:
        return []
    user = defaults.NON_ROOT_USER
    return [
        {
            "name": INIT_CONTAINER,
            "image": opts.images.alpine,
            "imagePullPolicy": "IfNotPresent",
            "command": ["chown", "-R", f"{user}:{user}", vol.local_store_mount_path(etcd)],
            "volumeMounts": [backup_mount],
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "runAsGroup": 0,
                "runAsNonRoot": False,
                "runAsUser": 0,
            },
        }
    ]


def _port(name: str, number: int) -> dict[str, Any]:
    return {"name": name, "protocol": "TCP", "containerPort": number}


def readiness_scheme(etcd: Etcd) -> str:
    """The scheme etcd-wrapper serves ``/readyz`` with: HTTPS exactly when etcd's client TLS is on (the wrapper
    then serves with etcd's server certificate). Deliberate fix: upstream's builder derives the scheme from
    the backup-restore TLS setting, so client TLS without backup TLS never gets a Ready pod, and backup TLS
    without client TLS probes an HTTP server over HTTPS."""
    return "HTTP" if etcd.spec.etcd.client_url_tls is None else "HTTPS"


def _etcd_container(etcd: Etcd, opts: BuildOptions) -> dict[str, Any]:
    config = etcd.spec.etcd
    probe = {
        "httpGet": {
            "path": READINESS_PATH,
            "port": defaults.wrapper_port(config),
            "scheme": readiness_scheme(etcd),
        },
        "initialDelaySeconds": 15,
        "periodSeconds": 5,
        "failureThreshold": 5,
    }
    return {
        "name": CONTAINER_ETCD,
        "image": etcd_image(etcd, opts.images),
        "imagePullPolicy": "IfNotPresent",
        "args": etcd_args(etcd),
        "readinessProbe": probe,
        "ports": [_port("server", defaults.server_port(config)), _port("client", defaults.client_port(config))],
        "resources": defaults.etcd_resources(config),
        "securityContext": {"allowPrivilegeEscalation": False},
        "volumeMounts": vol.etcd_mounts(etcd),
    }


def _backup_restore_container(etcd: Etcd, opts: BuildOptions, provider: str | None) -> dict[str, Any]:
    backup = etcd.spec.backup
    return {
        "name": CONTAINER_BACKUP_RESTORE,
        "image": backup_restore_image(etcd, opts.images),
        "imagePullPolicy": "IfNotPresent",
        "args": backup_restore_args(etcd, provider),
        "ports": [_port("server", defaults.backup_port(backup))],
        "env": vol.backup_restore_env(etcd),
        "resources": defaults.backup_resources(backup),
        "securityContext": {"allowPrivilegeEscalation": False},
        "volumeMounts": vol.backup_restore_mounts(etcd),
    }


def _pod_spec(etcd: Etcd, opts: BuildOptions, backup_host_path: str | None) -> dict[str, Any]:
    spec, provider = etcd.spec, vol.provider(etcd)
    pod: dict[str, Any] = {
        "hostAliases": [{"ip": "127.0.0.1", "hostnames": [f"{etcd.name}-local"]}],
        "shareProcessNamespace": True,
    }
    if init := _init_containers(etcd, opts, provider):
        pod["initContainers"] = init
    pod["containers"] = [_etcd_container(etcd, opts), _backup_restore_container(etcd, opts, provider)]
    pod["securityContext"] = _security_context(etcd)
    constraints = spec.scheduling_constraints
    if constraints is not None and constraints.affinity is not None:
        pod["affinity"] = constraints.affinity
    if constraints is not None and constraints.topology_spread_constraints:
        pod["topologySpreadConstraints"] = constraints.topology_spread_constraints
    pod["volumes"] = vol.volumes(etcd, backup_host_path)
    if spec.priority_class_name:
        pod["priorityClassName"] = spec.priority_class_name
    if etcd.runtime_component_creation_enabled:
        pod["serviceAccountName"] = names.service_account_name(etcd.name)
    return pod


def _volume_claim_template(etcd: Etcd) -> dict[str, Any]:
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": defaults.storage_capacity(etcd.spec)}},
    }
    if etcd.spec.storage_class:
        claim["storageClassName"] = etcd.spec.storage_class
    return {"metadata": {"name": defaults.volume_claim_template_name(etcd)}, "spec": claim}


def build(
    etcd: Etcd,
    opts: BuildOptions,
    *,
    configmap_checksum: str | None = None,
    backup_host_path: str | None = None,
    replicas: int | None = None,
    existing: Obj | None = None,
) -> list[Obj]:
    runtime = etcd.runtime_component_creation_enabled
    annotations = dict(etcd.spec.annotations or {})
    if configmap_checksum is not None:
        annotations[c.ANNOTATION_CONFIGMAP_CHECKSUM] = configmap_checksum
    template_meta: dict[str, Any] = {"labels": pod_labels(etcd, existing)}
    if annotations:
        template_meta["annotations"] = annotations
    spec: dict[str, Any] = {
        "replicas": (etcd.spec.replicas if replicas is None else replicas) if runtime else 0,
        "selector": {"matchLabels": names.default_labels(etcd.name)},
        "template": {"metadata": template_meta, "spec": _pod_spec(etcd, opts, backup_host_path)},
        "volumeClaimTemplates": [_volume_claim_template(etcd)],
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "OnDelete" if opts.feature(features.ORDERED_MEMBER_UPDATE) else "RollingUpdate"},
    }
    if runtime:
        spec["serviceName"] = names.peer_service_name(etcd.name)
    name = names.statefulset_name(etcd.name)
    return [obj(RESOURCE.api_version, RESOURCE.kind, metadata(etcd, name, COMPONENT_LABEL), spec=spec)]


def variant(etcd: Etcd, desired: Obj, *, replicas: int | None = None, existing: Obj | None = None) -> Obj:
    """``desired`` (built without ``replicas``/``existing``) as ``build`` makes it with them."""
    out = copy.deepcopy(desired)
    spec = out["spec"]
    if replicas is not None and etcd.runtime_component_creation_enabled:
        spec["replicas"] = replicas
    if existing is not None:
        spec["template"]["metadata"]["labels"] = pod_labels(etcd, existing)
    return out


class _StatefulSetComponent(Component):
    def build(self, etcd: Etcd, opts: BuildOptions, inputs: BuildInputs) -> list[Obj]:
        """The StatefulSet's pod template carries the checksum of the ConfigMap built before it."""
        configmaps = inputs.built.get(configmap.KIND) or []
        checksum = configmap.checksum(configmaps[0]) if configmaps else None
        return build(etcd, opts, configmap_checksum=checksum, backup_host_path=inputs.backup_host_path)


COMPONENT = _StatefulSetComponent.of(globals(), object_names=lambda n: [names.statefulset_name(n)], runtime=False)


# TLS change detection (for the controller's TLS roll-out) ---------------------------------------------


def _containers(sts: Obj | None) -> list[dict[str, Any]]:
    return (((((sts or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []


def tls_volume_mounts(sts: Obj | None) -> dict[str, set[tuple[str, str]]]:
    """Per container of ``sts`` (built or from the cluster): its TLS mounts as ``(name, mountPath)``.

    Only the current volume names count here (as upstream); an StatefulSet still using the old peer names
    therefore differs from the desired one. ``peer_tls_volume_mounts`` recognises the old names.
    """
    out: dict[str, set[tuple[str, str]]] = {}
    for container in _containers(sts):
        known = ETCD_TLS_VOLUMES if container.get("name") == CONTAINER_ETCD else BACKUP_RESTORE_TLS_VOLUMES
        mounts = out.setdefault(container.get("name", ""), set())
        mounts |= {(m["name"], m["mountPath"]) for m in container.get("volumeMounts") or () if m["name"] in known}
    return out


def peer_tls_volume_mounts(sts: Obj | None) -> list[tuple[str, str]]:
    """Peer TLS mounts of the etcd container, under the current or the old (<= v0.22) volume names."""
    for container in _containers(sts):
        if container.get("name") == CONTAINER_ETCD:
            return [
                (m["name"], m["mountPath"])
                for m in container.get("volumeMounts") or ()
                if m["name"] in PEER_TLS_VOLUMES
            ]
    return []


def desired_tls_volume_mounts(etcd: Etcd) -> dict[str, set[tuple[str, str]]]:
    def pairs(mounts: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(m["name"], m["mountPath"]) for m in mounts}

    return {
        CONTAINER_ETCD: pairs(vol.etcd_tls_mounts(etcd)),
        CONTAINER_BACKUP_RESTORE: pairs(vol.backup_restore_tls_mounts(etcd)),
    }


def tls_config_in_sync(etcd: Etcd, sts: Obj) -> bool:
    """The TLS mounts of both containers of ``sts`` match what ``etcd`` asks for."""
    current, desired = tls_volume_mounts(sts), desired_tls_volume_mounts(etcd)
    return all(current.get(name, set()) == mounts for name, mounts in desired.items())


def peer_tls_reflected(etcd: Etcd, sts: Obj) -> bool:
    """Upstream's check: as many peer TLS mounts on the etcd container as desired."""
    return len(peer_tls_volume_mounts(sts)) == len(vol.peer_tls_mounts(etcd))


def must_wait_for_ready_members(sts: Obj) -> bool:
    """Multi-member StatefulSet with some but not all replicas ready: unsafe to roll out peer TLS."""
    replicas = (sts.get("spec") or {}).get("replicas")
    ready = (sts.get("status") or {}).get("readyReplicas") or 0
    return replicas is not None and replicas > 1 and 0 < ready < replicas
