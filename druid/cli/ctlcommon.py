"""What the druidctl verbs share: global flags, resource selection and its rules, the ``-A`` prompt, Etcd lookup.

Selection follows druidctl (``druidctl/cmd/utils/options.go``): positional ``name`` (namespace from
``-n``, default ``default``; the kubeconfig context's namespace is not used, as upstream) or ``ns/name``;
``-A`` lists across all namespaces and cannot be combined with names or ``-n``; ``ns/name`` cannot be
combined with ``-n``; no names ⇒ every Etcd in the namespace (filtered by ``-l``, which is ignored when
names are given). Mutating verbs ask ``[y/n]`` before touching Etcds in all namespaces; ``--yes`` skips
the question, and without a terminal on stdin the verb refuses unless ``--yes`` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from druid.api.resources import ETCDS
from druid.gocompat import duration
from druid.runtime.client import ApiError, Kube, load_configuration
from druid.runtime.objects import Obj

DEFAULT_NAMESPACE = "default"


class CtlError(Exception):
    """A failure to report as ``error: <message>`` (exit 1)."""


@dataclass(frozen=True)
class EtcdRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def add_connection_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="path to the kubeconfig file (default $KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--context", help="the kubeconfig context to use")
    p.add_argument("-n", "--namespace", help=f"namespace of Etcds given by name (default {DEFAULT_NAMESPACE!r})")


def add_global_arguments(p: argparse.ArgumentParser, *, mutating: bool) -> None:
    """druidctl's persistent flags (here on every verb, so they may come anywhere after it)."""
    add_connection_arguments(p)
    p.add_argument("etcds", nargs="*", metavar="ETCD", help="Etcd as NAME or NAMESPACE/NAME (default: all in -n)")
    p.add_argument(
        "-A", "--all-namespaces", action="store_true", help="select the Etcds of all namespaces (not with names or -n)"
    )
    p.add_argument("-l", "--selector", default="", help="label selector for the Etcds, when no names are given")
    p.add_argument("-v", "--verbose", action="store_true", help="more output")
    p.add_argument("--no-banner", action="store_true", help="accepted for druidctl compatibility (druid has no banner)")
    if mutating:
        p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation with -A")


def selection_error(names: Sequence[str], namespace: str | None, all_namespaces: bool) -> str | None:
    """druidctl's ``ValidateResourceSelection``: the error message, or None when the selection is valid."""
    if all_namespaces:
        if names:
            return "cannot specify resource names when using --all-namespaces/-A"
        if namespace:
            return "cannot use --namespace/-n with --all-namespaces/-A"
        return None
    if namespace and any("/" in n for n in names):
        return "cannot use --namespace/-n with cross-namespace resource references (ns/name format)"
    return None


def add_one_etcd_arguments(p: argparse.ArgumentParser) -> None:
    """Connection arguments, one ``ETCD`` and ``-o text|json``: the read-only verbs about one Etcd."""
    add_connection_arguments(p)
    p.add_argument("etcd", metavar="ETCD", help="NAME (namespace from -n, default 'default') or NAMESPACE/NAME")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="text (default) or json")


def one_etcd_ref(args: argparse.Namespace) -> EtcdRef:
    """The Etcd that ``add_one_etcd_arguments``' arguments name, else :class:`CtlError`."""
    error = selection_error([args.etcd], args.namespace, False)
    if error:
        raise CtlError(error)
    refs = etcd_refs([args.etcd], args.namespace)
    if len(refs) != 1:
        raise CtlError("name one Etcd: NAME or NAMESPACE/NAME")
    return refs[0]


def etcd_refs(names: Sequence[str], namespace: str | None) -> list[EtcdRef]:
    """``name`` in ``namespace`` (default ``default``) or ``ns/name``; blank names are skipped."""
    refs: list[EtcdRef] = []
    for raw in names:
        arg = raw.strip()
        if not arg:
            continue
        ns, sep, name = arg.partition("/")
        if sep and (not ns or not name):
            raise CtlError(f"invalid Etcd reference {raw!r}: want NAME or NAMESPACE/NAME")
        refs.append(EtcdRef(ns, name) if sep else EtcdRef(namespace or DEFAULT_NAMESPACE, arg))
    return refs


def go_duration(text: str) -> float:
    """argparse type for Go durations (``5m``, ``30s``, ``1h30m``), in seconds."""
    try:
        value = duration.seconds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"negative duration {text!r}")
    return value


def confirm_all_namespaces(
    operation: str, *, yes: bool, stdin: TextIO | None = None, out: TextIO | None = None
) -> bool:
    """Ask before operating on every Etcd of every namespace; refuse without a terminal unless ``yes``."""
    if yes:
        return True
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    if not stdin.isatty():
        raise CtlError(
            f"refusing to {operation} ALL etcd resources across ALL namespaces without a terminal to confirm; "
            "pass --yes"
        )
    out.write(f"You are about to {operation} ALL etcd resources across ALL namespaces. Continue? [y/n]: ")
    out.flush()
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")


async def connect(args: argparse.Namespace) -> Kube:
    from kubernetes_asyncio import client

    try:
        cfg = await load_configuration(args.kubeconfig, args.context)
    except Exception as e:  # kubeconfig missing or invalid, unknown context
        raise CtlError(f"cannot load the kubeconfig: {e}") from e
    return Kube(client.ApiClient(configuration=cfg))


async def select_etcds(kube: Kube, args: argparse.Namespace) -> list[Obj]:
    """The Etcds the arguments name (all of them must exist), or the listed ones; sorted by namespace/name."""
    try:
        if args.all_namespaces:
            items = (await kube.list(ETCDS, None, label_selector=args.selector or None)).get("items") or []
        elif not args.etcds:
            ns = args.namespace or DEFAULT_NAMESPACE
            items = (await kube.list(ETCDS, ns, label_selector=args.selector or None)).get("items") or []
        else:
            items = []
            for ref in etcd_refs(args.etcds, args.namespace):
                etcd = await kube.get_or_none(ETCDS, ref.name, ref.namespace)
                if etcd is None:
                    raise CtlError(f"etcd {ref.name!r} not found in namespace {ref.namespace!r}")
                items.append(etcd)
    except ApiError as e:
        raise CtlError(f"cannot read Etcds: {e}") from e
    return sorted(items, key=lambda e: (e["metadata"].get("namespace", ""), e["metadata"]["name"]))


def ref_of(etcd: Obj) -> EtcdRef:
    meta = etcd["metadata"]
    return EtcdRef(meta.get("namespace", ""), meta["name"])


def etcd_annotations(etcd: Obj) -> dict[str, str]:
    return dict((etcd.get("metadata") or {}).get("annotations") or {})


def format_table(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Left-aligned columns separated by two spaces (the first row is the header)."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
