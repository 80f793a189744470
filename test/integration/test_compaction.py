"""Checklist G49–G53: the compaction controller in-process against the full local control plane.

kube-controller-manager runs the Jobs (kwok completes a Running pod owned by a Job, so a schedulable compaction
job really becomes Complete). A job whose pod requests more CPU than the kwok node has stays Pending, i.e. active,
until its activeDeadlineSeconds make the job controller fail it with DeadlineExceeded: a real Failed job. The
backup-restore server is ``FakeBackupRestore`` on 127.0.0.1; nothing talks to Service names or pod IPs.
Tests create Etcds, their ServiceAccount and snapshot Leases themselves (the Etcd controller is not running).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from druid.api.etcd import Etcd
from druid.config.operator import OperatorConfiguration
from druid.controllers.compaction.reconciler import Timings
from druid.controllers.compaction.setup import CONTROLLER_NAME, JOB_SELECTOR, add_compaction_controller
from druid.controllers.compaction.status import ETCDS
from druid.runtime.client import Kube
from druid.runtime.informer import FuncHandler
from druid.runtime.manager import Manager, ManagerOptions
from druid.runtime.objects import JOBS, LEASES, SECRETS, SERVICEACCOUNTS, Obj, owner_reference
from druid.runtime.ratelimit import ItemExponentialFailureRateLimiter
from druid.runtime.reflector import ReflectorConfig
from druid.testing.controlplane import ControlPlane
from druid.testing.fake_backup_restore import FakeBackupRestore
from druid.testing.pki import CertificateAuthority
from druid.testing.wait import eventually

pytestmark = pytest.mark.controlplane

FAST = ReflectorConfig(backoff_initial=0.1, backoff_max=1.0)
TIMINGS = Timings(poll_interval=0.1, poll_timeout=10.0, requeue_after=2.0)
COND = "LastSnapshotCompactionSucceeded"
UNSCHEDULABLE = {"resources": {"requests": {"cpu": "100k"}}}  # more than the kwok node's 10000 CPUs


@dataclass
class Env:
    ns: str
    kube: Kube
    manager: Manager
    registry: CollectorRegistry
    fake: FakeBackupRestore
    endpoints: dict[str, str] = field(default_factory=dict)  # Etcd name → backup-restore URL (default: fake)
    jobs_added: list[Obj] = field(default_factory=list)
    jobs_latest: dict[str, Obj] = field(default_factory=dict)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, {"etcd_namespace": self.ns, **labels}) or 0.0

    def reconciles(self) -> float:
        return sum(
            self.registry.get_sample_value(
                "controller_runtime_reconcile_total", {"controller": CONTROLLER_NAME, "result": r}
            )
            or 0.0
            for r in ("success", "error", "requeue", "requeue_after")
        )

    # ------------------------------------------------------------------ objects

    async def etcd(self, name: str, *, store: bool = True, **backup: Any) -> Obj:
        spec_backup: dict[str, Any] = dict(backup)
        if store:
            spec_backup["store"] = {"provider": "Local", "container": "bucket", "prefix": f"{self.ns}/{name}"}
        body = {
            "apiVersion": ETCDS.api_version,
            "kind": "Etcd",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"replicas": 1, "labels": {"app": name}, "etcd": {}, "backup": spec_backup},
        }
        etcd = await self.kube.create(ETCDS, body)
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": self.ns}}
        await self.kube.create(SERVICEACCOUNTS, sa)
        return etcd

    async def leases(self, etcd: Obj, full: int, delta: int) -> None:
        name = etcd["metadata"]["name"]
        for kind, revision in (("full", full), ("delta", delta)):
            lease = f"{name}-{kind}-snap"
            labels = {
                "app.kubernetes.io/managed-by": "etcd-druid",
                "app.kubernetes.io/part-of": name,
                "app.kubernetes.io/component": "etcd-snapshot-lease",
                "app.kubernetes.io/name": lease,
            }
            meta = {"name": lease, "namespace": self.ns, "labels": labels, "ownerReferences": [owner_reference(etcd)]}
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta}
            await self.kube.create(LEASES, {**body, "spec": {"holderIdentity": str(revision)}})

    async def revision(self, etcd: str, kind: str, value: int) -> None:
        await self.kube.merge_patch(LEASES, f"{etcd}-{kind}-snap", {"spec": {"holderIdentity": str(value)}}, self.ns)

    async def job(self, etcd: str) -> Obj | None:
        return await self.kube.get_or_none(JOBS, f"{etcd}-compactor", self.ns)

    async def condition(self, etcd: str) -> dict[str, Any] | None:
        obj = await self.kube.get(ETCDS, etcd, self.ns)
        return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == COND), None)

    async def wait_condition(self, etcd: str, status: str, reason: str, timeout: float = 30) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            cond = await self.condition(etcd)
            return cond if cond and (cond["status"], cond["reason"]) == (status, reason) else None

        found = await eventually(probe, timeout=timeout, what=f"{etcd}: {COND} {status}/{reason}")
        assert found is not None
        return found

    async def wait_metric(self, value: float, name: str, **labels: str) -> None:
        async def probe() -> bool:
            return self.metric(name, **labels) == value

        await eventually(probe, timeout=15, what=f"{name}{labels} == {value} (is {self.metric(name, **labels)})")

    async def wait_job(self, etcd: str, timeout: float = 15) -> Obj:
        def added() -> Obj | None:
            return next((j for j in self.jobs_added if j["metadata"]["name"] == f"{etcd}-compactor"), None)

        async def probe() -> Obj | None:
            return added()

        job = await eventually(probe, timeout=timeout, what=f"job {etcd}-compactor created")
        assert job is not None
        return job

    async def wait_job_gone(self, etcd: str, timeout: float = 30) -> None:
        async def gone() -> bool:
            return await self.job(etcd) is None

        await eventually(gone, timeout=timeout, what=f"job {etcd}-compactor deleted")

    async def wait_active(self, etcd: str) -> Obj:
        async def probe() -> Obj | None:
            job = await self.job(etcd)
            return job if job and (job.get("status") or {}).get("active") == 1 else None

        job = await eventually(probe, timeout=30, what=f"job {etcd}-compactor active (pod Pending)")
        assert job is not None
        return job

    async def quiet(self, period: float = 0.5) -> None:
        """Until no reconcile is running and none has finished for ``period`` seconds."""
        labels = {"controller": CONTROLLER_NAME}
        last = [-1.0]

        async def steady() -> bool:
            now = self.reconciles()
            active = self.registry.get_sample_value("controller_runtime_active_workers", labels) or 0.0
            unchanged, last[0] = now == last[0], now
            return unchanged and active == 0

        await eventually(steady, timeout=30, what="the compaction controller quiet", interval=period)

    async def idle(self) -> bool:
        """Nothing queued, waiting out a requeue delay, or being reconciled in the compaction controller."""
        queue = self.manager.controllers[0].queue  # type: ignore[attr-defined]
        labels = {"controller": CONTROLLER_NAME}
        active = self.registry.get_sample_value("controller_runtime_active_workers", labels) or 0.0
        return len(queue) == 0 and not queue._waiting and active == 0

    async def reconciled_after(self, before: float) -> None:
        """Until a reconcile has finished since ``before`` (a :meth:`reconciles` value) and all is quiet."""

        async def probe() -> bool:
            return self.reconciles() > before

        await eventually(probe, timeout=15, what="a compaction reconcile")
        await self.quiet()


Starter = Callable[..., Awaitable[Env]]


@pytest.fixture
async def start(control_plane: ControlPlane, namespace: str, crds: list[str]) -> AsyncIterator[Starter]:
    running: list[tuple[Env, asyncio.Event, asyncio.Task[int]]] = []

    async def _start(*, policy: dict[str, Any] | None = None, **compaction: Any) -> Env:
        cfg = {"enabled": True, "eventsThreshold": 100, "triggerFullSnapshotThreshold": 100000, **compaction}
        extra = {} if policy is None else {"etcdAdmissionPolicy": policy}
        config = OperatorConfiguration.model_validate({"controllers": {"compaction": cfg}, **extra})
        registry = CollectorRegistry()
        kubeconfig = str(control_plane.kubeconfig)
        opts = ManagerOptions(metrics_address="127.0.0.1", metrics_port=0, probe_address="127.0.0.1", probe_port=0)
        manager = Manager(await Kube.connect(kubeconfig, timeout=10), opts, registry=registry, reflector_config=FAST)
        fake = await FakeBackupRestore().start()
        env = Env(namespace, await Kube.connect(kubeconfig, timeout=10), manager, registry, fake)
        add_compaction_controller(
            manager,
            config,
            backup_restore_endpoint=lambda etcd: env.endpoints.get(etcd.name, env.fake.url),
            timings=TIMINGS,
            rate_limiter=ItemExponentialFailureRateLimiter(0.05, 1.0),
            namespace=namespace,
        )

        def seen(job: Obj) -> None:
            env.jobs_latest[job["metadata"]["name"]] = job

        def added(job: Obj) -> None:
            env.jobs_added.append(job)
            seen(job)

        informer = manager.informers.get(JOBS, namespace, JOB_SELECTOR)
        informer.add_handler(FuncHandler(add=added, update=lambda _old, new: seen(new)))
        stop = asyncio.Event()
        task = asyncio.create_task(manager.run(stop))
        running.append((env, stop, task))
        await asyncio.wait_for(manager.is_leader.wait(), timeout=30)
        return env

    yield _start
    for env, stop, task in running:
        stop.set()
        assert await asyncio.wait_for(task, timeout=30) == 0
        await env.fake.stop()
        await env.kube.close()


# ---------------------------------------------------------------------------------------------------- G49


async def test_g49_job_created_when_events_exceed_threshold(start: Starter) -> None:
    env = await start()
    etcd = await env.etcd("main")
    await env.leases(etcd, full=1000, delta=1050)
    await env.wait_metric(50, "etcddruid_compaction_num_delta_events")
    await env.quiet()
    assert env.jobs_added == [] and await env.job("main") is None  # 50 < eventsThreshold 100

    await env.revision("main", "delta", 1150)  # diff 150 ≥ 100
    job = await env.wait_job("main")
    await env.revision("main", "full", 1150)  # as the compactor would: no second job afterwards
    meta, pod = job["metadata"], job["spec"]["template"]["spec"]
    assert meta["labels"]["app.kubernetes.io/component"] == "etcd-snapshot-compaction-job"
    assert meta["ownerReferences"] == [owner_reference(etcd)]
    assert (job["spec"]["completions"], job["spec"]["backoffLimit"], pod["serviceAccountName"]) == (1, 0, "main")
    (c,) = pod["containers"]
    assert c["args"][0] == "compact" and "--full-snapshot-lease-name=main-full-snap" in c["args"]
    assert "--storage-provider=Local" in c["args"] and f"--store-prefix={env.ns}/main" in c["args"]
    assert c["resources"] == {"requests": {"cpu": "600m", "memory": "3Gi"}}
    assert pod["volumes"][1]["hostPath"]["path"] == "/etc/gardener/local-backupbuckets/bucket"

    # per-Etcd eventsThreshold overrides the operator's 100
    small = await env.etcd("small", snapshotCompaction={"eventsThreshold": 10})
    await env.leases(small, full=0, delta=20)
    await env.wait_job("small")
    await env.revision("small", "full", 20)
    assert [j["metadata"]["name"] for j in env.jobs_added] == ["main-compactor", "small-compactor"]


async def test_finding6_no_compaction_job_outside_the_admission_policy(start: Starter) -> None:
    """issue 13, finding 6: the compaction Job runs the Etcd's backup image on its store; the policy holds there too."""
    env = await start(policy={"allowedImagePrefixes": ["europe-docker.pkg.dev/gardener-project/public/gardener/"]})
    fine = await env.etcd("fine")
    evil = await env.etcd("evil", image="evil.example/etcdbrctl:latest")
    before = env.reconciles()
    await env.leases(evil, full=0, delta=500)
    await env.leases(fine, full=0, delta=500)
    await env.wait_job("fine")  # the same trigger creates a Job for the compliant Etcd
    await env.reconciled_after(before)
    assert await env.job("evil") is None
    assert [j["metadata"]["name"] for j in env.jobs_added] == ["fine-compactor"]


