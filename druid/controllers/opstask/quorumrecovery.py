"""The QuorumLossRecovery EtcdOpsTask (druid extension): rebuild an Etcd that lost quorum for good from its backup
store, in recorded, resumable steps. Guarantees and usage: docs/quorum-loss-recovery.md.

Contract:

- **Admission** (:func:`admission`, pure; nothing is written when it refuses): the Etcd exists and has
  ``spec.replicas`` > 0 and a backup store (``spec.backup.store``); its ``Ready`` condition is not True and has
  not been since ``lastTransitionTime`` for at least ``minQuorumLossDuration`` (default 10m; ``force`` skips only
  this duration); the spec-reconcile suspend annotation is absent or already names this task. The reconciler
  rejects a second unfinished task for the same Etcd before the handler is asked (``ERR_DUPLICATE_TASK``), so
  no other task runs for it. Admission records ``status.quorumLossRecovery``: ``originalReplicas`` and the
  data-loss window — from the last snapshot backup-restore reported (the later ``renewTime`` of the delta and
  full snapshot Leases) to the loss of quorum (Ready's ``lastTransitionTime``).
- **Steps** (:data:`STEPS`, in order; each recorded in ``status.steps`` with start and finish times):

  1. ``HoldReconcile``: set ``druid.gardener.cloud/suspend-etcd-spec-reconcile: EtcdOpsTask/<task>``; done once
     it is there and no spec reconcile of the Etcd is Processing (a run that started before the hold finishes
     first, so it cannot re-apply the StatefulSet behind the task's back).
  2. ``ScaleToZero``: StatefulSet ``spec.replicas`` 0; done when no member pod exists.
  3. ``RemoveVolumes``: delete the member PVCs (``<claim template>-<sts>-<i>``, i < originalReplicas) and the
     member Leases (backup-restore reads a member Lease's holder as "this member was in the cluster" and would
     then try to rejoin the dead cluster instead of restoring; druid re-creates the Leases when reconciling);
     refused while a member pod exists; done when all are gone.
  4. ``SingleMemberConfig``: rewrite the ConfigMap's ``etcd.conf.yaml`` for member 0 alone (``initial-cluster``,
     ``initial-advertise-peer-urls``, ``advertise-client-urls``) with etcd's JSON gateway on. backup-restore's
     initializer restores from the store only for a one-member ``initial-cluster``; with more members and an
     empty data directory it tries to join the existing cluster (etcd-druid's manual runbook edits the same
     three fields). Refused while a member pod exists; done when the ConfigMap names one member.
  5. ``RestoreOne``: StatefulSet ``spec.replicas`` 1; pod 0 starts with an empty volume and backup-restore
     restores the latest full snapshot and the delta snapshots after it; done when pod 0 is Ready.
  6. ``Verify``: ask member 0 through etcd's JSON gateway for its status and member list; done when it is the only
     member and its revision is > 0 (recorded: ``restoredRevision``, ``clusterID``, ``restoredMemberID``).
  7. ``ReleaseReconcile``: remove the suspend annotation (only while it names this task) and set
     ``druid.gardener.cloud/operation: reconcile``. druid's normal reconcile then renders the ConfigMap for
     ``spec.replicas`` members and scales the StatefulSet up: the new members join the restored one as learners
     and are promoted by backup-restore (the scale-up path).
  8. ``ScaleBack``: done when the StatefulSet has originalReplicas, the Etcd is Ready with AllMembersReady,
     originalReplicas members in its status and ClusterIDMismatch not True.

- **Resumable.** Which step runs is read from ``status.steps`` (the first not Succeeded) and whether it is done is
  read from the world (:class:`World`), never from memory; every action is idempotent, so a druid restart, a
  lost status write or a repeated poll continue where the task stood. No step sleeps: the task is polled.
- **Failure** stops the task (Failed) at the step that failed, with a message saying what to do. Before
  ``ReleaseReconcile`` the hold stays on (never released silently); every step up to ``Verify`` fails if the
  hold was removed or replaced meanwhile. Each step has a deadline (:data:`DEADLINES`) from its start.
- ``cleanup`` does nothing (a finished or deleted task leaves the Etcd as it is).

The task runs inside druid with druid's identity, so druid's component-protection webhook lets its writes
through; it changes only objects the Etcd controls (the StatefulSet's replicas, the ConfigMap's data, PVCs and
Leases it deletes) and never adopts anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import structlog
import yaml
from pydantic import ValidationError

from druid import etcdgateway
from druid.api import constants as c
from druid.api import facts, names
from druid.api.etcd import Etcd
from druid.api.opstask import QuorumLossRecoveryConfig
from druid.api.resources import ETCDS
from druid.backuprestore import BackupRestoreError
from druid.components import configmap as cm_component
from druid.components.errors import DruidError
from druid.controllers.opstask.handlers import ERR_BACKUP_NOT_ENABLED, ERR_GET_ETCD, HandlerDeps, TaskRef
from druid.controllers.opstask.status import Result, record_step
from druid.gocompat import goyaml
from druid.gocompat.duration import format_seconds
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import Clock, SystemClock, parse_time
from druid.runtime.objects import CONFIGMAPS, LEASES, PODS, PVCS, STATEFULSETS, Obj, pod_ready

log = structlog.get_logger(__name__)

QUORUM_LOSS_RECOVERY = "QuorumLossRecovery"
STATUS_FIELD = "quorumLossRecovery"

ERR_QUORUM_NOT_LOST = "ERR_QUORUM_NOT_LOST"
ERR_RECONCILE_SUSPENDED = "ERR_RECONCILE_SUSPENDED"
ERR_ETCD_HIBERNATED = "ERR_ETCD_HIBERNATED"
ERR_RECOVERY_STEP = "ERR_QUORUM_LOSS_RECOVERY_STEP"

HOLD = "HoldReconcile"
SCALE_TO_ZERO = "ScaleToZero"
REMOVE_VOLUMES = "RemoveVolumes"
SINGLE_MEMBER_CONFIG = "SingleMemberConfig"
RESTORE_ONE = "RestoreOne"
VERIFY = "Verify"
RELEASE = "ReleaseReconcile"
SCALE_BACK = "ScaleBack"
STEPS = (HOLD, SCALE_TO_ZERO, REMOVE_VOLUMES, SINGLE_MEMBER_CONFIG, RESTORE_ONE, VERIFY, RELEASE, SCALE_BACK)
HELD_STEPS = frozenset(STEPS[: STEPS.index(RELEASE)])
"""Steps that must run under this task's hold."""

