"""The Defragmentation EtcdOpsTask: leader-aware defragmentation, one member at a time (druid extension).

``spec.config.defragmentation`` (optional ``fragmentationThresholdPercent``, ``timeoutSecondsPerMember``).
The order and the safety checks are :mod:`defragorder`'s (pure); this module is its I/O shell. Each call of
``execute`` does one step and returns; the task's ``status.steps`` is the record it resumes from (a restarted
druid, or a requeue, carries on where the steps say):

1. Observe: the Etcd ``<task namespace>/<spec.etcdName>`` (missing ⇒ fail ``ERR_GET_ETCD``), its member pods
   ``<etcd>-0..replicas-1`` and, for each Ready pod, the member's ``/v3/maintenance/status`` through etcd's
   JSON gateway (:mod:`druid.etcdgateway`; its own ID, the leader's, ``dbSize``, ``dbSizeInUse``). A member is
   healthy when its pod is Ready and it answered; the leader is the one a majority of those that answered name
   (right after a move some may still name the former one: the task then waits a poll). Steps
   ``Defragment/<pod>`` that Succeeded or were Skipped are handled; one InProgress has begun.
2. Decide (:func:`defragorder.decide`).
3. Act and record:
   - Skip: step ``Defragment/<pod>`` Skipped with the sizes and the fragmentation;
   - Begin: step ``Defragment/<pod>`` InProgress with ``dbSizeBefore``/``dbSizeInUseBefore``;
   - Defragment: ``/v3/maintenance/defragment`` on that member (timeout ``timeoutSecondsPerMember``), then its
     status again: the step Succeeded with ``dbSizeAfter``, ``dbSizeInUseAfter``, ``freed`` (bytes) and
     ``seconds``. A failed call is retried with backoff (``ERR_DEFRAGMENT`` in lastErrors, the attempt counted
     in the step's details); after :data:`MAX_ATTEMPTS` the step and the task fail;
   - MoveLeader: ``transfer-leadership`` on the leader to the chosen follower; step ``MoveLeader/<pod>``
     Succeeded with ``from``/``to`` (a failure is retried like a defragmentation);
   - Wait: nothing; the reason and message are the lastOperation's description; polled every
     :data:`POLL` seconds.
   ``status.defragmentation`` keeps the leader when the task began, where leadership was moved, and the
   members defragmented and skipped.
4. Done: the task Succeeded.

Admit rejects a task whose Etcd is missing, has no replicas, or has the gateway explicitly turned off
(``spec.etcd.enableGRPCGateway: false``). With the gateway on by default only under druid's
``OrderedMemberUpdate`` gate, an Etcd without it set and without the gate never answers: the task waits with
``WaitingForMember`` and says that no member answered its status call.
"""

from __future__ import annotations

import ssl
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from druid import etcdgateway as gateway
from druid.api import constants as c
from druid.api import names
from druid.api.etcd import Etcd
from druid.api.opstask import DefragmentationConfig
from druid.backuprestore import BackupRestoreClient, BackupRestoreError
from druid.components.errors import DruidError
from druid.controllers.opstask import defragorder as order
from druid.controllers.opstask.handlers import ERR_GET_ETCD, HandlerDeps, TaskRef, get_etcd
from druid.controllers.opstask.status import Result, record_step
from druid.etcdgateway import GatewayError
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import Clock, SystemClock
from druid.runtime.objects import PODS, Obj, pod_ready

log = structlog.get_logger(__name__)

POLL = 2.0  # seconds between looks while waiting
NEXT = 0.05  # seconds to the next step
MAX_ATTEMPTS = 3
STEP_DEFRAGMENT = "Defragment"
STEP_MOVE_LEADER = "MoveLeader"
ERR_DEFRAGMENT = "ERR_DEFRAGMENT"
ERR_MOVE_LEADER = "ERR_MOVE_LEADER"
ERR_GATEWAY_DISABLED = "ERR_GATEWAY_DISABLED"
ERR_OBSERVE_MEMBERS = "ERR_OBSERVE_MEMBERS"
SUCCEEDED, SKIPPED, IN_PROGRESS, FAILED = "Succeeded", "Skipped", "InProgress", "Failed"


def step_name(kind: str, pod: str) -> str:
    return f"{kind}/{pod}"


def _error(description: str, code: str, message: str, cause: BaseException, *, requeue: bool, **kw: Any) -> Result:
    error = DruidError(code, c.OPERATION_TYPE_EXECUTION, message, cause)
    return Result(description, error, requeue, **kw)


@dataclass(frozen=True)
class Observed:
    view: order.DefragView
    addresses: dict[str, gateway.MemberAddress]
    statuses: dict[str, gateway.MemberStatus]
    problems: list[str]  # why members count as unhealthy


def agreed_leader(statuses: Sequence[gateway.MemberStatus]) -> int:
    """The leader ID more than half of the answering members report (0: none agreed on — e.g. right after a
    move, while some members still name the former leader)."""
    votes = Counter(s.leader_id for s in statuses if s.leader_id)
    if not votes:
        return 0
    leader, count = votes.most_common(1)[0]
    return leader if count * 2 > len(statuses) else 0