# ---------------------------------------------------------------------------------------------------- G50


async def test_g50_running_job_blocks_new_job_and_completion_sets_condition_metrics_and_deletes_job(
    start: Starter,
) -> None:
    env = await start()
    # a job that stays active (its pod cannot be scheduled) blocks further jobs
    busy = await env.etcd("busy", snapshotCompaction=UNSCHEDULABLE)
    await env.leases(busy, full=0, delta=200)
    running = await env.wait_active("busy")
    await env.wait_metric(1, "etcddruid_compaction_jobs_current")
    before = env.reconciles()
    await env.revision("busy", "delta", 400)
    await env.reconciled_after(before)
    assert [j["metadata"]["name"] for j in env.jobs_added] == ["busy-compactor"]
    assert (await env.job("busy") or {})["metadata"]["uid"] == running["metadata"]["uid"]

    # a schedulable job runs to Complete: condition True/None, metrics, job deleted
    done = await env.etcd("done")
    await env.leases(done, full=0, delta=200)
    await env.wait_job("done")
    cond = await env.wait_condition("done", "True", "None")
    await env.revision("done", "full", 200)  # the compactor's lease update; keeps the next reconcile job-free
    finished = env.jobs_latest["done-compactor"]
    reason = next(
        c["reason"] for c in finished["status"]["conditions"] if c["type"] in ("Complete", "SuccessCriteriaMet")
    )
    assert cond["message"] == f"Compaction job {env.ns}/done-compactor completed with state {reason}"
    ok = {"succeeded": "true", "failureReason": "none"}
    await env.wait_metric(1, "etcddruid_compaction_jobs_total", **ok)
    assert env.metric("etcddruid_compaction_job_duration_seconds_count", **ok) == 1
    await env.wait_job_gone("done")
    # Every reconcile that still sees the deleting job requeues after TIMINGS.requeue_after, so an idle
    # controller means one has found no job and diff 0 since.
    await eventually(env.idle, timeout=30, what="the requeues after deleting the job done, the controller idle")
    await env.quiet()
    assert [j["metadata"]["name"] for j in env.jobs_added] == ["busy-compactor", "done-compactor"]


