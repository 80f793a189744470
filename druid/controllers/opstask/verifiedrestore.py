"""Verified restores (druid extension): prove that an Etcd's latest snapshots restore, without touching it.

A ``spec.config.verifiedRestore`` EtcdOpsTask restores the Etcd's latest full snapshot and the delta snapshots
after it into a **scratch Job** in the Etcd's namespace, starts etcd on the result and checks it.

Contract:

- **Admit** as an on-demand snapshot: the Etcd exists, has a backup store and is Ready.
- **Execute, first pass** (step ``FindSnapshots``): read the revisions the full and delta snapshot Leases carry
  (``holderIdentity``, written by backup-restore after each snapshot) and ask the Etcd's backup-restore server
  for the restore set (``GET /snapshot/latest``: the latest full snapshot and the deltas after it — the same
  lookup ``etcdbrctl restore`` does). A store without a full snapshot fails the task (``NoFullSnapshot``); a
  server that cannot answer is noted and the restore goes on (``etcdbrctl`` reads the store itself). Then
  (step ``Restore``) the Job ``<task>-restore`` is created: init container ``restore`` runs
  ``etcdbrctl restore`` (backup-restore image, the Etcd's store flags, env and credentials as the compaction
  Job has them) into an emptyDir; container ``etcd`` runs plain ``etcd`` on that data directory, serving clients
  on the pod IP without TLS. The Local bucket is mounted **read-only** (type ``Directory``: a missing bucket is
  an error, not created); no service-account token; labels of its own (never the Etcd's selector labels, so no
  Service, PDB or status counts the pod); the task is its controller owner; ``activeDeadlineSeconds`` bounds it.
- **Execute, later passes** (polling every :data:`POLL_SECONDS`): the restore container failing, etcd
  exiting, the Job failing or the timeout (``timeoutSeconds``, default 600) fail the task with the container's
  last log lines (``terminationMessagePolicy: FallbackToLogsOnError``). Once etcd answers on the pod IP, step
  ``Verify`` reads the revision and key count through etcd's JSON gateway (``etcdgateway.key_space``) and
  :func:`verdict` decides: the restored revision must be at least the Leases' revision and the restore set's
  last revision (below ⇒ ``RevisionBehindSnapshots``; an empty etcd with nothing restored says so).
- **Every finished execution** deletes the Job (background propagation), sets ``status.verifiedRestore``, the
  Etcd's condition ``BackupRestoreVerified`` (True ``RestoreVerified`` with revision, keys, duration, gap and
  time in the message; False with the reason, keeping the last success in the message) through the
  resourceVersion-guarded status writer (other condition types are left as they are), and the
  ``druid_verified_restore_*`` metrics. **Cleanup** deletes the Job again (idempotent).
- Durations: the restore duration runs from the Job's creation until the restored etcd answered; the
  recovery-point gap from the newest snapshot of the restore set (its creation time) until the verification.

The revision and key count are read through the gateway rather than from the pod's output: the answer is etcd's
own typed JSON (no log scraping), it needs nothing in the etcd image but the etcd binary, and it is the one way
druid already talks to etcd. The scratch etcd listens without TLS for the seconds the check takes; its pod has
no Service and carries no label any Service of the Etcd selects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from druid.api import constants as c
from druid.api import defaults, names, store
from druid.api.etcd import Etcd
from druid.api.opstask import VerifiedRestoreConfig
from druid.api.resources import ETCDS
from druid.backuprestore import BackupRestoreError
from druid.components import statefulset_volumes as vol
from druid.components.base import BuildOptions
from druid.components.errors import DruidError
from druid.components.options import build_options
from druid.config import images
from druid.controllers.compaction import job as compaction_job
from druid.controllers.etcd import conditions as cond
from druid.controllers.opstask.handlers import EtcdTaskHandler, HandlerDeps, Result, TaskRef
from druid.controllers.opstask.status import record_step
from druid.etcdgateway import GatewayError, KeySpace, MemberAddress, key_space
from druid.gocompat.duration import format_seconds, seconds
from druid.runtime import metrics
from druid.runtime.client import ApiError
from druid.runtime.clock import Clock, SystemClock, parse_time, rfc3339
from druid.runtime.objects import JOBS, LEASES, PODS, SECRETS, Obj
from druid.runtime.statuswriter import merge_conditions, update_status

CONDITION_TYPE = c.CONDITION_BACKUP_RESTORE_VERIFIED
COMPONENT = "etcd-verified-restore"
LABEL_TASK = "druid.gardener.cloud/etcdopstask"
LABEL_ETCD = "druid.gardener.cloud/verified-restore-of"
RESTORE_CONTAINER, ETCD_CONTAINER = "restore", "etcd"
RESTORED_DATA_DIR = f"{vol.DATA_DIR}/restored.etcd"
CLIENT_PORT = 2379
DEFAULT_TIMEOUT_SECONDS = 600
POLL_SECONDS = 2.0
JOB_DEADLINE_MARGIN = 60
ERR_VERIFIED_RESTORE = "ERR_VERIFIED_RESTORE"

STEP_FIND, STEP_RESTORE, STEP_VERIFY = "FindSnapshots", "Restore", "Verify"
REASON_OK = "RestoreVerified"
REASON_NO_FULL = "NoFullSnapshot"
REASON_BEHIND = "RevisionBehindSnapshots"
REASON_RESTORE_FAILED = "RestoreFailed"
REASON_ETCD_FAILED = "RestoredEtcdFailed"
REASON_TIMEOUT = "Timeout"
REASON_JOB = "ScratchJobError"


# ---------------------------------------------------------------------------------------------- the Job (pure)


def job_name(task_name: str) -> str:
    """``<task>-restore``; a long task name is cut and made unique with a hash (Job names carry into a label)."""
    name = f"{task_name}-restore"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(task_name.encode()).hexdigest()[:8]
    return f"{task_name[:46].rstrip('-.')}-{digest}-restore"


def labels(etcd_name: str, task_name: str) -> dict[str, str]:
    """The scratch objects' labels: none of the Etcd's selector labels (``part-of``), so nothing selects them."""
    return {
        c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE,
        c.LABEL_COMPONENT: COMPONENT,
        LABEL_ETCD: etcd_name,
        LABEL_TASK: task_name[:63].rstrip("-._"),
        **compaction_job.NETWORK_LABELS,
    }


def restore_args(etcd: Etcd) -> list[str]:
    """``etcdbrctl restore`` into the scratch data directory, from the Etcd's store."""
    return [
        "restore",
        f"--data-dir={RESTORED_DATA_DIR}",
        f"--restoration-temp-snapshots-dir={vol.DATA_DIR}/restoration.temp",
        f"--snapstore-temp-directory={vol.DATA_DIR}/tmp",
        f"--embedded-etcd-quota-bytes={defaults.quota_bytes(etcd.spec.etcd)}",
        *compaction_job.store_args(etcd),
    ]


