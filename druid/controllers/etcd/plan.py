"""The plan of a spec reconcile: every desired object, built and checked before anything is written.

A spec that cannot be built (e.g. an unsupported store provider) raises a DruidError with the failing
component's sync code and the field at fault. A spec whose values or derived names the API server would
refuse, whose quota etcd cannot use, or whose volume claims would be another Etcd's
(``components.validation``) raises ``ERR_INVALID_SPEC`` naming every field at fault. Referenced Secrets are
looked up in the metadata-only Secret cache; the missing ones are listed (the StatefulSet waits for them). For
a Local store with a ``secretRef`` the bucket host directory is read from that Secret (uncached: druid caches
no Secret data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from druid.api import admission
from druid.api import store as store_api
from druid.api.etcd import Etcd
from druid.api.facts import referenced_secrets
from druid.components import registry, validation
from druid.components import statefulset as sts_component
from druid.components import statefulset_volumes as vol
from druid.components.errors import OPERATION_SYNC, DruidError
from druid.controllers.etcd.context import Run
from druid.controllers.etcd.operation import ERR_INVALID_SPEC, ETCDS
from druid.runtime.client import ApiError
from druid.runtime.objects import PVCS, SECRETS, Obj, ObjectKey


@dataclass
class Plan:
    """Every desired object of a spec reconcile, built before anything is written."""

    objects: dict[str, list[Obj]] = field(default_factory=dict)  # kind -> desired objects
    backup_host_path: str | None = None
    missing_secrets: list[str] = field(default_factory=list)


def _field_of(message: str) -> str:
    if "storage provider" in message:
        return "spec.backup.store.provider"
    if "secretRef" in message:
        return "spec.backup.store.secretRef"
    return "spec"


def _invalid(kind: str, error: Exception) -> DruidError:
    code = registry.component(kind).error_codes.sync
    return DruidError(code, OPERATION_SYNC, f"Invalid spec for {kind}: {_field_of(str(error))}: {error}")


async def _read_backup_host_path(run: Run, etcd: Etcd, plan: Plan) -> None:
    """Local store with a secretRef: the host directory comes from the Secret's ``hostPath`` key.

    The Secret is read from the API server (druid caches Secrets by metadata only) once per resourceVersion the
    cache shows; Etcds sharing a store Secret, and later reconciles of one Etcd, reuse the derived path.
    """
    store = etcd.spec.backup.store
    name = store.secret_ref.name if store is not None and store.secret_ref else None
    if not name or name in plan.missing_secrets:
        return
    key = ObjectKey(etcd.namespace, name)
    cached = run.deps.secrets.get(key)  # metadata only: identity and resourceVersion
    hit, host_path = run.deps.host_paths.lookup(key, (cached or {}).get("metadata", {}).get("resourceVersion"))
    if hit:
        plan.backup_host_path = host_path
        return
    try:
        secret = await run.deps.kube.get_or_none(SECRETS, name, etcd.namespace)
    except ApiError as e:
        message = f"Error getting backup store secret {etcd.namespace}/{name}"
        raise DruidError(sts_component.ERR_SYNC_STATEFULSET, OPERATION_SYNC, message, e) from e
    if secret is None:
        plan.missing_secrets.append(name)
    else:
        plan.backup_host_path = vol.local_host_path(secret)
        run.deps.host_paths.remember(key, secret["metadata"].get("resourceVersion"), plan.backup_host_path)


async def make_plan(run: Run, etcd: Etcd) -> Plan:
    """Build all desired objects; raises :class:`DruidError` when the spec cannot be built."""
    deps = run.deps
    plan = Plan()
    plan.missing_secrets = [
        name for name in referenced_secrets(run.etcd) if deps.secrets.get(ObjectKey(etcd.namespace, name)) is None
    ]
    try:
        if registry.STATEFUL_SET in registry.sync_kinds(etcd) and vol.provider(etcd) == store_api.LOCAL:
            await _read_backup_host_path(run, etcd, plan)
    except ValueError as e:
        raise _invalid(registry.STATEFUL_SET, e) from e
    if forbidden := admission.violations(deps.admission, run.etcd, plan.backup_host_path):
        message = (
            f"The Etcd asks for what druid's admission policy forbids, nothing was written: {'; '.join(forbidden)}"
        )
        raise DruidError(ERR_INVALID_SPEC, OPERATION_SYNC, message)
    try:
        plan.objects = registry.desired_objects(etcd, deps.build_options, backup_host_path=plan.backup_host_path)
    except registry.InvalidSpec as e:
        raise _invalid(e.kind, e.error) from e
    problems = validation.spec_problems(etcd, plan.objects)
    if registry.STATEFUL_SET in plan.objects:
        etcds = deps.caches[ETCDS].by_index(validation.CLAIM_PREFIX_INDEX, validation.claim_prefix_index(run.etcd)[0])
        claims = [
            claim
            for name in validation.claim_names(etcd)
            if (claim := deps.caches[PVCS].get(ObjectKey(etcd.namespace, name))) is not None
        ]
        problems += validation.claim_problems(etcd, run.etcd, etcds, claims)
    if problems:
        raise invalid_spec(problems)
    return plan


def invalid_spec(problems: list[str]) -> DruidError:
    return DruidError(ERR_INVALID_SPEC, OPERATION_SYNC, f"Invalid spec, nothing was written: {'; '.join(problems)}")


def missing_secrets_error(etcd: Etcd, missing: list[str]) -> DruidError:
    return DruidError(
        sts_component.ERR_SYNC_STATEFULSET,
        OPERATION_SYNC,
        f"Secrets referenced by etcd {etcd.namespace}/{etcd.name} not found: {', '.join(missing)}; "
        "the StatefulSet is not created or updated until they exist",
    )