async def test_g50_failed_job_deadline_exceeded_then_g51_full_snapshot(start: Starter) -> None:
    env = await start(activeDeadlineDuration="2s")
    slow = await env.etcd("slow", snapshotCompaction=UNSCHEDULABLE)
    await env.leases(slow, full=0, delta=200)
    job = await env.wait_active("slow")
    assert job["spec"]["activeDeadlineSeconds"] == 2
    cond = await env.wait_condition("slow", "False", "DeadlineExceeded")
    assert cond["message"] == (
        f"Compaction job {env.ns}/slow-compactor completed with state DeadlineExceeded, Compaction will be retried"
    )
    failed = {"succeeded": "false", "failureReason": "deadlineExceeded"}
    await env.wait_metric(1, "etcddruid_compaction_jobs_total", **failed)
    assert env.metric("etcddruid_compaction_job_duration_seconds_sum", **failed) == 2.0
    await env.wait_job_gone("slow")
    # next round: diff 200 < triggerFullSnapshotThreshold, but the last job ran out of time ⇒ full snapshot
    cond = await env.wait_condition("slow", "True", "FullSnapshotTakenSuccessfully")
    assert cond["message"] == f"Full snapshot taken successfully for etcd {env.ns}/slow"
    assert [(r.method, r.path) for r in env.fake.requests] == [("GET", "/snapshot/full")]
    assert env.metric("etcddruid_compaction_full_snapshot_triggered_total", succeeded="true") == 1
    assert len(env.jobs_added) == 1


