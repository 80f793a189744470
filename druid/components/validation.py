"""What druid checks of an Etcd before it writes anything for it; each problem is ``<Etcd field>: <what is wrong>``.

The controller reports problems as one ``ERR_INVALID_SPEC`` error and writes nothing (no finalizer, no object);
``druid render`` refuses the Etcd with the same lines.

- **Values copied into objects**: ``spec.labels`` and ``spec.etcd.clientService.labels`` must be valid label
  keys and values, ``spec.annotations`` and ``spec.etcd.clientService.annotations`` valid annotation keys.
- **Names and labels druid derives**: every built object must pass the API server's rules
  (``runtime.validation.object_problems``: names by kind, label values of at most 63 characters, ...). A
  problem there is reported against the Etcd field it comes from: ``spec.volumeClaimTemplate`` for the claim
  template, ``metadata.name`` and ``spec.memberNamePrefix`` for member Leases, ``metadata.name`` otherwise
  (e.g. an Etcd name of more than 37 characters makes the Role's ``app.kubernetes.io/name`` label value
  ``druid.gardener.cloud-etcd-<name>`` longer than 63 characters).
- **Quota**: ``spec.etcd.quota`` must be positive (etcd reads a negative quota as "no quota" and 0 as its own
  default) and at most :data:`MAX_QUOTA_BYTES`. etcd only warns above its suggested maximum of 8 GiB; its hard
  limit comes from its database: etcd memory-maps the backend file with 10 % headroom over the quota, and
  bbolt refuses to map more than 0xFFFFFFFFFFFF bytes (256 TiB) on 64-bit platforms, so a larger quota makes
  etcd fail to open its database.
- **Volume claims of other Etcds** (:func:`claim_problems`): the StatefulSet controller names claims
  ``<volumeClaimTemplate>-<statefulset>-<ordinal>``, so Etcd ``a-b`` (template ``a-b``) and Etcd ``b-a-b``
  with template ``a`` would share ``a-b-a-b-0``. An Etcd is refused when another Etcd of the namespace created
  before it (by creationTimestamp, then name) has the same claim name prefix, or when a claim with one of its
  claim names exists that is labelled as another Etcd's (``app.kubernetes.io/part-of``).
  Not covered: a claim of that name created by something else than druid (no druid labels) cannot be told
  from claims created before etcd-druid labelled them, and is used as etcd-druid would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from druid.api import constants as c
from druid.api import defaults, facts, names
from druid.api.etcd import Etcd
from druid.runtime import validation
from druid.runtime.objects import Obj

BBOLT_MAX_MAP_SIZE = 0xFFFFFFFFFFFF
MAX_QUOTA_BYTES = BBOLT_MAX_MAP_SIZE * 10 // 11
"""The largest quota whose memory map (quota plus a tenth) bbolt can still map."""

_VCT = "spec.volumeClaimTemplates"


def _user_problems(etcd: Etcd) -> list[str]:
    settings = etcd.spec.etcd.client_service
    found = [
        *validation.labels_problems(etcd.spec.labels, "spec.labels"),
        *validation.annotation_keys_problems(etcd.spec.annotations, "spec.annotations"),
        *validation.labels_problems(settings.labels if settings else None, "spec.etcd.clientService.labels"),
        *validation.annotation_keys_problems(
            settings.annotations if settings else None, "spec.etcd.clientService.annotations"
        ),
    ]
    return [f"{path}: {message}" for path, message in found]


def quota_problems(etcd: Etcd) -> list[str]:
    if etcd.spec.etcd.quota is None:
        return []
    quota = defaults.quota_bytes(etcd.spec.etcd)
    if quota <= 0:
        return [f"spec.etcd.quota: must be positive (is {etcd.spec.etcd.quota})"]
    if quota > MAX_QUOTA_BYTES:
        return [f"spec.etcd.quota: must be at most {MAX_QUOTA_BYTES} bytes, etcd's largest (is {etcd.spec.etcd.quota})"]
    return []


def _source_field(kind: str, path: str) -> str:
    if path.startswith(_VCT):
        return "spec.volumeClaimTemplate"
    if kind == "Lease" and path.startswith("metadata"):
        return "metadata.name, spec.memberNamePrefix"
    return "metadata.name"


def derived_problems(desired: Mapping[str, list[Obj]]) -> list[str]:
    out = []
    for objects in desired.values():
        for obj in objects:
            kind, name = obj.get("kind", ""), obj["metadata"].get("name")
            for path, message in validation.object_problems(obj):
                out.append(f"{_source_field(kind, path)}: {kind} {name}: {path}: {message}")
    return out


def spec_problems(etcd: Etcd, desired: Mapping[str, list[Obj]]) -> list[str]:
    """Problems of the values copied from the spec, the quota and the built objects (see the module docstring).

    A value copied from the spec that is invalid is reported once, against its own field (not again for
    every object it went into)."""
    user = _user_problems(etcd)
    return [*user, *quota_problems(etcd)] if user else [*quota_problems(etcd), *derived_problems(desired)]


def _created(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or "~"), str(meta.get("name") or ""))


CLAIM_PREFIX_INDEX = "claim-prefix"
"""Index of an Etcd cache by ``<namespace>/<claim name prefix>``: the only Etcds :func:`claim_problems` must
look at, found without walking the namespace (a walk per reconcile made N Etcds cost N² steps)."""


def claim_prefix_index(etcd_raw: Obj) -> list[str]:
    return [f"{(etcd_raw.get('metadata') or {}).get('namespace') or ''}/{facts.claim_name_prefix(etcd_raw)}"]


def claim_names(etcd: Etcd) -> set[str]:
    """The names of the member claims the StatefulSet controller will create for this Etcd."""
    template = defaults.volume_claim_template_name(etcd)
    return {names.claim_name(template, names.statefulset_name(etcd.name), i) for i in range(etcd.spec.replicas)}


def claim_problems(etcd: Etcd, etcd_raw: Obj, etcds: Iterable[Obj], claims: Iterable[Obj]) -> list[str]:
    """Claims this Etcd would share with another Etcd (see the module docstring); ``etcds`` and ``claims`` are
    the namespace's Etcds and PVCs (any may be this Etcd's own), or any part of them holding those of this
    Etcd's claim name prefix (:data:`CLAIM_PREFIX_INDEX`) and claim names (:func:`claim_names`)."""
    prefix = facts.claim_name_prefix(etcd_raw)
    mine = _created(etcd_raw)
    out = []
    for other in sorted(etcds, key=_created):  # oldest first, whatever order the caller found them in
        meta = other.get("metadata") or {}
        if meta.get("name") == etcd.name or facts.claim_name_prefix(other) != prefix:
            continue
        if _created(other) < mine:
            out.append(
                f"spec.volumeClaimTemplate: the claims {prefix}-<ordinal> of this Etcd would be those of Etcd "
                f"{meta.get('name')} (created earlier); choose another volumeClaimTemplate"
            )
    wanted = claim_names(etcd)
    for claim in claims:
        meta = claim.get("metadata") or {}
        labels = meta.get("labels") or {}
        owner = labels.get(c.LABEL_PART_OF)
        if meta.get("name") in wanted and owner is not None and owner != etcd.name:
            out.append(
                f"spec.volumeClaimTemplate: PersistentVolumeClaim {meta.get('name')} belongs to Etcd {owner} "
                f"({c.LABEL_PART_OF}); choose another volumeClaimTemplate"
            )
    return out