def etcd_args(etcd: Etcd) -> list[str]:
    """Plain etcd on the restored data: clients on every address of the pod (no TLS), peers on loopback."""
    return [
        f"--data-dir={RESTORED_DATA_DIR}",
        f"--listen-client-urls=http://0.0.0.0:{CLIENT_PORT}",
        f"--advertise-client-urls=http://127.0.0.1:{CLIENT_PORT}",
        "--listen-peer-urls=http://127.0.0.1:2380",
        f"--quota-backend-bytes={defaults.quota_bytes(etcd.spec.etcd)}",
    ]


def _read_only_store(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]) -> None:
    """Make the Local bucket a read-only mount of an existing directory (never created, never written)."""
    for volume in volumes:
        if volume["name"] == compaction_job.HOST_STORAGE_VOLUME:
            volume["hostPath"]["type"] = "Directory"
    for mount in mounts:
        if mount["name"] != compaction_job.WORKSPACE_VOLUME:
            mount["readOnly"] = True


def build_job(
    etcd: Etcd,
    opts: BuildOptions,
    config: VerifiedRestoreConfig,
    *,
    task_name: str,
    task_uid: str,
    host_path: str | None = None,
) -> Obj:
    """The scratch Job; raises ``compaction.job.JobSpecError`` for a store the Job cannot read."""
    compaction_job.provider(etcd)  # rejects a missing or unknown store
    deadline = (config.timeout_seconds or DEFAULT_TIMEOUT_SECONDS) + JOB_DEADLINE_MARGIN
    job_labels = labels(etcd.name, task_name)
    volumes = compaction_job.volumes(etcd, host_path)
    mounts = compaction_job.volume_mounts(etcd)
    _read_only_store(volumes, mounts)
    restore = {
        "name": RESTORE_CONTAINER,
        "image": images.backup_restore_image(etcd, opts.images),
        "imagePullPolicy": "IfNotPresent",
        "args": restore_args(etcd),
        "env": compaction_job.env(etcd),
        "volumeMounts": mounts,
        "securityContext": {"allowPrivilegeEscalation": False},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    server = {
        "name": ETCD_CONTAINER,
        "image": config.etcd_image or images.etcd_image(etcd, opts.images),
        "imagePullPolicy": "IfNotPresent",
        "command": ["etcd"],
        "args": etcd_args(etcd),
        "ports": [{"name": "client", "containerPort": CLIENT_PORT, "protocol": "TCP"}],
        "volumeMounts": [vol.mount(compaction_job.WORKSPACE_VOLUME, vol.DATA_DIR)],
        "securityContext": {"allowPrivilegeEscalation": False},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    owner = names.owner_reference(task_name, task_uid, kind=c.KIND_ETCD_OPS_TASK)
    owner["blockOwnerDeletion"] = False
    return {
        "apiVersion": JOBS.api_version,
        "kind": JOBS.kind,
        "metadata": {
            "name": job_name(task_name),
            "namespace": etcd.namespace,
            "labels": job_labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "activeDeadlineSeconds": deadline,
            "completions": 1,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": dict(job_labels)},
                "spec": {
                    "activeDeadlineSeconds": deadline,
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 5,
                    "initContainers": [restore],
                    "containers": [server],
                    "volumes": volumes,
                },
            },
        },
    }


# ---------------------------------------------------------------------------------------------- decisions (pure)


@dataclass(frozen=True)
class RestoreSet:
    """What backup-restore's ``/snapshot/latest`` says a restore uses now."""

    full: str | None  # object name of the full snapshot (None: the store holds none)
    deltas: int
    last_revision: int  # highest last revision of the set
    latest: str | None  # name of the newest snapshot of the set
    latest_time: dt.datetime | None


def _name(snap: Mapping[str, Any]) -> str:
    return "/".join(p for p in (str(snap.get("snapDir") or ""), str(snap.get("snapName") or "")) if p)


def parse_restore_set(body: bytes) -> RestoreSet:
    """backup-restore's ``/snapshot/latest`` answer (``fullSnapshot``, ``deltaSnapshots``); ValueError if not."""
    data = json.loads(body or b"null")
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object: {body[:200]!r}")
    full = data.get("fullSnapshot")
    deltas = [d for d in data.get("deltaSnapshots") or () if isinstance(d, dict)]
    snaps = ([full] if isinstance(full, dict) else []) + deltas
    if not snaps:
        return RestoreSet(None, 0, 0, None, None)
    newest = max(snaps, key=lambda s: int(s.get("lastRevision") or 0))
    created = str(newest.get("createdOn") or "")
    latest_time = parse_time(created) if created and not created.startswith("0001-") else None
    return RestoreSet(
        full=_name(full) if isinstance(full, dict) else None,
        deltas=len(deltas),
        last_revision=int(newest.get("lastRevision") or 0),
        latest=_name(newest),
        latest_time=latest_time,
    )


def lease_revision(leases: Sequence[Obj | None]) -> int | None:
    """The highest revision the snapshot Leases hold (``holderIdentity``); None when none holds one."""
    found = []
    for lease in leases:
        holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
        try:
            found.append(int(str(holder)))
        except ValueError:
            continue
    return max(found) if found else None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    message: str


def verdict(restored: KeySpace, leases: int | None, snapshots: int | None) -> Verdict:
    """Whether the restored etcd holds what the backups claim: its revision is at least the snapshot Leases'
    revision and the last revision of the restore set."""
    expected = max(x for x in (leases, snapshots, 0) if x is not None)
    if restored.revision < expected:
        source = "snapshot leases" if leases is not None and leases >= (snapshots or 0) else "restore set"
        message = f"restored revision {restored.revision} is below revision {expected} of the {source}"
        if restored.keys == 0 and restored.revision <= 1:
            message += " (the restore produced an empty etcd: no snapshot was restored)"
        return Verdict(False, REASON_BEHIND, message)
    return Verdict(True, REASON_OK, f"restored revision {restored.revision} with {restored.keys} keys")


def container_failure(pod: Obj) -> tuple[str, str] | None:
    """(reason, message) when the restore or the etcd container of the scratch pod has ended badly."""
    status = pod.get("status") or {}
    for kind, reason in (("initContainerStatuses", REASON_RESTORE_FAILED), ("containerStatuses", REASON_ETCD_FAILED)):
        for cs in status.get(kind) or ():
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated is None:
                continue
            if cs.get("name") == RESTORE_CONTAINER and terminated.get("exitCode") == 0:
                continue
            detail = _last_words(terminated.get("message") or terminated.get("reason") or "")
            return reason, f"container {cs.get('name')} exited with code {terminated.get('exitCode')}: {detail}"
    if status.get("phase") == "Failed":
        return REASON_JOB, f"scratch pod failed: {status.get('reason') or ''} {status.get('message') or ''}".strip()
    return None


def _last_words(log: str) -> str:
    """What a container's last log lines say: its fatal/error lines if it logged any, else its last lines."""
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "level=fatal" in line or "level=error" in line]
    return " | ".join(line[:300] for line in (errors or lines)[-3:])