# ---------------------------------------------------------------------------------------------------- G51


async def test_g51_full_snapshot_via_backup_restore_api(start: Starter) -> None:
    env = await start()
    big = await env.etcd("big", snapshotCompaction={"triggerFullSnapshotThreshold": 500})
    await env.leases(big, full=0, delta=600)
    cond = await env.wait_condition("big", "True", "FullSnapshotTakenSuccessfully")
    assert cond["message"] == f"Full snapshot taken successfully for etcd {env.ns}/big"
    assert [(r.method, r.path) for r in env.fake.requests] == [("GET", "/snapshot/full")]
    await env.wait_metric(1, "etcddruid_compaction_full_snapshot_triggered_total", succeeded="true")
    assert env.jobs_added == []

    env.fake.respond_error(500)
    await env.revision("big", "delta", 700)
    cond = await env.wait_condition("big", "False", "ErrorTriggeringFullSnapshot")
    assert cond["message"] == (
        f"Error while triggering full snapshot for etcd {env.ns}/big: error while triggering full snapshot: "
        "failed to take full snapshot, received status code: 500 ,Compaction will be retried"
    )
    await env.fake.wait_for_request(3, path="/snapshot/full")  # the failed reconcile is retried with backoff
    assert env.metric("etcddruid_compaction_full_snapshot_triggered_total", succeeded="false") >= 1

    await env.fake.stop()  # connection refused

    async def refused() -> bool:
        c = await env.condition("big")
        return bool(
            c and c["reason"] == "ErrorTriggeringFullSnapshot" and "failed to trigger full snapshot:" in c["message"]
        )

    await eventually(refused, timeout=15, what="condition reports the refused connection")
    env.fake.respond_ok()
    await env.fake.start()  # same port; the backoff retry succeeds
    await env.wait_condition("big", "True", "FullSnapshotTakenSuccessfully")
    assert env.jobs_added == []


