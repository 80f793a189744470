"""Role ``druid.gardener.cloud:etcd:<n>`` for the etcd pods' backup-restore sidecar; found by name.

Druid deviation (issue 13, finding 6): etcd-druid's Role lets the pods get/list/watch/patch/update *every*
Lease and StatefulSet of the namespace, so anyone who can run code in an etcd pod could rewrite other
applications' StatefulSets. Druid's Role names the objects (``resourceNames``) and grants only the verbs
the sidecar uses. What etcd-backup-restore (v0.41.2, v0.43.0) does with the Kubernetes API — a direct
controller-runtime client, no cache, so no list or watch:

- Leases: GET and merge PATCH of its member Lease (named like the member) and of the full and delta
  snapshot Leases (heartbeat, compaction job); GET of each member's Lease (member_control,
  v0.41.2's member garbage collector);
- StatefulSets: GET of its own StatefulSet (the pod name without its ordinal: initial cluster state on
  scale-up, v0.41.2's member garbage collector); never a write;
- Pods: GET of member pods (v0.41.2's member garbage collector) — kept as etcd-druid grants it (read-only).

A LIST or WATCH cannot be narrowed by ``resourceNames`` (RBAC would deny the unnamed request), which is
why they are dropped rather than narrowed. etcd-wrapper does not use the Kubernetes API.
"""

from __future__ import annotations

from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.components import memberlease, snapshotlease
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.runtime.objects import ROLES, Obj

KIND = "Role"
RESOURCE = ROLES
COMPONENT_LABEL = c.COMPONENT_ROLE
ERROR_CODES = ErrorCodes("ERR_GET_ROLE", "ERR_SYNC_ROLE", "ERR_DELETE_ROLE")

LEASE_VERBS = ["get", "patch", "update"]
STATEFULSET_VERBS = ["get"]
POD_VERBS = ["get", "list", "watch"]


def rules(etcd: Etcd | None = None) -> list[Obj]:
    """The rules (upstream's order); with ``etcd`` narrowed to its own Leases and StatefulSet (without: the
    verbs alone, which is what druid itself must hold to grant them)."""
    leases: Obj = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": list(LEASE_VERBS)}
    statefulsets: Obj = {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": list(STATEFULSET_VERBS)}
    if etcd is not None:
        leases["resourceNames"] = [*memberlease.lease_names(etcd), *snapshotlease.lease_names(etcd)]
        statefulsets["resourceNames"] = [names.statefulset_name(etcd.name)]
    return [leases, statefulsets, {"apiGroups": [""], "resources": ["pods"], "verbs": list(POD_VERBS)}]


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    name = names.role_name(etcd.name)
    # ':' is not allowed in a label value, so the name label uses '-'.
    meta = metadata(etcd, name, COMPONENT_LABEL, app_name=name.replace(":", "-"))
    return [obj(RESOURCE.api_version, RESOURCE.kind, meta, rules=rules(etcd))]


COMPONENT = Component.of(globals(), object_names=lambda n: [names.role_name(n)])