def etcd_serving(pod: Obj) -> str | None:
    """The pod IP once the etcd container runs, else None."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or ():
        if cs.get("name") == ETCD_CONTAINER and (cs.get("state") or {}).get("running") is not None:
            return status.get("podIP") or None
    return None


def condition_result(ok: bool, reason: str, message: str, previous: Mapping[str, Any] | None) -> cond.Result:
    """The Etcd condition; a failure keeps the last success in its message."""
    if ok:
        return cond.Result(CONDITION_TYPE, c.CONDITION_TRUE, reason, message)
    last = ""
    if previous is not None:
        prev_message = str(previous.get("message") or "")
        if previous.get("status") == c.CONDITION_TRUE:
            last = prev_message
        elif "last verified restore: " in prev_message:
            last = prev_message.split("last verified restore: ", 1)[1]
    suffix = f"; last verified restore: {last}" if last else "; no restore verified yet"
    return cond.Result(CONDITION_TYPE, c.CONDITION_FALSE, reason, message + suffix)


def success_message(revision: int, keys: int, duration: float, gap: float | None, at: dt.datetime) -> str:
    gap_text = f", recovery-point gap {gap:.1f}s" if gap is not None else ""
    return f"revision {revision}, {keys} keys, restored in {duration:.1f}s{gap_text}, at {rfc3339(at)}"


# ---------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class VerifiedRestoreMetrics:
    last_success: Gauge
    last_failure: Gauge
    revision: Gauge
    keys: Gauge
    duration: Gauge
    gap: Gauge
    runs: Counter
    failures: Counter

    def succeeded(self, ns: str, etcd: str, at: dt.datetime, revision: int, keys: int, duration: float,
                  gap: float | None) -> None:  # fmt: skip
        self.last_success.labels(ns, etcd).set(at.timestamp())
        self.revision.labels(ns, etcd).set(revision)
        self.keys.labels(ns, etcd).set(keys)
        self.duration.labels(ns, etcd).set(duration)
        if gap is not None:
            self.gap.labels(ns, etcd).set(gap)
        self.runs.labels(ns, etcd, "true").inc()

    def failed(self, ns: str, etcd: str, at: dt.datetime, reason: str) -> None:
        self.last_failure.labels(ns, etcd).set(at.timestamp())
        self.failures.labels(ns, etcd, reason).inc()
        self.runs.labels(ns, etcd, "false").inc()


def _create(registry: CollectorRegistry) -> VerifiedRestoreMetrics:
    labels_ = ("namespace", "etcd")

    def gauge(name: str, help_: str) -> Gauge:
        return Gauge(f"druid_verified_restore_{name}", help_, labels_, registry=registry)

    return VerifiedRestoreMetrics(
        last_success=gauge("last_success_timestamp_seconds", "Unix time of the last verified restore."),
        last_failure=gauge("last_failure_timestamp_seconds", "Unix time of the last failed restore verification."),
        revision=gauge("revision", "Revision of the etcd restored by the last verified restore."),
        keys=gauge("keys", "Keys in the etcd restored by the last verified restore."),
        duration=gauge("duration_seconds", "Seconds the last verified restore took (Job creation to etcd serving)."),
        gap=gauge("recovery_point_gap_seconds", "Age of the newest restored snapshot at the last verified restore."),
        runs=Counter(
            "druid_verified_restore_runs_total", "Finished restore verifications.", (*labels_, "succeeded"),
            registry=registry,
        ),
        failures=Counter(
            "druid_verified_restore_failures_total", "Failed restore verifications by reason.", (*labels_, "reason"),
            registry=registry,
        ),
    )  # fmt: skip


def verified_restore_metrics(registry: CollectorRegistry | None = None) -> VerifiedRestoreMetrics:
    """The ``druid_verified_restore_*`` families in ``registry`` (default: the process registry at /metrics)."""
    return metrics.families(registry, _create)


# ---------------------------------------------------------------------------------------------- the handler (I/O)


class VerifiedRestoreHandler(EtcdTaskHandler):
    def __init__(self, deps: HandlerDeps, task: TaskRef, clock: Clock | None = None) -> None:
        super().__init__(deps, task)
        config = task.spec.config.verified_restore
        assert config is not None
        self.config: VerifiedRestoreConfig = config
        self.task_name, self.uid = task.name, task.uid
        self.status = dict(task.status)
        self.opts = deps.build_options
        self.clock = clock or SystemClock()
        self.metrics = verified_restore_metrics()
        self.client_port = CLIENT_PORT  # where the scratch etcd serves (tests serve a stand-in elsewhere)

    @property
    def timeout(self) -> int:
        return self.config.timeout_seconds or DEFAULT_TIMEOUT_SECONDS

    async def execute(self) -> Result:
        phase = c.OPERATION_TYPE_EXECUTION
        etcd = await self._etcd(phase)
        if isinstance(etcd, Result):
            return etcd
        found = dict(self.status.get("verifiedRestore") or {})
        if not found.get("jobName"):
            if (failed := self._check(etcd, phase)) is not None:
                return failed
            return await self._start(etcd)
        return await self._poll(etcd, found)

    async def cleanup(self) -> Result:
        await self._delete_job()
        return Result("Cleanup completed")

    # ------------------------------------------------------------------ first pass

    async def _start(self, etcd: Etcd) -> Result:
        now = self.clock.now()
        steps = record_step(self.status.get("steps"), STEP_FIND, "InProgress", now)
        leases = [
            await self.kube.get_or_none(LEASES, lease, etcd.namespace)
            for lease in (names.full_snapshot_lease_name(etcd.name), names.delta_snapshot_lease_name(etcd.name))
        ]
        found: dict[str, Any] = {"leaseRevision": lease_revision(leases)}
        restore_set, note = await self._restore_set(etcd)
        if restore_set is not None:
            found.update(
                fullSnapshot=restore_set.full,
                deltaSnapshots=restore_set.deltas,
                latestSnapshot=restore_set.latest,
                latestSnapshotTime=rfc3339(restore_set.latest_time) if restore_set.latest_time else None,
                snapshotRevision=restore_set.last_revision or None,
            )
            if restore_set.full is None:
                message = "the store holds no full snapshot to restore"
                steps = record_step(steps, STEP_FIND, "Failed", now, message)
                return await self._finish(etcd, found, steps, False, REASON_NO_FULL, message)
        details = {k: str(v) for k, v in found.items() if v is not None}
        steps = record_step(steps, STEP_FIND, "Succeeded", now, note, details)
        try:
            host_path = await self._host_path(etcd)
            opts = self.opts or build_options()
            job = build_job(etcd, opts, self.config, task_name=self.task_name, task_uid=self.uid, host_path=host_path)
        except compaction_job.JobSpecError as e:
            steps = record_step(steps, STEP_RESTORE, "Failed", now, str(e))
            return await self._finish(etcd, found, steps, False, REASON_JOB, f"cannot build the scratch Job: {e}")
        try:
            await self.kube.create(JOBS, job)
        except ApiError as e:
            if e.status != 409:
                raise
        found["jobName"] = job["metadata"]["name"]
        started = {"startedAtUnix": f"{now.timestamp():.3f}"}
        steps = record_step(steps, STEP_RESTORE, "InProgress", now, f"restoring in Job {found['jobName']}", started)
        self.status.update(verifiedRestore=found, steps=steps)
        return Result(
            f"Restoring into scratch Job {found['jobName']}",
            requeue=True,
            status={"verifiedRestore": found, "steps": steps},
            requeue_after=POLL_SECONDS,
        )

    async def _restore_set(self, etcd: Etcd) -> tuple[RestoreSet | None, str | None]:
        """The restore set backup-restore reports, or (None, why not)."""
        tls = await self._tls_context(etcd, c.OPERATION_TYPE_EXECUTION)
        if isinstance(tls, Result):
            return None, f"backup-restore CA unavailable: {tls.description}"
        try:
            response = await self.backup_restore.request(
                "GET", self.backup_restore.url(etcd, "/snapshot/latest"), tls=tls, timeout=30, read_body=True
            )
        except BackupRestoreError as e:
            return None, f"backup-restore did not list the snapshots: {e.message}"
        if response.status != 200:
            return None, f"backup-restore did not list the snapshots: status {response.status}"
        try:
            return parse_restore_set(response.body or b""), None
        except (ValueError, TypeError) as e:
            return None, f"backup-restore's snapshot list unreadable: {e}"

    async def _host_path(self, etcd: Etcd) -> str | None:
        backup_store = etcd.spec.backup.store
        if backup_store is None or backup_store.secret_ref is None or vol.provider(etcd) != store.LOCAL:
            return None
        return vol.local_host_path(await self.kube.get(SECRETS, backup_store.secret_ref.name or "", etcd.namespace))

    # ------------------------------------------------------------------ later passes

    async def _poll(self, etcd: Etcd, found: dict[str, Any]) -> Result:
        now = self.clock.now()
        steps = list(self.status.get("steps") or ())
        restore_step: dict[str, Any] = next((s for s in reversed(steps) if s.get("name") == STEP_RESTORE), {})
        started = float((restore_step.get("details") or {}).get("startedAtUnix") or now.timestamp())
        elapsed = now.timestamp() - started
        pods = (await self.kube.list(PODS, etcd.namespace, label_selector=f"job-name={found['jobName']}"))["items"]
        job = await self.kube.get_or_none(JOBS, found["jobName"], etcd.namespace)
        failure: tuple[str, str] | None = None
        if job is None:
            failure = (REASON_JOB, f"scratch Job {found['jobName']} is gone")
        else:
            failure = next((f for p in pods if (f := container_failure(p)) is not None), None)
            if failure is None:
                for jc in (job.get("status") or {}).get("conditions") or ():
                    if jc.get("type") == "Failed" and jc.get("status") == "True":
                        failure = (REASON_JOB, f"scratch Job failed: {jc.get('reason')}: {jc.get('message')}")
        if failure is None and elapsed > self.timeout:
            failure = (REASON_TIMEOUT, f"restored etcd not serving after {self.timeout}s")
        if failure is not None:
            steps = record_step(steps, STEP_RESTORE, "Failed", now, failure[1])
            return await self._finish(etcd, found, steps, False, *failure)
        ip = next((ip for p in pods if (ip := etcd_serving(p))), None)
        if ip is None:
            return self._wait(found, steps, "waiting for the restore and the scratch etcd")
        host = f"[{ip}]" if ":" in ip else ip
        try:
            restored = await key_space(
                self.backup_restore, MemberAddress(f"http://{host}:{self.client_port}", None), None
            )
        except (BackupRestoreError, GatewayError) as e:
            return self._wait(found, steps, f"scratch etcd not answering yet: {e}")
        duration = round(self.clock.now().timestamp() - started, 2)
        message = f"restored etcd answering on {ip} after {duration}s"
        steps = record_step(steps, STEP_RESTORE, "Succeeded", now, message, {"durationSeconds": f"{duration}"})
        judged = verdict(restored, found.get("leaseRevision"), found.get("snapshotRevision"))
        latest = found.get("latestSnapshotTime")
        gap = round((now - parse_time(latest)).total_seconds(), 1) if latest else None
        found.update(
            restoredRevision=restored.revision,
            keyCount=restored.keys,
            restoreDuration=format_seconds(duration),
            recoveryPointGap=format_seconds(gap) if gap is not None else None,
            verifiedAt=rfc3339(now),
        )
        details = {"revision": str(restored.revision), "keys": str(restored.keys)}
        steps = record_step(steps, STEP_VERIFY, "Succeeded" if judged.ok else "Failed", now, judged.message, details)
        if judged.ok:
            message = success_message(restored.revision, restored.keys, duration, gap, now)
            return await self._finish(etcd, found, steps, True, REASON_OK, message)
        return await self._finish(etcd, found, steps, False, judged.reason, judged.message)

    def _wait(self, found: dict[str, Any], steps: list[dict[str, Any]], why: str) -> Result:
        steps = record_step(steps, STEP_RESTORE, "InProgress", self.clock.now(), why)
        return Result(why, requeue=True, status={"verifiedRestore": found, "steps": steps}, requeue_after=POLL_SECONDS)

    # ------------------------------------------------------------------ the end

    async def _finish(
        self, etcd: Etcd, found: dict[str, Any], steps: list[dict[str, Any]], ok: bool, reason: str, message: str
    ) -> Result:
        now = self.clock.now()
        await self._delete_job()
        found = {**found, "reason": "" if ok else reason}
        if not ok:
            found.setdefault("verifiedAt", rfc3339(now))
        await self._write_condition(etcd, ok, reason, message, now)
        ns, name = etcd.namespace, etcd.name
        if ok:
            duration, gap = (
                seconds(found[k]) if found.get(k) else None for k in ("restoreDuration", "recoveryPointGap")
            )
            self.metrics.succeeded(ns, name, now, found["restoredRevision"], found["keyCount"], duration or 0.0, gap)
            return Result(f"Restore verified: {message}", status={"verifiedRestore": found, "steps": steps})
        self.metrics.failed(ns, name, now, reason)
        phase, text = c.OPERATION_TYPE_EXECUTION, f"{reason}: {message}"
        error = DruidError(ERR_VERIFIED_RESTORE, phase, text, RuntimeError(message))
        status = {"verifiedRestore": found, "steps": steps}
        return Result(f"Restore verification failed: {text}", error, status=status)

    async def _write_condition(self, etcd: Etcd, ok: bool, reason: str, message: str, now: dt.datetime) -> None:
        try:
            obj = await self.kube.get(ETCDS, etcd.name, etcd.namespace)
        except ApiError as e:
            if e.not_found:
                return
            raise

        def mutate(current: Obj) -> dict[str, Any]:
            status = dict(current.get("status") or {})
            live = list(status.get("conditions") or ())
            previous = next((x for x in live if x.get("type") == CONDITION_TYPE), None)
            result = condition_result(ok, reason, message, previous)
            built = cond.build_conditions([previous] if previous else [], [result], 1, now)
            status["conditions"] = merge_conditions(live, (CONDITION_TYPE,), built, sort=True)
            return status

        await update_status(self.kube, ETCDS, obj, mutate)

    async def _delete_job(self) -> None:
        try:
            await self.kube.delete(JOBS, job_name(self.task_name), self.namespace, propagation="Background")
        except ApiError as e:
            if not e.not_found:
                raise