DEADLINES: dict[str, float] = {
    HOLD: 120,
    SCALE_TO_ZERO: 300,
    REMOVE_VOLUMES: 300,
    SINGLE_MEMBER_CONFIG: 60,
    RESTORE_ONE: 900,
    VERIFY: 300,
    RELEASE: 120,
    SCALE_BACK: 900,
}
"""Seconds a step may take from its start before the task fails at it."""

POLL = 2.0
NEXT = 0.1  # a step finished: go on to the next one at once

Kind = Literal["done", "act", "wait", "fail"]


def hold_value(task: str) -> str:
    """The suspend annotation's value while task ``task`` holds reconciliation."""
    return f"{c.KIND_ETCD_OPS_TASK}/{task}"


# ---------------------------------------------------------------------------------------------- admission


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


def admission(etcd: Etcd, config: QuorumLossRecoveryConfig, task: str, now: dt.datetime) -> Refusal | None:
    """Why the recovery must not start (None: it may)."""
    ref = f"{etcd.namespace}/{etcd.name}"
    if not etcd.backup_store_enabled:
        return Refusal(ERR_BACKUP_NOT_ENABLED, f"NoBackupStore: etcd {ref} has no backup store to restore from")
    if etcd.spec.replicas < 1:
        return Refusal(ERR_ETCD_HIBERNATED, f"Hibernated: etcd {ref} has spec.replicas 0; there is no quorum to lose")
    ready = etcd.condition(c.CONDITION_READY)
    if ready is None or ready.status == c.CONDITION_TRUE:
        seen = "no Ready condition" if ready is None else f"Ready True since {ready.last_transition_time}"
        return Refusal(ERR_QUORUM_NOT_LOST, f"QuorumNotLost: etcd {ref} has {seen}")
    if not config.force:
        since = parse_time(ready.last_transition_time) if ready.last_transition_time else now
        lost = (now - since).total_seconds()
        if lost < config.min_loss_seconds:
            return Refusal(
                ERR_QUORUM_NOT_LOST,
                f"QuorumNotLost: etcd {ref} has been Ready {ready.status} ({ready.reason}) for "
                f"{format_seconds(round(lost))} only, less than minQuorumLossDuration "
                f"{format_seconds(config.min_loss_seconds)} (or set force)",
            )
    holder = (etcd.metadata.annotations or {}).get(c.ANNOTATION_SUSPEND_SPEC_RECONCILE)
    if holder is not None and holder != hold_value(task):
        return Refusal(
            ERR_RECONCILE_SUSPENDED,
            f"ReconcileSuspended: etcd {ref} already carries {c.ANNOTATION_SUSPEND_SPEC_RECONCILE}={holder!r}; someone "
            "else holds it (a manual recovery?). Remove it (druid reconciliation resume) if nobody does",
        )
    return None