def view_of(
    pods: Mapping[str, Obj],
    statuses: Mapping[str, gateway.MemberStatus],
    pod_names: list[str],
    steps: Sequence[Mapping[str, Any]],
    threshold: int | None,
) -> order.DefragView:
    """The decision's view from what was observed (pure): members by ordinal, the leader as a majority of the
    members that answered report it (:func:`agreed_leader`), handled and begun members from the steps."""
    leader = agreed_leader(list(statuses.values()))
    members = []
    for ordinal, pod in enumerate(pod_names):
        status = statuses.get(pod)
        members.append(
            order.Member(
                name=pod,
                ordinal=ordinal,
                healthy=status is not None and _ready(pods.get(pod)),
                leader=status is not None and status.member_id == leader,
                db_size=status.db_size if status else 0,
                db_size_in_use=status.db_size_in_use if status else 0,
            )
        )
    prefix = STEP_DEFRAGMENT + "/"
    last = {str(s.get("name")): s.get("state") for s in steps if str(s.get("name", "")).startswith(prefix)}
    handled = frozenset(n[len(prefix) :] for n, state in last.items() if state in (SUCCEEDED, SKIPPED))
    begun = frozenset(n[len(prefix) :] for n, state in last.items() if state == IN_PROGRESS)
    return order.DefragView(tuple(members), handled, begun, threshold)


def _ready(pod: Obj | None) -> bool:
    """Ready and not terminating."""
    return pod is not None and not pod["metadata"].get("deletionTimestamp") and pod_ready(pod)


def _sizes(status: gateway.MemberStatus, suffix: str) -> dict[str, str]:
    return {f"dbSize{suffix}": str(status.db_size), f"dbSizeInUse{suffix}": str(status.db_size_in_use)}