async def test_g51_full_snapshot_over_https_with_ca_from_secret(start: Starter, tmp_path: Path) -> None:
    env = await start()
    ca = CertificateAuthority(tmp_path / "pki")
    https = await FakeBackupRestore.https(ca).start()
    try:
        env.endpoints["secure"] = https.url
        tls = {"tlsCASecretRef": {"name": "br-ca"}, "serverTLSSecretRef": {"name": "br-server"}}
        secure = await env.etcd("secure", tls=tls, snapshotCompaction={"triggerFullSnapshotThreshold": 10})
        assert Etcd.model_validate(secure).spec.backup.tls is not None
        await env.leases(secure, full=0, delta=50)
        cond = await env.wait_condition("secure", "False", "ErrorTriggeringFullSnapshot")
        assert f"failed to get etcdbr CA secret {env.ns}/br-ca" in cond["message"]
        assert https.requests == []

        bundle = base64.b64encode(ca.pair.cert.read_bytes()).decode()
        meta = {"name": "br-ca", "namespace": env.ns}
        await env.kube.create(
            SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": {"bundle.crt": bundle}}
        )
        await env.wait_condition("secure", "True", "FullSnapshotTakenSuccessfully")
        assert [(r.method, r.path) for r in https.requests] == [("GET", "/snapshot/full")]
        assert env.fake.requests == []
    finally:
        await https.stop()


# ---------------------------------------------------------------------------------------------------- G52


async def test_g52_job_deleted_without_store_or_on_deletion(start: Starter) -> None:
    env = await start()
    for name in ("nostore", "leaving"):
        etcd = await env.etcd(name, snapshotCompaction=UNSCHEDULABLE)
        await env.leases(etcd, full=0, delta=200)
        await env.wait_active(name)

    await env.kube.merge_patch(ETCDS, "nostore", {"spec": {"backup": {"store": None}}}, env.ns)
    await env.wait_job_gone("nostore")

    await env.kube.merge_patch(ETCDS, "leaving", {"metadata": {"finalizers": ["test.druid/hold"]}}, env.ns)
    await env.kube.delete(ETCDS, "leaving", env.ns)
    await env.wait_job_gone("leaving")
    assert (await env.kube.get(ETCDS, "leaving", env.ns))["metadata"]["deletionTimestamp"]
    await env.kube.merge_patch(ETCDS, "leaving", {"metadata": {"finalizers": None}}, env.ns)


