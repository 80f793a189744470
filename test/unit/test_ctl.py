"""Checklist item 70 and `druid status`: selection rules, patch bodies, list-resources output, the diagnosis table."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
import yaml

from druid.api import constants as c
from druid.api.facts import MemberThresholds, secret_references
from druid.cli import ctl, diagnose, listresources
from druid.cli.ctlcommon import CtlError, EtcdRef, etcd_refs, selection_error
from druid.cli.main import build_parser, main
from druid.gocompat import duration
from druid.runtime.clock import micro_time, rfc3339

NOW = dt.datetime(2026, 3, 4, 12, 0, 0, tzinfo=dt.UTC)
UID = "1111-2222"
SUSPEND, OPERATION = c.ANNOTATION_SUSPEND_SPEC_RECONCILE, c.ANNOTATION_OPERATION
PROTECTION = c.ANNOTATION_DISABLE_COMPONENT_PROTECTION

# ------------------------------------------------------------------ selection rules (druidctl options.go)


@pytest.mark.parametrize(
    ("names", "namespace", "all_ns", "error"),
    [
        ([], None, False, None),
        (["a", "b"], None, False, None),
        (["a"], "x", False, None),
        (["ns/a", "b"], None, False, None),
        ([], None, True, None),
        (["a"], None, True, "cannot specify resource names when using --all-namespaces/-A"),
        ([], "x", True, "cannot use --namespace/-n with --all-namespaces/-A"),
        (["ns/a"], "x", False, "cannot use --namespace/-n with cross-namespace resource references (ns/name format)"),
    ],
)
def test_selection_rules(names: list[str], namespace: str | None, all_ns: bool, error: str | None) -> None:
    assert selection_error(names, namespace, all_ns) == error


def test_etcd_refs_default_namespace_and_ns_name() -> None:
    assert etcd_refs(["a", " ns/b ", ""], None) == [EtcdRef("default", "a"), EtcdRef("ns", "b")]
    assert etcd_refs(["a"], "x") == [EtcdRef("x", "a")]
    for bad in ("/a", "ns/"):
        with pytest.raises(CtlError):
            etcd_refs([bad], None)


def _trigger_args(*argv: str) -> Any:
    return build_parser().parse_args(["reconciliation", "trigger", *argv])


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["-w"], None),
        (["-w", "-t", "30s"], None),
        (["-W"], None),
        (["-t", "1m"], "cannot specify --timeout/-t without --wait-till-ready/-w"),
        (["-W", "-w"], "cannot specify --watch/-W with --wait-till-ready/-w or --timeout/-t"),
        (["-W", "-t", "1m"], "cannot specify --timeout/-t without --wait-till-ready/-w"),
    ],
)
def test_trigger_wait_flag_rules(argv: list[str], error: str | None) -> None:
    assert ctl.trigger_error(_trigger_args(*argv)) == error


def test_trigger_flags_parse_go_durations_and_hidden_poll_interval(capsys: pytest.CaptureFixture[str]) -> None:
    args = _trigger_args("e1", "ns/e2", "-w", "-t", "1m30s", "--poll-interval", "200ms", "-v", "--no-banner")
    assert (args.etcds, args.timeout, args.poll_interval, args.wait_till_ready) == (["e1", "ns/e2"], 90.0, 0.2, True)
    assert _trigger_args().poll_interval == 10.0 and _trigger_args().timeout is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reconciliation", "trigger", "--help"])
    assert "--poll-interval" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _trigger_args("-t", "soon")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reconciliation", "suspend", "-A", "e1"], "cannot specify resource names"),
        (["component-protection", "remove", "-A", "-n", "x"], "cannot use --namespace/-n with --all-namespaces"),
        (["reconciliation", "resume", "ns/e1", "-n", "x"], "cross-namespace"),
        (["reconciliation", "trigger", "e1", "-t", "1m"], "without --wait-till-ready"),
        (["list-resources", "-A", "e1"], "cannot specify resource names"),
    ],
)
def test_invalid_selection_fails_before_connecting(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--kubeconfig", "/nonexistent"]) == 1
    assert message in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_all_namespaces_needs_yes_without_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a TTY: never read
    assert main(["reconciliation", "suspend", "-A", "--kubeconfig", "/nonexistent"]) == 1
    assert "pass --yes" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert main(["component-protection", "remove", "-A", "--kubeconfig", "/nonexistent"]) == 0
    out = capsys.readouterr().out
    assert "remove protection from ALL etcd resources across ALL namespaces. Continue? [y/n]" in out
    assert "Operation cancelled by user" in out


# ------------------------------------------------------------------ patch bodies: one annotation, nothing else


def test_patch_bodies_touch_only_the_annotation() -> None:
    assert ctl.trigger_patch() == {"metadata": {"annotations": {OPERATION: "reconcile"}}}
    assert ctl.trigger_patch("42") == {"metadata": {"annotations": {OPERATION: "reconcile"}, "resourceVersion": "42"}}
    assert ctl.SUSPEND.patch() == {"metadata": {"annotations": {SUSPEND: "true"}}}
    assert ctl.RESUME.patch() == {"metadata": {"annotations": {SUSPEND: None}}}
    assert ctl.PROTECT.patch() == {"metadata": {"annotations": {PROTECTION: None}}}  # component-protection add
    assert ctl.UNPROTECT.patch() == {"metadata": {"annotations": {PROTECTION: ""}}}  # component-protection remove


def test_verbs_skip_etcds_already_in_the_wanted_state() -> None:
    def with_notes(**notes: str) -> dict[str, Any]:
        return {"metadata": {"name": "e", "annotations": notes}}

    assert ctl.SUSPEND.satisfied(with_notes(**{SUSPEND: "true"}))
    assert not ctl.SUSPEND.satisfied(with_notes(**{SUSPEND: "false"}))
    assert ctl.RESUME.satisfied(with_notes()) and not ctl.RESUME.satisfied(with_notes(**{SUSPEND: "x"}))
    assert ctl.UNPROTECT.satisfied(with_notes(**{PROTECTION: ""})) and ctl.PROTECT.satisfied({"metadata": {}})


# ------------------------------------------------------------------ list-resources


def test_filter_tokens_and_resolution() -> None:
    assert listresources.parse_filter("all") == list(listresources.DEFAULT_KINDS)
    assert listresources.parse_filter(" ") == list(listresources.DEFAULT_KINDS)
    assert listresources.parse_filter("Pods, sts,,svc") == ["pods", "sts", "svc"]
    resolved = {
        t: listresources.known(t)
        for t in ("po", "statefulset", "StatefulSet".lower(), "pdb", "leases.coordination.k8s.io")
    }
    assert {t: r.plural if r else None for t, r in resolved.items()} == {
        "po": "pods",
        "statefulset": "statefulsets",
        "pdb": "poddisruptionbudgets",
        "leases.coordination.k8s.io": "leases",
    }
    assert listresources.known("etcds") is None  # left to discovery


def test_list_resources_output_formats() -> None:
    result = {
        "etcds": [
            {
                "etcd": {"name": "e", "namespace": "ns"},
                "items": [
                    {
                        "key": {"group": "", "version": "v1", "resource": "pods", "kind": "Pod"},
                        "resources": [{"namespace": "ns", "name": "e-0", "age": 125 * 10**9}],
                    }
                ],
            },
            {"etcd": {"name": "f", "namespace": "ns"}, "items": []},
        ],
        "kind": "EtcdResourceList",
    }
    assert json.loads(listresources.render(result, "json")) == result
    assert json.loads(listresources.render(result, "json-raw")) == result
    assert yaml.safe_load(listresources.render(result, "yaml")) == result
    text = listresources.render(result, None).splitlines()
    assert text[0] == "Etcd [ns/e]" and text[1].split() == ["KIND", "NAMESPACEDNAME", "AGE"]
    assert text[2].split() == ["Pod", "ns/e-0", "2m"]
    assert text[3:] == ["Etcd [ns/f]", "  No resources found for selected filters"]
    assert [listresources.short_age(s * 10**9) for s in (5, 61, 7300, 200000)] == ["5s", "1m", "2h", "2d"]


# ------------------------------------------------------------------ diagnosis


def _ago(seconds: float) -> str:
    return micro_time(NOW - dt.timedelta(seconds=seconds))


def make_etcd(
    replicas: int = 3, *, store: bool = False, notes: dict[str, str] | None = None, generation: int = 1, **extra: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "etcd": {}, "backup": {}}
    if store:
        spec["backup"] = {"store": {"provider": "Local", "prefix": "p"}, "deltaSnapshotPeriod": "60s"}
    meta = {"name": "etcd-main", "namespace": "ns", "uid": UID, "generation": generation, "annotations": notes or {}}
    return {"metadata": meta, "spec": spec, "status": {"observedGeneration": 1}} | extra


def member_lease(name: str, age: float | None, holder: str | None = "abc:cid:Member") -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if holder is not None:
        spec["holderIdentity"] = holder
    if age is not None:
        spec["renewTime"] = _ago(age)
    return {"metadata": {"name": name, "creationTimestamp": rfc3339(NOW - dt.timedelta(hours=1))}, "spec": spec}


def leases(replicas: int = 3, ages: dict[int, float | None] | None = None, **snap: float | None) -> dict[str, Any]:
    ages = ages or {}
    out = {f"etcd-main-{i}": member_lease(f"etcd-main-{i}", ages.get(i, 2)) for i in range(replicas)}
    for kind in ("full", "delta"):
        if kind in snap:
            out[f"etcd-main-{kind}-snap"] = member_lease(f"etcd-main-{kind}-snap", snap[kind], holder="100")
    return out


def sts(replicas: int = 3, ready: int | None = None, updated: int | None = None, uid: str = UID) -> dict[str, Any]:
    ready = replicas if ready is None else ready
    updated = replicas if updated is None else updated
    owner = [{"apiVersion": c.API_VERSION, "kind": "Etcd", "name": "etcd-main", "uid": uid, "controller": True}]
    return {
        "metadata": {"name": "etcd-main", "namespace": "ns", "generation": 1, "ownerReferences": owner},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": ready,
            "currentReplicas": replicas,
            "updatedReplicas": updated,
            "currentRevision": "r1",
            "updateRevision": "r1" if updated == replicas else "r2",
        },
    }


def ready_pods(*names: str, ready: bool = True) -> dict[str, Any]:
    status = "True" if ready else "False"
    return {n: {"status": {"conditions": [{"type": "ContainersReady", "status": status}]}} for n in names}


BACKUP_FAILED: dict[str, Any] = {
    "observedGeneration": 1,
    "conditions": [{"type": "BackupReady", "status": "False", "reason": "BackupFailed", "message": "Stale"}],
}
TLS = {
    "clientUrlTls": {name: {"name": s} for name, s in (("tlsCASecretRef", "etcd-ca"), ("serverTLSSecretRef", "srv"))}
}
M1 = "member etcd-main-1 lease not renewed for"

CASES: list[tuple[str, dict[str, Any], dict[str, Any], Any, dict[str, Any] | None, str]] = [
    ("healthy", make_etcd(), leases(), sts(), None, "READY: 3/3 members ready, quorate"),
    (
        "healthy-with-backups",
        make_etcd(store=True),
        leases(full=3600, delta=30),
        sts(),
        None,
        "READY: 3/3 members ready, quorate, backups fresh",
    ),
    (
        "member-lease-expired",
        make_etcd(),
        leases(ages={1: 133}),
        sts(),
        None,
        f"NOT READY: {M1} 2m13s (Unknown/LeaseExpired)",
    ),
    (
        "member-containers-not-ready",
        make_etcd(),
        leases(ages={1: 133}),
        sts(),
        ready_pods("etcd-main-0", "etcd-main-2") | ready_pods("etcd-main-1", ready=False),
        f"NOT READY: {M1} 2m13s (NotReady/ContainersNotReady)",
    ),
    (
        "member-grace-exceeded",
        make_etcd(),
        leases(ages={1: 400}),
        sts(),
        None,
        f"NOT READY: {M1} 6m40s (NotReady/UnknownGracePeriodExceeded)",
    ),
    (
        "quorum-lost",
        make_etcd(),
        leases(ages={0: 900, 1: 900}),
        sts(),
        None,
        "NOT READY: quorum lost (1/3 members ready): member etcd-main-0 lease not renewed for 15m "
        "(NotReady/UnknownGracePeriodExceeded) (+1 more)",
    ),
    (
        "member-lease-missing",
        make_etcd(),
        {k: v for k, v in leases().items() if k != "etcd-main-2"},
        sts(),
        None,
        "NOT READY: member lease etcd-main-2 not found",
    ),
    (
        "member-not-started",
        make_etcd(),
        leases(ages={0: None}),
        sts(),
        None,
        "NOT READY: member etcd-main-0 has not renewed its lease yet (not started)",
    ),
    (
        "backup-delta-stale",
        make_etcd(store=True, status=BACKUP_FAILED),
        leases(full=600, delta=540),
        sts(),
        None,
        "NOT READY: backup snapshot leases stale: delta snapshot last renewed 9m ago (BackupReady=False/BackupFailed)",
    ),
    (
        "backup-full-stale",
        make_etcd(store=True),
        leases(full=26 * 3600, delta=10),
        sts(),
        None,
        "NOT READY: backup snapshot leases stale: full snapshot last renewed 26h ago (BackupReady not reported)",
    ),
    (
        "backup-never",
        make_etcd(store=True),
        leases(full=None, delta=None),
        sts(),
        None,
        "NOT READY: no snapshot taken yet: snapshot leases never renewed (BackupReady not reported)",
    ),
    (
        "backup-lease-missing",
        make_etcd(store=True),
        leases(full=5),
        sts(),
        None,
        "NOT READY: snapshot lease etcd-main-delta-snap not found",
    ),
    (
        "secret-missing",
        make_etcd(spec={"replicas": 3, "etcd": TLS, "backup": {}}),
        leases(),
        sts(),
        None,
        'NOT READY: secret "etcd-ca" referenced by spec.etcd.clientUrlTls is missing',
    ),
    (
        "suspended-with-pending-spec",
        make_etcd(notes={SUSPEND: "true"}, generation=2),
        leases(),
        sts(),
        None,
        f"NOT READY: spec reconciliation suspended (annotation {SUSPEND}) and spec generation 2 not reconciled "
        "(observedGeneration 1)",
    ),
    (
        "suspended-healthy",
        make_etcd(notes={SUSPEND: ""}),
        leases(),
        sts(),
        None,
        f"READY: 3/3 members ready, quorate; spec reconciliation suspended (annotation {SUSPEND})",
    ),
    (
        "statefulset-missing",
        make_etcd(),
        leases(),
        None,
        None,
        "NOT READY: StatefulSet ns/etcd-main not found (+0 more)",
    ),
    (
        "statefulset-foreign",
        make_etcd(),
        leases(),
        sts(uid="other"),
        None,
        "NOT READY: StatefulSet ns/etcd-main is not controlled by this Etcd",
    ),
    (
        "pods-not-ready",
        make_etcd(),
        leases(),
        sts(ready=2),
        None,
        "NOT READY: StatefulSet ns/etcd-main: 2/3 pods ready",
    ),
    (
        "rollout",
        make_etcd(),
        leases(),
        sts(updated=1),
        None,
        "NOT READY: StatefulSet ns/etcd-main rollout in progress (1/3 pods updated)",
    ),
    ("scaled-to-zero", make_etcd(0), {}, None, None, "NOT READY: scaled to zero (spec.replicas is 0)"),
    (
        "deleting",
        make_etcd(
            metadata={
                "name": "etcd-main",
                "namespace": "ns",
                "uid": UID,
                "generation": 1,
                "deletionTimestamp": rfc3339(NOW - dt.timedelta(seconds=30)),
            }
        ),
        leases(),
        sts(),
        None,
        "NOT READY: Etcd is being deleted (since 30s ago)",
    ),
    (
        "last-operation-error",
        make_etcd(
            status={
                "observedGeneration": 1,
                "lastOperation": {"type": "Reconcile", "state": "Error", "description": "x"},
                "lastErrors": [{"code": "ERR_SYNC_STATEFULSET", "description": "boom"}],
            }
        ),
        leases(),
        sts(),
        None,
        "NOT READY: last Reconcile failed: boom",
    ),
    (
        "not-reconciled",
        make_etcd(status={}),
        leases(),
        sts(),
        None,
        "NOT READY: spec generation 1 not reconciled (observedGeneration none)",
    ),
    (
        "cluster-id-split",
        make_etcd(),
        leases() | {"etcd-main-2": member_lease("etcd-main-2", 1, "def:other:Member")},
        sts(),
        None,
        "NOT READY: members report 2 cluster IDs: cid: etcd-main-0, etcd-main-1; other: etcd-main-2",
    ),
]


@pytest.mark.parametrize(("case", "etcd", "lease_map", "statefulset", "pods", "line"), CASES, ids=[x[0] for x in CASES])
def test_diagnosis_table(
    case: str, etcd: dict[str, Any], lease_map: dict[str, Any], statefulset: Any, pods: Any, line: str
) -> None:
    d = diagnose.analyse(etcd, lease_map, {"srv"}, statefulset, NOW, pods=pods)
    ready, got = d.ready, d.line
    if line.endswith(" (+0 more)"):  # only the first problem matters here
        assert got.startswith(line.removesuffix(" (+0 more)")), got
    else:
        assert got == line
    assert ready is line.startswith("READY")


def test_several_problems_name_the_first_and_count_the_rest() -> None:
    etcd = make_etcd(store=True, spec={"replicas": 3, "etcd": TLS, "backup": {}})
    d = diagnose.analyse(etcd, {}, set(), None, NOW)
    assert d.line == 'NOT READY: secret "etcd-ca" referenced by spec.etcd.clientUrlTls is missing (+5 more)'
    assert d.problems[1:] == [
        'secret "srv" referenced by spec.etcd.clientUrlTls is missing',
        "StatefulSet ns/etcd-main not found",
        "quorum lost (0/3 members ready): member lease etcd-main-0 not found",
        *(f"member lease etcd-main-{i} not found" for i in (1, 2)),
    ]


def test_member_name_prefix_and_thresholds() -> None:
    etcd = make_etcd(1)
    etcd["spec"]["memberNamePrefix"] = "pfx"
    lease_map = {"pfx-etcd-main-0": member_lease("pfx-etcd-main-0", 90, "abc:Leader")}
    assert diagnose.analyse(etcd, lease_map, set(), sts(1), NOW).line.endswith("90s (Unknown/LeaseExpired)")
    ok = diagnose.analyse(etcd, lease_map, set(), sts(1), NOW, thresholds=MemberThresholds(unknown=120))
    assert (ok.ready, ok.line) == (True, "READY: 1/1 members ready, quorate")
    (view,) = diagnose.member_views(etcd, lease_map, NOW)
    assert (view.name, view.role, view.member_id, view.cluster_id) == ("pfx-etcd-main-0", "Leader", "abc", None)


def test_secret_refs_cover_tls_and_store() -> None:
    etcd = make_etcd(
        spec={
            "etcd": {
                "clientUrlTls": {"tlsCASecretRef": {"name": "ca"}, "clientTLSSecretRef": {"name": "cl"}},
                "peerUrlTls": {"tlsCASecretRef": {"name": "ca"}, "serverTLSSecretRef": {"name": "peer"}},
            },
            "backup": {"tls": {"serverTLSSecretRef": {"name": "br"}}, "store": {"secretRef": {"name": "creds"}}},
        }
    )
    assert secret_references(etcd) == [
        ("ca", "spec.etcd.clientUrlTls"),
        ("cl", "spec.etcd.clientUrlTls"),
        ("ca", "spec.etcd.peerUrlTls"),
        ("peer", "spec.etcd.peerUrlTls"),
        ("br", "spec.backup.tls"),
        ("creds", "spec.backup.store.secretRef"),
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (133, "2m13s"),
        (540, "9m"),
        (3000, "50m"),
        (4 * 3600 + 60 * 20, "4h20m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (40 * 86400, "40d"),
        (800 * 86400, "2y70d"),
        (3000 * 86400, "8y"),
    ],
)
def test_human_duration_like_kubectl(seconds: float, text: str) -> None:
    assert duration.human_duration(seconds) == text