class DefragmentationHandler:
    def __init__(self, deps: HandlerDeps, task: TaskRef, clock: Clock | None = None) -> None:
        config = task.spec.config.defragmentation
        assert config is not None
        self.kube: Kube = deps.kube
        self.client: BackupRestoreClient = deps.backup_restore
        self.config: DefragmentationConfig = config
        self.namespace = task.namespace
        self.etcd_name = task.spec.etcd_name or ""
        self.clock = clock or SystemClock()
        self.steps: list[dict[str, Any]] = [dict(s) for s in task.status.get("steps") or ()]
        self.summary: dict[str, Any] = dict(task.status.get("defragmentation") or {})

    async def admit(self) -> Result:
        phase = c.OPERATION_TYPE_ADMIT
        etcd = await get_etcd(self.kube, self.namespace, self.etcd_name, phase)
        if isinstance(etcd, Result):
            return etcd
        problem = None
        if etcd.spec.etcd.enable_grpc_gateway is False:
            problem = "etcd's JSON gateway, through which druid reaches the members, is off (enableGRPCGateway: false)"
            code = ERR_GATEWAY_DISABLED
        elif etcd.spec.replicas == 0:
            problem, code = "the Etcd has no replicas", ERR_GET_ETCD
        if problem is not None:
            return Result("Defragmentation rejected", DruidError(code, phase, problem, RuntimeError(problem)))
        return Result("Admit check passed")

    async def execute(self) -> Result:
        etcd = await get_etcd(self.kube, self.namespace, self.etcd_name, c.OPERATION_TYPE_EXECUTION)
        if isinstance(etcd, Result):
            return etcd
        try:
            tls = await gateway.tls_context(self.kube, etcd)
            seen = await self._observe(etcd, tls)
        except (ApiError, GatewayError, ssl.SSLError, ValueError) as e:
            return _error("Failed to observe the members", ERR_OBSERVE_MEMBERS, "observe members", e, requeue=True)
        if "leaderBefore" not in self.summary:
            leader = next((m.name for m in seen.view.members if m.leader), None)
            if leader is not None:
                self.summary["leaderBefore"] = leader
        action = order.decide(seen.view)
        if isinstance(action, order.Done):
            done = len(self.summary.get("defragmented") or ())
            skipped = len(self.summary.get("skipped") or ())
            return Result(f"Defragmented {done} members, skipped {skipped}", status=self._fields())
        if isinstance(action, order.Wait):
            detail = f"; {'; '.join(seen.problems)}" if seen.problems else ""
            return self._requeue(f"{action.reason}: {action.message}{detail}", POLL)
        if isinstance(action, order.Skip):
            return self._skip(action.member, seen.statuses[action.member.name])
        if isinstance(action, order.Begin):
            status = seen.statuses[action.member.name]
            pct = f"{action.member.fragmentation_percent:.0f}"
            self._record(
                STEP_DEFRAGMENT,
                action.member.name,
                IN_PROGRESS,
                "defragmenting",
                {**_sizes(status, "Before"), "fragmentationPercent": pct},
            )
            return self._requeue(f"Defragmenting {action.member.name}", NEXT)
        if isinstance(action, order.MoveLeader):
            return await self._move_leader(action, seen, tls)
        assert isinstance(action, order.Defragment)
        return await self._defragment(action.member, seen, tls)

    async def cleanup(self) -> Result:
        return Result("Cleanup completed")

    # ------------------------------------------------------------------ I/O

    async def _observe(self, etcd: Etcd, tls: ssl.SSLContext | None) -> Observed:
        selector = names.selector_string(names.default_labels(etcd.name))
        items = (await self.kube.list(PODS, self.namespace, label_selector=selector)).get("items") or []
        pods = {p["metadata"]["name"]: p for p in items}
        pod_names = names.pod_names(etcd.name, etcd.spec.replicas)
        addresses, statuses, problems = {}, {}, []
        for pod_name in pod_names:
            pod = pods.get(pod_name)
            ip = ((pod or {}).get("status") or {}).get("podIP")
            if not _ready(pod) or not ip:
                problems.append(f"{pod_name}: pod missing or not Ready")
                continue
            address = gateway.member_address(etcd, pod_name, ip)
            addresses[pod_name] = address
            try:
                statuses[pod_name] = await gateway.member_status(self.client, address, tls)
            except (BackupRestoreError, GatewayError) as e:
                problems.append(f"{pod_name}: status call failed: {e}")
        view = view_of(pods, statuses, pod_names, self.steps, self.config.fragmentation_threshold_percent)
        return Observed(view, addresses, statuses, problems)

    async def _defragment(self, member: order.Member, seen: Observed, tls: ssl.SSLContext | None) -> Result:
        name = member.name
        started = time.monotonic()
        log.info("defragmenting member", member=name, leader=member.leader, db_size=member.db_size)
        try:
            await gateway.defragment(self.client, seen.addresses[name], tls, self.config.timeout_seconds)
            after = await gateway.member_status(self.client, seen.addresses[name], tls)
        except (BackupRestoreError, GatewayError) as e:
            return self._attempt_failed(STEP_DEFRAGMENT, name, ERR_DEFRAGMENT, f"defragmenting {name}", e)
        seconds = time.monotonic() - started
        freed = max(member.db_size - after.db_size, 0)
        details = {**_sizes(after, "After"), "freed": str(freed), "seconds": f"{seconds:.2f}"}
        self._record(STEP_DEFRAGMENT, name, SUCCEEDED, f"defragmented in {seconds:.2f}s, freed {freed} bytes", details)
        self.summary["defragmented"] = [*(self.summary.get("defragmented") or ()), name]
        return self._requeue(f"Defragmented {name}", NEXT)

    async def _move_leader(self, action: order.MoveLeader, seen: Observed, tls: ssl.SSLContext | None) -> Result:
        leader, target = action.leader.name, action.target.name
        try:
            target_id = seen.statuses[target].member_id
            await gateway.move_leader(self.client, seen.addresses[leader], target_id, tls)
        except (BackupRestoreError, GatewayError) as e:
            return self._attempt_failed(STEP_MOVE_LEADER, leader, ERR_MOVE_LEADER, f"moving leadership to {target}", e)
        self._record(
            STEP_MOVE_LEADER, leader, SUCCEEDED, f"moved leadership to {target}", {"from": leader, "to": target}
        )
        self.summary["leaderMovedTo"] = target
        return self._requeue(f"Moved leadership from {leader} to {target}", 0.5)

    # ------------------------------------------------------------------ records

    def _skip(self, member: order.Member, status: gateway.MemberStatus) -> Result:
        pct = member.fragmentation_percent
        message = f"fragmentation {pct:.0f}% is below the threshold {self.config.fragmentation_threshold_percent}%"
        details = {**_sizes(status, "Before"), "fragmentationPercent": f"{pct:.0f}"}
        self._record(STEP_DEFRAGMENT, member.name, SKIPPED, message, details)
        self.summary["skipped"] = [*(self.summary.get("skipped") or ()), member.name]
        return self._requeue(f"Skipped {member.name}: {message}", NEXT)

    def _attempt_failed(self, kind: str, pod: str, code: str, what: str, cause: BaseException) -> Result:
        last: dict[str, Any] = next((s for s in reversed(self.steps) if s.get("name") == step_name(kind, pod)), {})
        attempts = int((last.get("details") or {}).get("attempts", "0")) + 1
        message = f"{what} failed (attempt {attempts} of {MAX_ATTEMPTS}): {cause}"
        give_up = attempts >= MAX_ATTEMPTS
        self._record(kind, pod, FAILED if give_up else IN_PROGRESS, message, {"attempts": str(attempts)})
        return _error(f"Failed {what}", code, message, cause, requeue=not give_up, status=self._fields())

    def _record(self, kind: str, pod: str, state: str, message: str, details: Mapping[str, str]) -> None:
        self.steps = record_step(self.steps, step_name(kind, pod), state, self.clock.now(), message, details)

    def _fields(self) -> dict[str, Any]:
        return {"steps": self.steps, "defragmentation": self.summary}

    def _requeue(self, description: str, after: float) -> Result:
        return Result(description, requeue=True, status=self._fields(), requeue_after=after)