def data_loss_window(etcd: Obj, snapshot_leases: Sequence[Obj | None]) -> dict[str, str]:
    """From the last snapshot (latest renewTime of the snapshot Leases) to the loss of quorum (Ready's
    lastTransitionTime); an end without a snapshot is left out."""
    renewals = [str(x["spec"]["renewTime"]) for x in snapshot_leases if x and (x.get("spec") or {}).get("renewTime")]
    window: dict[str, str] = {}
    if renewals:
        window["start"] = max(renewals, key=parse_time)
    for cond in facts.at(etcd, "status", "conditions") or ():
        if cond.get("type") == c.CONDITION_READY and cond.get("lastTransitionTime"):
            window["end"] = str(cond["lastTransitionTime"])
    return window


# ---------------------------------------------------------------------------------------------- steps (pure)


@dataclass(frozen=True)
class Restored:
    """Member 0 as it reports itself through etcd's JSON gateway (None fields: not reachable)."""

    revision: int = 0
    cluster_id: int = 0
    member_id: int = 0
    members: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class World:
    """What the task observed in one poll."""

    now: dt.datetime
    holder: str | None = None
    """Value of the suspend annotation (None: absent)."""
    reconcile_running: bool = False
    sts_replicas: int | None = None
    """The StatefulSet's spec.replicas (None: no StatefulSet)."""
    pods: Mapping[str, bool] = field(default_factory=dict)
    """Member pods → Ready."""
    pvcs: tuple[str, ...] = ()
    leases: tuple[str, ...] = ()
    config_members: tuple[str, ...] | None = None
    """Member names of the ConfigMap's initial-cluster (None: no ConfigMap)."""
    restored: Restored | None = None
    etcd_ready: bool = False
    all_members_ready: bool = False
    status_members: int = 0
    cluster_id_mismatch: bool = False


@dataclass(frozen=True)
class Plan:
    """The facts of the Etcd the steps need (fixed at admission)."""

    task: str
    etcd: str
    namespace: str
    replicas: int
    member0: str
    """Member name of pod 0 (the one that restores)."""
    pod0: str


@dataclass(frozen=True)
class Decision:
    step: str
    kind: Kind
    message: str


