"""Verified restores: the scratch Job, the restore set, the verdict, container failures, the Etcd condition."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from druid.api import constants as c
from druid.api.etcd import Etcd
from druid.api.opstask import EtcdOpsTaskSpec, VerifiedRestoreConfig
from druid.api.resources import ETCDS
from druid.components import clientservice, pdb
from druid.components.base import BuildOptions
from druid.config.images import Images
from druid.controllers.compaction.job import JobSpecError
from druid.controllers.etcd import conditions as cond
from druid.controllers.opstask import verifiedrestore as vr
from druid.controllers.opstask.handlers import HandlerDeps, TaskRef
from druid.etcdgateway import KeySpace
from druid.runtime.objects import JOBS, PODS
from druid.runtime.statuswriter import merge_conditions
from druid.testing.fakekube import FakeKube

NAME, NS = "etcd-main", "shoot--dev"


def make_etcd(store: dict[str, Any] | None) -> Etcd:
    backup = {"store": store} if store is not None else {}
    body = {"replicas": 3, "labels": {"role": "main"}, "etcd": {}, "backup": backup}
    return Etcd.model_validate({"metadata": {"name": NAME, "namespace": NS, "uid": "etcd-uid"}, "spec": body})


def s3() -> dict[str, Any]:
    return {"provider": "aws", "container": "backups", "prefix": f"{NS}/{NAME}", "secretRef": {"name": "creds"}}


OPTS = BuildOptions(images=Images(etcd_wrapper="wrapper:1", etcd_backup_restore="br:1", alpine="alpine:1"))
LOCAL = {"provider": "Local", "container": "bucket", "prefix": f"{NS}/{NAME}", "secretRef": {"name": "store"}}
T0 = dt.datetime(2026, 12, 3, 20, 0, tzinfo=dt.UTC)


def job(store: dict[str, Any] | None = None, config: VerifiedRestoreConfig | None = None, **kw: Any) -> dict[str, Any]:
    etcd = make_etcd(store or LOCAL)
    return vr.build_job(
        etcd, OPTS, config or VerifiedRestoreConfig(), task_name="verify", task_uid="uid-1", host_path="/buckets", **kw
    )


def pod_spec(j: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = j["spec"]["template"]["spec"]
    return spec


# ------------------------------------------------------------------------------------------------- the Job


def test_job_is_owned_by_the_task_and_selected_by_nothing_of_the_etcd() -> None:
    j = job()
    (owner,) = j["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("EtcdOpsTask", "verify", "uid-1", True)
    assert j["metadata"]["name"] == "verify-restore" and j["metadata"]["namespace"] == NS
    etcd = make_etcd(LOCAL)
    for labels in (j["metadata"]["labels"], j["spec"]["template"]["metadata"]["labels"]):
        assert labels[vr.LABEL_TASK] == "verify" and labels[vr.LABEL_ETCD] == NAME
        # Neither the client Service, the StatefulSet/PDB selector nor status.selector matches the scratch pod.
        for selector in (clientservice.pod_selector(etcd), pdb.build(etcd, OPTS)[0]["spec"]["selector"]["matchLabels"]):
            assert not all(labels.get(k) == v for k, v in selector.items()), selector


def test_job_reads_the_local_bucket_read_only_and_has_no_api_access() -> None:
    spec = pod_spec(job())
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    assert spec["restartPolicy"] == "Never" and spec["activeDeadlineSeconds"] == vr.DEFAULT_TIMEOUT_SECONDS + 60
    bucket = next(v for v in spec["volumes"] if "hostPath" in v)
    assert bucket["hostPath"] == {"path": "/buckets/bucket", "type": "Directory"}  # never created
    (restore,) = spec["initContainers"]
    mounts = {m["name"]: m for m in restore["volumeMounts"]}
    assert mounts[bucket["name"]].get("readOnly") is True
    assert not mounts["etcd-workspace-dir"].get("readOnly")
    (server,) = spec["containers"]
    # etcd sees only the scratch data directory, never the store.
    assert [m["name"] for m in server["volumeMounts"]] == ["etcd-workspace-dir"]


def test_job_restores_from_the_etcds_store_and_serves_the_result() -> None:
    spec = pod_spec(job())
    (restore,) = spec["initContainers"]
    assert restore["image"] == "br:1" and restore["args"][0] == "restore"
    assert f"--data-dir={vr.RESTORED_DATA_DIR}" in restore["args"]
    assert "--storage-provider=Local" in restore["args"] and f"--store-prefix={NS}/{NAME}" in restore["args"]
    assert "--store-container=bucket" in restore["args"]
    assert restore["terminationMessagePolicy"] == "FallbackToLogsOnError"
    (server,) = spec["containers"]
    assert server["image"] == "wrapper:1" and server["command"] == ["etcd"]
    assert f"--data-dir={vr.RESTORED_DATA_DIR}" in server["args"]
    assert "--listen-client-urls=http://0.0.0.0:2379" in server["args"]
    other = pod_spec(job(config=VerifiedRestoreConfig(etcd_image="etcd:3.5", timeout_seconds=60)))
    assert other["containers"][0]["image"] == "etcd:3.5" and other["activeDeadlineSeconds"] == 120


def test_job_of_a_cloud_store_mounts_its_credentials_read_only() -> None:
    spec = pod_spec(job(s3()))
    (restore,) = spec["initContainers"]
    secret = next(v for v in spec["volumes"] if "secret" in v)
    assert secret["secret"] == {"secretName": "creds"}
    assert next(m for m in restore["volumeMounts"] if m["name"] == secret["name"])["readOnly"] is True
    assert "--storage-provider=S3" in restore["args"]


def test_job_without_store_is_refused() -> None:
    with pytest.raises(JobSpecError):
        vr.build_job(make_etcd(None), OPTS, VerifiedRestoreConfig(), task_name="t", task_uid="u")


def test_job_name_fits_a_label_and_stays_unique() -> None:
    long_a, long_b = "a" * 60 + "x", "a" * 60 + "y"
    assert len(vr.job_name(long_a)) <= 63 and vr.job_name(long_a) != vr.job_name(long_b)
    assert vr.job_name("short") == "short-restore"


# ------------------------------------------------------------------------------------------------- decisions


def snap(kind: str, start: int, last: int, created: str) -> dict[str, Any]:
    name = f"{kind}-{start:08d}-{last:08d}-{int(dt.datetime.fromisoformat(created).timestamp())}.gz"
    return {
        "kind": kind.lower(),
        "snapDir": "",
        "snapName": name,
        "startRevision": start,
        "lastRevision": last,
        "createdOn": created,
    }


def test_restore_set_from_backup_restore_latest() -> None:
    body = {
        "fullSnapshot": snap("Full", 0, 40, "2026-12-03T19:00:00+00:00"),
        "deltaSnapshots": [
            snap("Incr", 41, 50, "2026-12-03T19:01:00+00:00"),
            snap("Incr", 51, 57, "2026-12-03T19:02:00+00:00"),
        ],
    }
    got = vr.parse_restore_set(json.dumps(body).encode())
    assert got.full is not None and got.full.startswith("Full-00000000-00000040-")
    assert (got.deltas, got.last_revision) == (2, 57)
    assert got.latest is not None and got.latest.startswith("Incr-00000051-00000057-")
    assert got.latest_time == dt.datetime(2026, 12, 3, 19, 2, tzinfo=dt.UTC)


@pytest.mark.parametrize("body", [b'{"fullSnapshot":null,"deltaSnapshots":null}', b"{}"])
def test_empty_store_has_no_full_snapshot(body: bytes) -> None:
    got = vr.parse_restore_set(body)
    assert got.full is None and got.last_revision == 0


def test_deltas_without_a_full_snapshot_still_have_no_full() -> None:
    body = {"fullSnapshot": None, "deltaSnapshots": [snap("Incr", 60, 61, "2026-12-03T19:05:00+00:00")]}
    got = vr.parse_restore_set(json.dumps(body).encode())
    assert got.full is None and got.deltas == 1


@pytest.mark.parametrize("body", [b"[]", b"not json", b"null"])
def test_unreadable_restore_set_raises(body: bytes) -> None:
    with pytest.raises(ValueError):
        vr.parse_restore_set(body)


def test_lease_revision_is_the_highest_holder() -> None:
    lease = lambda holder: {"spec": {"holderIdentity": holder}}  # noqa: E731
    assert vr.lease_revision([lease("40"), lease("57")]) == 57
    assert vr.lease_revision([lease(None), None, lease("x")]) is None
    assert vr.lease_revision([None, lease("3")]) == 3


@pytest.mark.parametrize(
    ("restored", "leases", "snapshots", "ok"),
    [
        (KeySpace(57, 30), 57, 57, True),
        (KeySpace(60, 30), 57, 55, True),  # beyond what was reported: fine
        (KeySpace(56, 30), 57, 57, False),
        (KeySpace(57, 30), None, 58, False),
        (KeySpace(57, 30), None, None, True),
    ],
)
def test_verdict_requires_at_least_the_reported_revision(
    restored: KeySpace, leases: int | None, snapshots: int | None, ok: bool
) -> None:
    got = vr.verdict(restored, leases, snapshots)
    assert got.ok is ok
    assert got.reason == (vr.REASON_OK if ok else vr.REASON_BEHIND)
    assert str(restored.revision) in got.message


def test_verdict_names_an_empty_restore() -> None:
    got = vr.verdict(KeySpace(1, 0), 57, None)
    assert not got.ok and "empty etcd" in got.message and "57" in got.message


def pod(init: dict[str, Any] | None = None, main: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"status": dict(status)}
    if init is not None:
        out["status"]["initContainerStatuses"] = [{"name": vr.RESTORE_CONTAINER, "state": init}]
    if main is not None:
        out["status"]["containerStatuses"] = [{"name": vr.ETCD_CONTAINER, "state": main}]
    return out


def test_container_failures_carry_the_last_log_lines() -> None:
    log = "line 1\nline 2\nfailed to restore snapshot: open /x: no such file\nFatal\n"
    failed = pod({"terminated": {"exitCode": 1, "message": log}})
    reason, message = vr.container_failure(failed) or ("", "")
    assert reason == vr.REASON_RESTORE_FAILED and "no such file" in message and "line 1" not in message
    crashed = pod({"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 2, "reason": "Error"}})
    assert (vr.container_failure(crashed) or ("",))[0] == vr.REASON_ETCD_FAILED
    assert vr.container_failure(pod({"terminated": {"exitCode": 0}}, {"running": {}}, podIP="10.0.0.9")) is None
    assert vr.container_failure(pod({"running": {}}, {"waiting": {}})) is None
    assert (vr.container_failure(pod(phase="Failed", reason="DeadlineExceeded")) or ("",))[0] == vr.REASON_JOB


def test_container_failure_prefers_the_error_lines_of_a_logrus_log() -> None:
    log = (
        'time="t" level=info msg="Finding latest set of snapshot to recover from..."\n'
        'time="t" level=fatal msg="Failed to restore snapshot: failed to decompress: gzip: invalid header"\n'
        'time="t" level=info msg="Cleanup complete"\n'
    )
    _, message = vr.container_failure(pod({"terminated": {"exitCode": 1, "message": log}})) or ("", "")
    assert "gzip: invalid header" in message and "Finding latest" not in message


def test_etcd_serving_once_running_with_an_ip() -> None:
    assert vr.etcd_serving(pod({"terminated": {"exitCode": 0}}, {"running": {}}, podIP="10.0.0.9")) == "10.0.0.9"
    assert vr.etcd_serving(pod({"running": {}}, {"waiting": {}}, podIP="10.0.0.9")) is None
    assert vr.etcd_serving(pod({"terminated": {"exitCode": 0}}, {"running": {}})) is None


# ------------------------------------------------------------------------------------------------- condition


def test_condition_failure_keeps_the_last_success() -> None:
    ok = vr.condition_result(True, vr.REASON_OK, "revision 57, 30 keys", None)
    assert (ok.type, ok.status) == ("BackupRestoreVerified", "True")
    first_failure = vr.condition_result(False, vr.REASON_NO_FULL, "no full snapshot", None)
    assert first_failure.message.endswith("no restore verified yet")
    prev = {"status": "True", "message": "revision 57, 30 keys"}
    failed = vr.condition_result(False, vr.REASON_NO_FULL, "no full snapshot", prev)
    assert failed.status == "False" and failed.message.endswith("last verified restore: revision 57, 30 keys")
    again = vr.condition_result(False, vr.REASON_BEHIND, "behind", {"status": "False", "message": failed.message})
    assert again.message == "behind; last verified restore: revision 57, 30 keys"


def test_condition_is_added_without_disturbing_the_upstream_conditions() -> None:
    upstream = [
        {"type": t, "status": "True", "reason": "r", "message": "m"}
        for t in ("AllMembersReady", "AllMembersUpdated", "BackupReady", "DataVolumesReady", "Ready")
    ]
    result = vr.condition_result(True, vr.REASON_OK, "revision 5", None)
    mine = cond.build_conditions([], [result], 1, T0)
    merged = merge_conditions(upstream, (vr.CONDITION_TYPE,), mine, sort=True)
    assert [x for x in merged if x["type"] != vr.CONDITION_TYPE] == upstream
    assert [x["type"] for x in merged].index(vr.CONDITION_TYPE) == 3
    # The Etcd controller keeps a condition type it does not manage verbatim.
    assert vr.CONDITION_TYPE not in cond.MANAGED_TYPES


def test_success_message_has_when_revision_and_duration() -> None:
    text = vr.success_message(57, 30, 4.25, 12.0, T0)
    assert "revision 57" in text and "30 keys" in text and "4.2s" in text and "12.0s" in text
    assert "2026-12-03T20:00:00Z" in text


def test_metrics_record_success_and_failures() -> None:
    registry = CollectorRegistry()
    m = vr.verified_restore_metrics(registry)
    m.succeeded(NS, NAME, T0, 57, 30, 4.5, 12.0)
    m.failed(NS, NAME, T0, vr.REASON_NO_FULL)
    labels = {"namespace": NS, "etcd": NAME}
    value = registry.get_sample_value
    assert value("druid_verified_restore_last_success_timestamp_seconds", labels) == T0.timestamp()
    assert value("druid_verified_restore_revision", labels) == 57
    assert value("druid_verified_restore_keys", labels) == 30
    assert value("druid_verified_restore_duration_seconds", labels) == 4.5
    assert value("druid_verified_restore_recovery_point_gap_seconds", labels) == 12.0
    assert value("druid_verified_restore_failures_total", {**labels, "reason": vr.REASON_NO_FULL}) == 1
    assert value("druid_verified_restore_runs_total", {**labels, "succeeded": "false"}) == 1
    assert c.CONDITION_BACKUP_RESTORE_VERIFIED == vr.CONDITION_TYPE


# ------------------------------------------------------------------------------------------------- the handler


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> dt.datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()


class Stand:
    """backup-restore's ``/snapshot/latest`` and the scratch etcd's gateway on one local port."""

    def __init__(self) -> None:
        self.latest: dict[str, Any] = {
            "fullSnapshot": snap("Full", 0, 40, "2026-12-03T19:00:00+00:00"),
            "deltaSnapshots": [snap("Incr", 41, 57, "2026-12-03T19:59:50+00:00")],
        }
        self.range: dict[str, Any] = {"header": {"revision": "57"}, "count": "30"}
        self.ranges: list[dict[str, Any]] = []

    async def __aenter__(self) -> Stand:
        async def latest(_: web.Request) -> web.Response:
            return web.json_response(self.latest)

        async def kv_range(request: web.Request) -> web.Response:
            self.ranges.append(await request.json())
            return web.json_response(self.range)

        app = web.Application()
        app.router.add_get("/snapshot/latest", latest)
        app.router.add_post("/v3/kv/range", kv_range)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


def cluster() -> Any:
    from druid.runtime.objects import LEASES, SECRETS

    kube = FakeKube()
    ready = {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": "2026-12-03T10:00:00Z",
        "lastUpdateTime": "2026-12-03T10:00:00Z",
        "reason": "r",
        "message": "m",
    }
    body = make_etcd(LOCAL).to_dict()
    body.update(apiVersion=c.API_VERSION, kind=c.KIND_ETCD, status={"conditions": [ready]})
    kube.add(ETCDS, body)
    kube.add(
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "store", "namespace": NS},
            "data": {"hostPath": "L2J1Y2tldHM="},
        },
    )
    for lease, holder in (("full-snap", "40"), ("delta-snap", "57")):
        kube.add(
            LEASES,
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": f"{NAME}-{lease}", "namespace": NS},
                "spec": {"holderIdentity": holder},
            },
        )
    return kube


def handler(kube: Any, stand: Stand, clock: Clock, status: dict[str, Any] | None = None) -> vr.VerifiedRestoreHandler:
    from druid.backuprestore import BackupRestoreClient

    client = BackupRestoreClient(lambda _etcd: f"http://127.0.0.1:{stand.port}")
    spec = EtcdOpsTaskSpec.model_validate({"etcdName": NAME, "config": {"verifiedRestore": {"timeoutSeconds": 60}}})
    h = vr.VerifiedRestoreHandler(
        HandlerDeps(kube, client, OPTS), TaskRef(NS, "verify", spec, status or {}, "uid-1"), clock
    )
    h.client_port = stand.port
    return h


def scratch_pod(init: dict[str, Any], main: dict[str, Any] | None = None) -> dict[str, Any]:
    out = pod(init, main, podIP="127.0.0.1", phase="Running")
    out.update(
        apiVersion="v1",
        kind="Pod",
        metadata={"name": "verify-restore-x", "namespace": NS, "labels": {"job-name": "verify-restore"}},
    )
    return out


def etcd_condition(kube: Any) -> dict[str, Any]:

    conditions = kube.object(ETCDS, NAME, NS)["status"]["conditions"]
    (mine,) = [x for x in conditions if x["type"] == vr.CONDITION_TYPE]
    assert [x["type"] for x in conditions] == ["BackupRestoreVerified", "Ready"]
    return dict(mine)


async def test_handler_restores_polls_verifies_and_cleans_up() -> None:

    kube, clock = cluster(), Clock()
    async with Stand() as stand:
        first = await handler(kube, stand, clock).execute()
        assert first.requeue and first.error is None and first.status is not None
        found = first.status["verifiedRestore"]
        assert found["leaseRevision"] == 57 and found["snapshotRevision"] == 57 and found["deltaSnapshots"] == 1
        job_ = kube.object(JOBS, "verify-restore", NS)
        assert job_["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert job_["spec"]["template"]["spec"]["volumes"][1]["hostPath"]["path"] == "/buckets/bucket"

        # The restore still runs: wait.
        clock.at += dt.timedelta(seconds=2)
        kube.add(PODS, scratch_pod({"running": {}}, {"waiting": {}}))
        waiting = await handler(kube, stand, clock, dict(first.status)).execute()
        assert waiting.requeue and waiting.error is None and not stand.ranges

        # etcd serves the restored data: verified.
        clock.at += dt.timedelta(seconds=3)
        kube.add(PODS, scratch_pod({"terminated": {"exitCode": 0}}, {"running": {}}))
        assert waiting.status is not None
        done = await handler(kube, stand, clock, dict(waiting.status)).execute()
    assert done.error is None and not done.requeue and done.status is not None
    found = done.status["verifiedRestore"]
    assert (found["restoredRevision"], found["keyCount"], found["reason"]) == (57, 30, "")
    assert found["recoveryPointGap"] == "15s"  # newest snapshot 19:59:50, verified 20:00:05
    assert [s["state"] for s in done.status["steps"]] == ["Succeeded"] * 3
    assert stand.ranges[0]["count_only"] is True
    assert kube.object(JOBS, "verify-restore", NS) is None
    condition = etcd_condition(kube)
    assert condition["status"] == "True" and "revision 57, 30 keys" in condition["message"]


async def test_handler_fails_on_a_revision_behind_the_leases_and_keeps_the_last_success() -> None:

    kube, clock = cluster(), Clock()
    async with Stand() as stand:
        first = await handler(kube, stand, clock).execute()
        kube.add(PODS, scratch_pod({"terminated": {"exitCode": 0}}, {"running": {}}))
        assert first.status is not None
        stand.range = {"header": {"revision": "1"}}  # a fresh, empty etcd: nothing was restored
        done = await handler(kube, stand, clock, dict(first.status)).execute()
    assert done.error is not None and not done.requeue and done.status is not None
    assert done.status["verifiedRestore"]["reason"] == vr.REASON_BEHIND
    assert "empty etcd" in done.error.description()
    condition = etcd_condition(kube)
    assert condition["status"] == "False" and condition["reason"] == vr.REASON_BEHIND


async def test_handler_fails_without_a_full_snapshot_before_any_job() -> None:

    kube, clock = cluster(), Clock()
    async with Stand() as stand:
        stand.latest = {"fullSnapshot": None, "deltaSnapshots": None}
        done = await handler(kube, stand, clock).execute()
    assert done.error is not None and done.status is not None
    assert done.status["verifiedRestore"]["reason"] == vr.REASON_NO_FULL
    assert not kube.objects(JOBS, NS) and not [w for w in kube.writes() if "/jobs" in w[1] and w[0] == "POST"]
    assert etcd_condition(kube)["reason"] == vr.REASON_NO_FULL


async def test_handler_reports_the_restore_containers_last_lines() -> None:

    kube, clock = cluster(), Clock()
    async with Stand() as stand:
        first = await handler(kube, stand, clock).execute()
        log = "Finding latest set of snapshot to recover from...\nfailed to restore: corrupt snapshot: hash mismatch\n"
        kube.add(PODS, scratch_pod({"terminated": {"exitCode": 1, "message": log}}))
        assert first.status is not None
        done = await handler(kube, stand, clock, dict(first.status)).execute()
    assert done.error is not None and done.status is not None
    assert done.status["verifiedRestore"]["reason"] == vr.REASON_RESTORE_FAILED
    assert "hash mismatch" in done.error.description()


async def test_handler_times_out() -> None:

    kube, clock = cluster(), Clock()
    async with Stand() as stand:
        first = await handler(kube, stand, clock).execute()
        kube.add(PODS, scratch_pod({"running": {}}, {"waiting": {}}))
        clock.at += dt.timedelta(seconds=61)
        assert first.status is not None
        done = await handler(kube, stand, clock, dict(first.status)).execute()
    assert done.error is not None and done.status is not None
    assert done.status["verifiedRestore"]["reason"] == vr.REASON_TIMEOUT
