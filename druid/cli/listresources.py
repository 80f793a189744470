"""``druid list-resources``: the objects labelled ``app.kubernetes.io/part-of=<etcd>`` for each selected Etcd.

As druidctl (``druidctl/cmd/listresources``): ``-f/--filter`` takes comma-separated resource names (plural,
singular, short name or kind, any case; ``plural.group`` too) or ``all`` for the default set (pods,
statefulsets, services, configmaps, secrets, persistentvolumeclaims, leases, poddisruptionbudgets, roles,
rolebindings, serviceaccounts); an unknown name is an error. ``-o json|json-raw|yaml`` prints
druidctl's ``EtcdResourceList`` document (``age`` in nanoseconds, as Go's ``time.Duration``); without
``-o``, one table per Etcd. Kinds are listed in filter order (druidctl sorts them by the length of the
kind's name). A kind that cannot be listed gives a warning on stderr and is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from typing import Any

import yaml

from druid.api import constants as c
from druid.cli.ctlcommon import CtlError, format_table, ref_of
from druid.runtime import objects as o
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import parse_time
from druid.runtime.objects import Obj, ResourceRef

DEFAULT_KINDS = (
    "pods",
    "statefulsets",
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "leases",
    "poddisruptionbudgets",
    "roles",
    "rolebindings",
    "serviceaccounts",
)
_KNOWN: tuple[tuple[ResourceRef, tuple[str, ...]], ...] = (
    (o.PODS, ("po",)),
    (o.STATEFULSETS, ("sts",)),
    (o.SERVICES, ("svc",)),
    (o.CONFIGMAPS, ("cm",)),
    (o.SECRETS, ()),
    (o.PVCS, ("pvc",)),
    (o.LEASES, ()),
    (o.PDBS, ("pdb",)),
    (o.ROLES, ()),
    (o.ROLEBINDINGS, ()),
    (o.SERVICEACCOUNTS, ("sa",)),
    (o.JOBS, ()),
)
OUTPUTS = ("json", "json-raw", "yaml")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filter", default="all", help="comma-separated resource types, or 'all' (default)")
    p.add_argument("-o", "--output", choices=OUTPUTS, default=None, help="json, json-raw or yaml (default: tables)")


def parse_filter(text: str) -> list[str]:
    """Lower-cased, trimmed, non-empty tokens; ``all`` (or nothing) means the default set."""
    tokens = [t.strip().lower() for t in text.split(",") if t.strip()]
    return list(DEFAULT_KINDS) if not tokens or tokens == ["all"] else tokens


def _names(ref: ResourceRef, singular: str, short: tuple[str, ...]) -> set[str]:
    names = {ref.plural, singular, ref.kind.lower(), *short}
    return names | {f"{n}.{ref.group}" for n in (ref.plural, singular, ref.kind.lower()) if ref.group}


def known(token: str) -> ResourceRef | None:
    for ref, short in _KNOWN:
        if token in _names(ref, ref.kind.lower(), short):
            return ref
    return None


async def _discover(kube: Kube) -> list[tuple[ResourceRef, set[str]]]:
    """Listable resources of the preferred version of every API group (like a RESTMapper)."""
    versions = ["v1"]
    groups = (await kube.request("GET", "/apis")).get("groups") or []
    versions += [g["preferredVersion"]["groupVersion"] for g in groups if g.get("preferredVersion")]
    found: list[tuple[ResourceRef, set[str]]] = []
    for gv in versions:
        path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        try:
            doc = await kube.request("GET", path)
        except ApiError:
            continue  # an unavailable aggregated API
        group, _, version = gv.rpartition("/")
        for r in doc.get("resources") or ():
            if "/" in r["name"] or "list" not in (r.get("verbs") or ()):
                continue
            ref = ResourceRef(group, version, r["name"], r["kind"], bool(r.get("namespaced")))
            found.append(
                (ref, _names(ref, r.get("singularName") or r["kind"].lower(), tuple(r.get("shortNames") or ())))
            )
    return found


async def resolve(kube: Kube, tokens: list[str]) -> list[ResourceRef]:
    refs: list[ResourceRef] = []
    discovered: list[tuple[ResourceRef, set[str]]] | None = None
    for token in tokens:
        ref = known(token)
        if ref is None:
            if discovered is None:
                discovered = await _discover(kube)
            ref = next((r for r, names in discovered if token in names), None)
        if ref is None:
            raise CtlError(f"unknown resource {token!r}")
        if ref not in refs:
            refs.append(ref)
    return refs


def _age_ns(obj: Obj, now: dt.datetime) -> int:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    return int((now - parse_time(created)).total_seconds() * 1e9) if created else 0


async def collect(kube: Kube, etcds: list[Obj], refs: list[ResourceRef], now: dt.datetime) -> dict[str, Any]:
    """druidctl's ``Result``: ``{"etcds": [{"etcd", "items": [{"key", "resources"}]}], "kind": "EtcdResourceList"}``."""
    result: list[dict[str, Any]] = []
    for etcd in etcds:
        ref = ref_of(etcd)
        selector = f"{c.LABEL_PART_OF}={ref.name}"
        lists = await asyncio.gather(
            *(kube.list(r, ref.namespace if r.namespaced else None, label_selector=selector) for r in refs),
            return_exceptions=True,
        )
        items = []
        for res, listed in zip(refs, lists, strict=True):
            if isinstance(listed, BaseException):
                print(f"warning: failed to list {res.plural} for etcd {ref}: {listed}", file=sys.stderr)
                continue
            objs = sorted(
                listed.get("items") or (), key=lambda x: (x["metadata"].get("namespace", ""), x["metadata"]["name"])
            )
            if objs:
                key = {"group": res.group, "version": res.version, "resource": res.plural, "kind": res.kind}
                resources = [
                    {
                        "namespace": x["metadata"].get("namespace", ""),
                        "name": x["metadata"]["name"],
                        "age": _age_ns(x, now),
                    }
                    for x in objs
                ]
                items.append({"key": key, "resources": resources})
        result.append({"etcd": {"name": ref.name, "namespace": ref.namespace}, "items": items})
    return {"etcds": result, "kind": "EtcdResourceList"}


def short_age(nanoseconds: int) -> str:
    """druidctl's ``ShortDuration``: whole s, m, h or d."""
    s = nanoseconds // 10**9
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def render(result: dict[str, Any], output: str | None) -> str:
    if output == "json":
        return json.dumps(result, indent=2)
    if output == "json-raw":
        return json.dumps(result, separators=(",", ":"))
    if output == "yaml":
        return yaml.safe_dump(result, sort_keys=True).rstrip("\n")
    lines: list[str] = []
    for entry in result["etcds"]:
        lines.append(f"Etcd [{entry['etcd']['namespace']}/{entry['etcd']['name']}]")
        if not entry["items"]:
            lines.append("  No resources found for selected filters")
            continue
        rows = [["KIND", "NAMESPACEDNAME", "AGE"]]
        for item in entry["items"]:
            for r in item["resources"]:
                rows.append([item["key"]["kind"], f"{r['namespace'] or 'N/A'}/{r['name']}", short_age(r["age"])])
        lines += format_table(rows, indent="  ")
    return "\n".join(lines)


async def run(kube: Kube, etcds: list[Obj], args: argparse.Namespace) -> int:
    try:
        refs = await resolve(kube, parse_filter(args.filter))
    except ApiError as e:
        raise CtlError(f"cannot discover the API resources: {e}") from e
    result = await collect(kube, etcds, refs, dt.datetime.now(dt.UTC))
    print(render(result, args.output))
    return 0