# ---------------------------------------------------------------------------------------------------- G53


async def test_g53_metrics_exposed(start: Starter) -> None:
    env = await start()
    snap = await env.etcd("snap", snapshotCompaction={"triggerFullSnapshotThreshold": 10})
    await env.leases(snap, full=0, delta=50)
    await env.wait_condition("snap", "True", "FullSnapshotTakenSuccessfully")
    work = await env.etcd("work")
    await env.leases(work, full=0, delta=150)
    await env.wait_condition("work", "True", "None")
    await env.revision("work", "full", 150)
    await env.wait_metric(1, "etcddruid_compaction_jobs_total", succeeded="true", failureReason="none")

    url = f"http://127.0.0.1:{env.manager.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text) if f.name.startswith("etcddruid_compaction")}
    assert {n: f.type for n, f in families.items()} == {
        "etcddruid_compaction_jobs": "counter",
        "etcddruid_compaction_full_snapshot_triggered": "counter",
        "etcddruid_compaction_jobs_current": "gauge",
        "etcddruid_compaction_job_duration_seconds": "histogram",
        "etcddruid_compaction_num_delta_events": "gauge",
    }
    ns = env.ns
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    outcome = (("etcd_namespace", ns), ("failureReason", "none"), ("succeeded", "true"))
    assert samples[("etcddruid_compaction_jobs_total", outcome)] == 1
    assert (
        samples[("etcddruid_compaction_full_snapshot_triggered_total", (("etcd_namespace", ns), ("succeeded", "true")))]
        == 1
    )
    assert samples[("etcddruid_compaction_jobs_current", (("etcd_namespace", ns),))] == 0
    assert ("etcddruid_compaction_num_delta_events", (("etcd_namespace", ns),)) in samples
    buckets = [
        s.labels["le"] for s in families["etcddruid_compaction_job_duration_seconds"].samples if "le" in s.labels
    ]
    assert buckets == ["60.0", "300.0", "600.0", "900.0", "1200.0", "1800.0", "+Inf"]
    assert samples[("etcddruid_compaction_job_duration_seconds_count", outcome)] == 1
    assert "# HELP etcddruid_compaction_jobs_current Number of currently running comapction job." in text


# ---------------------------------------------------------------------------------------------------- the fake


async def test_fake_backup_restore_serves_records_and_switches(tmp_path: Path) -> None:
    """The fake's contract (shared with the EtcdOpsTask tests): endpoints, recording, switchable answers, TLS."""
    async with FakeBackupRestore() as fake, aiohttp.ClientSession() as session:
        async with session.post(f"{fake.url}/snapshot/full") as r:
            full = await r.json()
        async with session.post(f"{fake.url}/snapshot/delta", params={"final": "true"}) as r:
            delta = await r.json()
        assert (full["kind"], full["startRevision"], full["lastRevision"], full["isFinal"]) == ("Full", 0, 1, False)
        assert (delta["kind"], delta["startRevision"], delta["lastRevision"], delta["isFinal"]) == ("Incr", 2, 2, True)
        assert [(q.method, q.path, q.final) for q in fake.requests] == [
            ("POST", "/snapshot/full", False),
            ("POST", "/snapshot/delta", True),
        ]
        fake.respond_error(503, "busy")
        async with session.get(f"{fake.url}/snapshot/full") as r:
            assert (r.status, await r.text()) == (503, "busy")
        url = fake.url
        await fake.stop()
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"{url}/snapshot/full"):
                pass
        fake.respond_ok()
        await fake.start()
        assert fake.url == url
        async with session.get(f"{url}/snapshot/full") as r:
            assert r.status == 200
        assert len(fake.calls("/snapshot/full", "GET")) == 2

    ca = CertificateAuthority(tmp_path / "pki")
    async with FakeBackupRestore.https(ca) as secure:
        context = ssl.create_default_context(cafile=str(ca.pair.cert))
        async with aiohttp.ClientSession() as session, session.get(f"{secure.url}/snapshot/full", ssl=context) as r:
            assert secure.url.startswith("https://127.0.0.1:") and r.status == 200