def current_step(steps: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The first step of :data:`STEPS` that has not Succeeded (None: all have)."""
    succeeded = {s.get("name") for s in steps or () if s.get("state") == "Succeeded"}
    return next((name for name in STEPS if name not in succeeded), None)


def _started(steps: Sequence[Mapping[str, Any]] | None, name: str) -> dt.datetime | None:
    entry = next((s for s in reversed(list(steps or ())) if s.get("name") == name), None)
    started = (entry or {}).get("startedAt")
    return parse_time(started) if started else None


def _release_hint(plan: Plan) -> str:
    return (
        f"spec reconciliation of etcd {plan.namespace}/{plan.etcd} stays held: once the cause is fixed, remove "
        f"annotation {c.ANNOTATION_SUSPEND_SPEC_RECONCILE} (druid reconciliation resume) and start a new recovery task"
    )


WHAT_TO_DO: dict[str, str] = {
    HOLD: "a spec reconcile of the Etcd did not finish: look at its status.lastOperation and druid's log",
    SCALE_TO_ZERO: "member pods did not go away: look at the pods (finalizers, a stuck node) and the StatefulSet",
    REMOVE_VOLUMES: "member PVCs or Leases did not go away: look at their finalizers (pvc-protection waits for pods)",
    SINGLE_MEMBER_CONFIG: "the ConfigMap could not be rewritten: look at druid's log",
    RESTORE_ONE: "pod 0 did not become Ready: look at the backup-restore container's log of pod 0 (restore errors, "
    "store credentials, snapshot listing)",
    VERIFY: "member 0 did not answer as a one-member cluster with data: look at pod 0's etcd log and its member list",
    RELEASE: "the suspend annotation could not be removed: remove it by hand",
    SCALE_BACK: "the new members did not join and become Ready: look at the backup-restore logs of the new pods "
    "(member add as learner, promotion) and the Etcd's conditions",
}


def decide(plan: Plan, steps: Sequence[Mapping[str, Any]] | None, world: World) -> Decision | None:
    """What to do about the current step given the observed world (None: every step has succeeded)."""
    step = current_step(steps)
    if step is None:
        return None
    decision = _decide(plan, step, world)
    if decision.kind in ("act", "wait"):
        started = _started(steps, step)
        if started is not None and (world.now - started).total_seconds() > DEADLINES[step]:
            limit = format_seconds(DEADLINES[step])
            message = f"{step} did not finish within {limit} ({decision.message}): {WHAT_TO_DO[step]}"
            decision = Decision(step, "fail", message)
    if decision.kind == "fail" and step in HELD_STEPS:
        return replace(decision, message=f"{decision.message}; {_release_hint(plan)}")
    return decision


def _decide(plan: Plan, step: str, w: World) -> Decision:
    mine = hold_value(plan.task)
    if step in HELD_STEPS and step != HOLD and w.holder != mine:
        found = "removed" if w.holder is None else f"replaced by {w.holder!r}"
        return Decision(
            step, "fail", f"the hold ({c.ANNOTATION_SUSPEND_SPEC_RECONCILE}) was {found} during the recovery"
        )
    running = sorted(w.pods)
    if step == HOLD:
        if w.holder is not None and w.holder != mine:
            return Decision(step, "fail", f"{c.ANNOTATION_SUSPEND_SPEC_RECONCILE} is held by {w.holder!r}")
        if w.holder is None:
            return Decision(step, "act", "setting the hold")
        if w.reconcile_running:
            return Decision(step, "wait", "waiting for the spec reconcile in progress to finish")
        return Decision(step, "done", "spec reconciliation held")
    if step == SCALE_TO_ZERO:
        if w.sts_replicas is None:
            return Decision(step, "fail", "the StatefulSet is gone")
        if w.sts_replicas != 0:
            return Decision(step, "act", f"scaling the StatefulSet from {w.sts_replicas} to 0")
        if running:
            return Decision(step, "wait", f"waiting for pods {', '.join(running)} to go")
        return Decision(step, "done", "no member pod left")
    if step in (REMOVE_VOLUMES, SINGLE_MEMBER_CONFIG) and (running or w.sts_replicas):
        what = (
            f"member pods {', '.join(running)} exist" if running else f"the StatefulSet has {w.sts_replicas} replicas"
        )
        return Decision(step, "fail", f"{what} again: refusing to touch member data while a member may run")
    if step == REMOVE_VOLUMES:
        left = [*w.pvcs, *w.leases]
        if left:
            return Decision(step, "act", f"deleting {', '.join(left)}")
        return Decision(step, "done", "member PVCs and Leases removed")
    if step == SINGLE_MEMBER_CONFIG:
        if w.config_members is None:
            return Decision(step, "fail", "the ConfigMap is gone")
        if list(w.config_members) != [plan.member0]:
            return Decision(
                step, "act", f"initial-cluster {', '.join(w.config_members) or '(empty)'} -> {plan.member0}"
            )
        return Decision(step, "done", f"initial-cluster is {plan.member0} alone")
    if step == RESTORE_ONE:
        if w.sts_replicas is None:
            return Decision(step, "fail", "the StatefulSet is gone")
        if w.sts_replicas != 1:
            return Decision(step, "act", f"scaling the StatefulSet from {w.sts_replicas} to 1")
        if not w.pods.get(plan.pod0):
            return Decision(step, "wait", f"waiting for {plan.pod0} to restore and become Ready")
        return Decision(step, "done", f"{plan.pod0} Ready")
    if step == VERIFY:
        r = w.restored
        if r is None or r.error is not None:
            return Decision(step, "wait", f"asking {plan.pod0}: {r.error if r else 'no answer yet'}")
        if list(r.members) != [plan.member0]:
            return Decision(step, "fail", f"{plan.pod0} lists members {', '.join(r.members)}, not {plan.member0} alone")
        if r.revision <= 0:
            return Decision(step, "fail", f"{plan.pod0} has revision {r.revision}: nothing was restored")
        return Decision(step, "done", f"revision {r.revision}, cluster ID {r.cluster_id:x}, one member")
    if step == RELEASE:
        if w.holder is None:
            return Decision(step, "done", "spec reconciliation released")
        if w.holder != mine:
            return Decision(step, "fail", f"the hold was replaced by {w.holder!r}; not releasing someone else's hold")
        return Decision(step, "act", "removing the hold and requesting a reconcile")
    # SCALE_BACK
    ready = sum(1 for ok in w.pods.values() if ok)
    if w.cluster_id_mismatch:
        return Decision(step, "fail", "ClusterIDMismatch is True: a member belongs to another cluster")
    if (
        w.sts_replicas == plan.replicas
        and ready == plan.replicas
        and w.etcd_ready
        and w.all_members_ready
        and w.status_members == plan.replicas
    ):
        return Decision(step, "done", f"{plan.replicas} members Ready")
    return Decision(
        step,
        "wait",
        f"waiting for {plan.replicas} members: StatefulSet replicas {w.sts_replicas}, {ready} pods Ready, "
        f"{w.status_members} members in status, Etcd Ready {w.etcd_ready}",
    )


def single_member_config(text: str, member: str) -> str:
    """``etcd.conf.yaml`` for ``member`` alone, with etcd's JSON gateway on (see step 4)."""
    config = yaml.safe_load(text) or {}
    entries = [e for e in str(config.get("initial-cluster") or "").split(",") if e.partition("=")[0] == member]
    config["initial-cluster"] = ",".join(entries)
    for key in ("initial-advertise-peer-urls", "advertise-client-urls"):
        if isinstance(config.get(key), dict):
            config[key] = {k: v for k, v in config[key].items() if k == member}
    config["enable-grpc-gateway"] = True
    return goyaml.marshal(config)


def config_members(text: str) -> tuple[str, ...]:
    config = yaml.safe_load(text) or {}
    return tuple(e.partition("=")[0] for e in str(config.get("initial-cluster") or "").split(",") if e)


# ---------------------------------------------------------------------------------------------- I/O shell


def _error(phase: str, code: str, message: str) -> DruidError:
    return DruidError(code, phase, message, RuntimeError(message))


class QuorumLossRecoveryHandler:
    def __init__(self, deps: HandlerDeps, task: TaskRef, clock: Clock | None = None) -> None:
        config = task.spec.config.quorum_loss_recovery
        assert config is not None
        self.kube: Kube = deps.kube
        self.client = deps.backup_restore
        self.config = config
        self.task = task
        self.namespace = task.namespace
        self.etcd_name = task.spec.etcd_name or ""
        self.clock = clock or SystemClock()
        self.admitted: dict[str, Any] = {}

    # -------------------------------------------------------------- phases

    async def admit(self) -> Result:
        phase = c.OPERATION_TYPE_ADMIT
        etcd = await self._etcd(phase)
        if isinstance(etcd, Result):
            return etcd
        obj, model = etcd
        refusal = admission(model, self.config, self.task.name, self.clock.now())
        if refusal is not None:
            return Result(refusal.message, _error(phase, refusal.code, refusal.message))
        leases = [
            await self.kube.get_or_none(LEASES, lease, self.namespace)
            for lease in (names.delta_snapshot_lease_name(model.name), names.full_snapshot_lease_name(model.name))
        ]
        self.admitted = {"originalReplicas": model.spec.replicas, "dataLossWindow": data_loss_window(obj, leases)}
        return Result("Admit check passed", status={STATUS_FIELD: self.admitted})

    async def execute(self) -> Result:
        phase = c.OPERATION_TYPE_EXECUTION
        status = dict(self.task.status)
        evidence = dict(status.get(STATUS_FIELD) or self.admitted)  # admitted in this same reconcile: not read yet
        steps = list(status.get("steps") or [])
        etcd = await self._etcd(phase)
        if isinstance(etcd, Result):
            return etcd
        obj, model = etcd
        plan = self._plan(model, int(evidence.get("originalReplicas") or model.spec.replicas))
        step = current_step(steps)
        world = await self._observe(obj, model, plan, with_member0=step == VERIFY)
        decision = decide(plan, steps, world)
        if decision is None:
            return Result("Quorum loss recovery succeeded", status={STATUS_FIELD: evidence, "steps": steps})
        now = world.now
        if decision.kind == "fail":
            steps = record_step(steps, decision.step, "Failed", now, decision.message)
            log.warning("quorum loss recovery failed", step=decision.step, message=decision.message)
            return Result(
                f"{decision.step} failed: {decision.message}",
                _error(phase, ERR_RECOVERY_STEP, f"{decision.step}: {decision.message}"),
                status={STATUS_FIELD: evidence, "steps": steps},
            )
        if decision.kind == "done":
            details = None
            if decision.step == VERIFY and world.restored is not None:
                r = world.restored
                evidence.update(
                    restoredRevision=r.revision, clusterID=f"{r.cluster_id:x}", restoredMemberID=f"{r.member_id:x}"
                )
                details = {"revision": str(r.revision), "clusterID": f"{r.cluster_id:x}"}
            steps = record_step(steps, decision.step, "Succeeded", now, decision.message, details)
            log.info("quorum loss recovery step done", step=decision.step, message=decision.message)
            last = current_step(steps) is None
            description = "Quorum loss recovery succeeded" if last else f"{decision.step} done"
            if last:
                return Result(description, status={STATUS_FIELD: evidence, "steps": steps})
            return Result(
                description, requeue=True, requeue_after=NEXT, status={STATUS_FIELD: evidence, "steps": steps}
            )
        if decision.kind == "act":
            try:
                await self._act(decision.step, obj, model, plan)
            except (ApiError, ValueError) as e:
                message = f"{decision.message}: {e}"
                steps = record_step(steps, decision.step, "InProgress", now, message)
                return Result(
                    f"{decision.step}: {message}",
                    requeue=True,
                    requeue_after=POLL,
                    status={STATUS_FIELD: evidence, "steps": steps},
                )
        steps = record_step(steps, decision.step, "InProgress", now, decision.message)
        return Result(
            f"{decision.step}: {decision.message}",
            requeue=True,
            requeue_after=POLL,
            status={STATUS_FIELD: evidence, "steps": steps},
        )

    async def cleanup(self) -> Result:
        return Result("Cleanup completed")

    # -------------------------------------------------------------- reading

    async def _etcd(self, phase: str) -> tuple[Obj, Etcd] | Result:
        try:
            obj = await self.kube.get(ETCDS, self.etcd_name or "-", self.namespace)
            return obj, Etcd.model_validate(obj)
        except ApiError as e:
            if e.not_found:
                message = f"EtcdNotFound: etcd {self.namespace}/{self.etcd_name} not found"
                return Result(message, _error(phase, ERR_GET_ETCD, message))
            return Result("Failed to get etcd object", _error(phase, ERR_GET_ETCD, str(e)), requeue=True)
        except ValidationError as e:
            return Result("Failed to get etcd object", _error(phase, ERR_GET_ETCD, str(e)), requeue=True)

    def _plan(self, etcd: Etcd, replicas: int) -> Plan:
        pod0 = names.pod_name(etcd.name, 0)
        return Plan(
            self.task.name,
            etcd.name,
            etcd.namespace,
            replicas,
            names.member_name(etcd.spec.member_name_prefix, pod0),
            pod0,
        )

    async def _observe(self, obj: Obj, etcd: Etcd, plan: Plan, *, with_member0: bool) -> World:
        ns = plan.namespace
        sts = await self.kube.get_or_none(STATEFULSETS, names.statefulset_name(etcd.name), ns)
        selector = names.selector_string(names.default_labels(etcd.name))
        pods = {
            p["metadata"]["name"]: pod_ready(p)
            for p in (await self.kube.list(PODS, ns, label_selector=selector)).get("items") or []
        }
        claim = facts.volume_claim_template_name(obj)
        sts_name = names.statefulset_name(etcd.name)
        pvcs = [
            claim_name
            for i in range(plan.replicas)
            if await self.kube.get_or_none(PVCS, claim_name := names.claim_name(claim, sts_name, i), ns) is not None
        ]
        lease_names = names.member_lease_names(etcd.name, plan.replicas, etcd.spec.member_name_prefix)
        leases = [x for x in lease_names if await self.kube.get_or_none(LEASES, x, ns) is not None]
        configmap = await self.kube.get_or_none(CONFIGMAPS, names.config_map_name(etcd.name), ns)
        members = None
        if configmap is not None:
            members = config_members(((configmap.get("data") or {}).get(cm_component.CONFIG_KEY)) or "")
        conditions = {x.type: x.status for x in (etcd.status.conditions if etcd.status else None) or ()}
        return World(
            now=self.clock.now(),
            holder=(etcd.metadata.annotations or {}).get(c.ANNOTATION_SUSPEND_SPEC_RECONCILE),
            reconcile_running=facts.operation_in_progress(obj, c.OPERATION_TYPE_RECONCILE),
            sts_replicas=None if sts is None else int((sts.get("spec") or {}).get("replicas") or 0),
            pods=pods,
            pvcs=tuple(pvcs),
            leases=tuple(leases),
            config_members=members,
            restored=await self._member0(etcd, plan) if with_member0 else None,
            etcd_ready=conditions.get(c.CONDITION_READY) == c.CONDITION_TRUE,
            all_members_ready=conditions.get(c.CONDITION_ALL_MEMBERS_READY) == c.CONDITION_TRUE,
            status_members=len((etcd.status.members if etcd.status else None) or ()),
            cluster_id_mismatch=conditions.get(c.CONDITION_CLUSTER_ID_MISMATCH) == c.CONDITION_TRUE,
        )

    async def _member0(self, etcd: Etcd, plan: Plan) -> Restored:
        pod = await self.kube.get_or_none(PODS, plan.pod0, plan.namespace)
        ip = ((pod or {}).get("status") or {}).get("podIP")
        if not ip:
            return Restored(error=f"{plan.pod0} has no IP")
        address = etcdgateway.member_address(etcd, plan.pod0, ip)
        try:
            tls = await etcdgateway.tls_context(self.kube, etcd)
            status = await etcdgateway.member_status(self.client, address, tls)
            members = await etcdgateway.member_names(self.client, address, tls)
        except (etcdgateway.GatewayError, BackupRestoreError, ApiError, ValueError) as e:
            return Restored(error=str(e))
        return Restored(status.revision, status.cluster_id, status.member_id, tuple(members))

    # -------------------------------------------------------------- acting

    async def _act(self, step: str, obj: Obj, etcd: Etcd, plan: Plan) -> None:
        ns = plan.namespace
        sts = names.statefulset_name(etcd.name)
        if step == HOLD:
            body = {"metadata": {"annotations": {c.ANNOTATION_SUSPEND_SPEC_RECONCILE: hold_value(plan.task)}}}
            await self.kube.merge_patch(ETCDS, etcd.name, body, ns)
        elif step in (SCALE_TO_ZERO, RESTORE_ONE):
            await self.kube.merge_patch(
                STATEFULSETS, sts, {"spec": {"replicas": 0 if step == SCALE_TO_ZERO else 1}}, ns
            )
        elif step == REMOVE_VOLUMES:
            claim = facts.volume_claim_template_name(obj)
            for i in range(plan.replicas):
                await self.kube.delete(PVCS, names.claim_name(claim, sts, i), ns)
            for lease in names.member_lease_names(etcd.name, plan.replicas, etcd.spec.member_name_prefix):
                await self.kube.delete(LEASES, lease, ns)
        elif step == SINGLE_MEMBER_CONFIG:
            name = names.config_map_name(etcd.name)
            configmap = await self.kube.get(CONFIGMAPS, name, ns)
            text = ((configmap.get("data") or {}).get(cm_component.CONFIG_KEY)) or ""
            data = {cm_component.CONFIG_KEY: single_member_config(text, plan.member0)}
            rv = configmap["metadata"].get("resourceVersion")
            await self.kube.merge_patch(CONFIGMAPS, name, {"metadata": {"resourceVersion": rv}, "data": data}, ns)
        elif step == RELEASE:
            rv = obj["metadata"].get("resourceVersion")  # guards against a hold replaced since it was read
            annotations = {c.ANNOTATION_SUSPEND_SPEC_RECONCILE: None, c.ANNOTATION_OPERATION: c.OPERATION_RECONCILE}
            await self.kube.merge_patch(
                ETCDS, etcd.name, {"metadata": {"resourceVersion": rv, "annotations": annotations}}, ns
            )
