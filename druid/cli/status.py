"""``druid status ETCD``: a human summary of one Etcd, ending with exactly one verdict line.

Reads the live objects (the Etcd, the Leases of its namespace, the referenced Secrets' metadata, the
StatefulSet and the member pods) and prints members, conditions, replicas, backup freshness, annotations,
lastOperation/lastErrors, the list of problems and the verdict from :mod:`druid.cli.diagnose`
(``READY: ...`` or ``NOT READY: ...``) as the last line. ``-o json`` prints the same as one JSON document.

Exit codes: 0 Ready, 1 not Ready, 2 when it cannot tell (bad arguments, the Etcd does not exist, the API
server cannot be read).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import Any

from druid.api import constants as c
from druid.api import facts, names
from druid.api.facts import MemberThresholds, secret_references
from druid.cli import diagnose as d
from druid.cli.ctlcommon import ETCDS, CtlError, connect, etcd_refs, format_table, go_duration, selection_error
from druid.controllers.etcd.members import expected_lease_names, pod_name_for_lease
from druid.gocompat import duration
from druid.runtime.client import METADATA_ONLY, ApiError, Kube
from druid.runtime.clock import parse_time
from druid.runtime.objects import LEASES, PODS, SECRETS, STATEFULSETS, Obj

EXIT_READY, EXIT_NOT_READY, EXIT_UNKNOWN = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("etcd", metavar="ETCD", help="NAME (namespace from -n, default 'default') or NAMESPACE/NAME")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="text (default) or json")
    p.add_argument(
        "--unknown-threshold", type=go_duration, default=60.0, help="operator's etcdMember.unknownThreshold (1m)"
    )
    p.add_argument(
        "--not-ready-threshold", type=go_duration, default=300.0, help="operator's etcdMember.notReadyThreshold (5m)"
    )


@dataclass
class Observed:
    etcd: Obj
    leases: dict[str, Obj]
    secrets: set[str]
    statefulset: Obj | None
    pods: dict[str, Obj]


async def _secret_exists(kube: Kube, namespace: str, name: str) -> bool:
    try:
        await kube.request("GET", SECRETS.path(namespace, name), accept=METADATA_ONLY)  # no Secret data
    except ApiError as e:
        if e.not_found:
            return False
        raise
    return True


async def observe(kube: Kube, namespace: str, name: str) -> Observed:
    etcd = await kube.get_or_none(ETCDS, name, namespace)
    if etcd is None:
        raise CtlError(f"etcd {name!r} not found in namespace {namespace!r}")
    secret_names = [s for s, _ in secret_references(etcd)]
    prefix = (etcd.get("spec") or {}).get("memberNamePrefix")
    pod_names = [pod_name_for_lease(lease, prefix) for lease in expected_lease_names(etcd)]
    leases, sts, exists, pods = await asyncio.gather(
        kube.list(LEASES, namespace),
        kube.get_or_none(STATEFULSETS, names.statefulset_name(name), namespace),
        asyncio.gather(*(_secret_exists(kube, namespace, s) for s in secret_names)),
        asyncio.gather(*(kube.get_or_none(PODS, p, namespace) for p in pod_names)),
    )
    return Observed(
        etcd,
        {x["metadata"]["name"]: x for x in leases.get("items") or ()},
        {s for s, ok in zip(secret_names, exists, strict=True) if ok},
        sts,
        {p: pod for p, pod in zip(pod_names, pods, strict=True) if pod is not None},
    )


def _ago(now: dt.datetime, text: str | None) -> str:
    return duration.human_duration((now - parse_time(text)).total_seconds()) if text else "-"


def _header(etcd: Obj, sts: Obj | None, now: dt.datetime) -> list[str]:
    meta, spec, status = etcd.get("metadata") or {}, etcd.get("spec") or {}, etcd.get("status") or {}
    notes = meta.get("annotations") or {}
    lines = [
        f"Etcd {meta.get('namespace')}/{meta.get('name')}  (age {_ago(now, meta.get('creationTimestamp'))}, "
        f"generation {meta.get('generation')}, observedGeneration {status.get('observedGeneration', 'none')})"
    ]
    suspended = facts.spec_reconcile_suspended(etcd)
    lines.append(
        "  Spec reconciliation: "
        + (f"SUSPENDED (annotation {c.ANNOTATION_SUSPEND_SPEC_RECONCILE})" if suspended else "active")
    )
    protected = facts.components_protected(etcd)
    lines.append(
        "  Component protection: "
        + ("enabled" if protected else f"DISABLED (annotation {c.ANNOTATION_DISABLE_COMPONENT_PROTECTION})")
    )
    for key in (c.ANNOTATION_OPERATION, c.ANNOTATION_GARDENER_OPERATION):
        if key in notes:
            lines.append(f"  Pending operation: {key}={notes[key]}")
    if not facts.runtime_components_enabled(etcd):
        lines.append(f"  Runtime components: DISABLED (annotation {c.ANNOTATION_DISABLE_RUNTIME_COMPONENT_CREATION})")
    replicas = (
        f"  Replicas: spec {spec.get('replicas', 0)}, status current {status.get('currentReplicas', 0)} "
        f"ready {status.get('readyReplicas', 0)}"
    )
    if sts is not None:
        s = sts.get("status") or {}
        replicas += (
            f"; StatefulSet {(sts.get('spec') or {}).get('replicas', 1)} replicas, {s.get('readyReplicas', 0)} ready, "
            f"{s.get('updatedReplicas', 0)} updated"
        )
    else:
        replicas += "; no StatefulSet"
    lines.append(replicas)
    return lines


def _members(etcd: Obj, diag: d.Diagnosis, now: dt.datetime) -> list[str]:
    recorded = {x.get("name"): x for x in (etcd.get("status") or {}).get("members") or ()}
    rows = [["NAME", "ROLE", "STATUS", "REASON", "SINCE", "LEASE RENEWED", "IN STATUS"]]
    for v in diag.members:
        rec = recorded.get(v.name) or {}
        since = _ago(now, rec.get("lastTransitionTime")) if rec.get("status") == v.status else "-"
        renewed = "never" if v.renewed_age is None else f"{duration.human_duration(v.renewed_age)} ago"
        rows.append([v.name, v.role or "-", v.status, v.reason, since, renewed, rec.get("status", "-")])
    return ["Members:", *format_table(rows, "  ")] if diag.members else ["Members: none expected (spec.replicas 0)"]


def _conditions(etcd: Obj, now: dt.datetime) -> list[str]:
    conds = (etcd.get("status") or {}).get("conditions") or []
    rows = [["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]]
    for x in conds:
        message = " ".join((x.get("message") or "").split())
        rows.append(
            [
                x.get("type", ""),
                x.get("status", ""),
                x.get("reason", ""),
                _ago(now, x.get("lastTransitionTime")),
                message[:100] + ("..." if len(message) > 100 else ""),
            ]
        )
    return ["Conditions:", *format_table(rows, "  ")] if conds else ["Conditions: none in status"]


def _backups(etcd: Obj, diag: d.Diagnosis) -> list[str]:
    store = ((etcd.get("spec") or {}).get("backup") or {}).get("store") or {}
    if not diag.snapshots:
        return ["Backups: no store configured"]
    where = f" container {store['container']}" if store.get("container") else ""
    lines = [f"Backups: store {store.get('provider')}{where} prefix {store.get('prefix', '')}"]
    rows = []
    for v in diag.snapshots:
        if not v.present:
            rows.append([v.kind, v.lease_name, "lease not found", ""])
            continue
        renewed = "never renewed" if v.renewed_age is None else f"renewed {duration.human_duration(v.renewed_age)} ago"
        state = "fresh" if v.fresh else "STALE" if v.renewed_age is not None else "-"
        rows.append(
            [
                v.kind,
                v.lease_name,
                f"{renewed} (revision {v.revision or '-'})",
                f"{state} (max age {duration.human_duration(v.limit)})",
            ]
        )
    return lines + format_table(rows, "  ")


def _operation(etcd: Obj, now: dt.datetime) -> list[str]:
    status = etcd.get("status") or {}
    op = status.get("lastOperation")
    lines = [
        f"Last operation: {op.get('type')} {op.get('state')}, {_ago(now, op.get('lastUpdateTime'))} ago: "
        f"{op.get('description')}"
        if op
        else "Last operation: none"
    ]
    errors = status.get("lastErrors") or []
    lines.append("Last errors:" + ("" if errors else " none"))
    lines += [f"  - [{e.get('code')}] {e.get('description')} ({_ago(now, e.get('observedAt'))} ago)" for e in errors]
    return lines


def render_text(obs: Observed, diag: d.Diagnosis, now: dt.datetime) -> str:
    lines = _header(obs.etcd, obs.statefulset, now)
    lines += _members(obs.etcd, diag, now) + _conditions(obs.etcd, now) + _backups(obs.etcd, diag)
    lines += _operation(obs.etcd, now)
    lines += ["Problems:" + ("" if diag.problems else " none"), *(f"  - {p}" for p in diag.problems)]
    lines.append(diag.line)
    return "\n".join(lines)


def render_json(obs: Observed, diag: d.Diagnosis) -> str:
    meta = obs.etcd["metadata"]
    doc: dict[str, Any] = {
        "etcd": f"{meta.get('namespace')}/{meta['name']}",
        "ready": diag.ready,
        "summary": diag.line,
        "problems": diag.problems,
        "suspended": diag.suspended,
        "members": [dataclasses.asdict(v) for v in diag.members],
        "snapshots": [dataclasses.asdict(v) | {"fresh": v.fresh} for v in diag.snapshots],
    }
    return json.dumps(doc, indent=2)


async def _status(args: argparse.Namespace, namespace: str, name: str) -> int:
    kube = await connect(args)
    async with kube:
        try:
            obs = await observe(kube, namespace, name)
        except ApiError as e:
            raise CtlError(f"cannot read etcd {namespace}/{name}: {e}") from e
    now = dt.datetime.now(dt.UTC)
    thresholds = MemberThresholds(args.unknown_threshold, args.not_ready_threshold)
    diag = d.analyse(obs.etcd, obs.leases, obs.secrets, obs.statefulset, now, pods=obs.pods, thresholds=thresholds)
    print(render_json(obs, diag) if args.output == "json" else render_text(obs, diag, now))
    return EXIT_READY if diag.ready else EXIT_NOT_READY


def main(args: argparse.Namespace) -> int:
    try:
        error = selection_error([args.etcd], args.namespace, False)
        if error:
            raise CtlError(error)
        refs = etcd_refs([args.etcd], args.namespace)
        if not refs:
            raise CtlError("no Etcd given")
        return asyncio.run(_status(args, refs[0].namespace, refs[0].name))
    except CtlError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_UNKNOWN
