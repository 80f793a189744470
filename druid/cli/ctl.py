"""The druidctl verbs as ``druid`` subcommands: ``reconciliation trigger|suspend|resume``,
``component-protection add|remove``, ``list-resources``, plus ``status`` (druid's own).

Each verb only changes one annotation of the selected Etcds, with a JSON merge patch of
``metadata.annotations`` (druidctl reads the object and PUTs it back whole):

* ``reconciliation trigger``: ``druid.gardener.cloud/operation: reconcile``; refused (nothing written)
  for an Etcd carrying ``druid.gardener.cloud/suspend-etcd-spec-reconcile``. The patch carries the
  resourceVersion the suspend check saw, so a concurrent suspend makes it fail and be re-checked.
  ``-w`` then polls until AllMembersUpdated and AllMembersReady are True (``-t``, default 5m); ``-W``
  the same without a timeout.
* ``reconciliation suspend`` / ``resume``: set ``druid.gardener.cloud/suspend-etcd-spec-reconcile: "true"``
  / remove it.
* ``component-protection add`` / ``remove``: remove / set
  ``druid.gardener.cloud/disable-etcd-component-protection: ""``.

Exit codes: 0 success (also when the ``-A`` question is answered no), 1 on any failure (invalid
selection, an Etcd not found, a refused or failed patch, a wait that timed out), 2 for argparse usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from druid.api import constants as c
from druid.api import facts
from druid.cli.ctlcommon import (
    ETCDS,
    CtlError,
    EtcdRef,
    add_connection_arguments,
    add_global_arguments,
    confirm_all_namespaces,
    connect,
    etcd_annotations,
    go_duration,
    ref_of,
    select_etcds,
    selection_error,
)
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import Obj

DEFAULT_TIMEOUT = 300.0
DEFAULT_POLL_INTERVAL = 10.0
CONFLICT_RETRIES = 5


def annotation_patch(key: str, value: str | None, resource_version: str | None = None) -> Obj:
    """Merge patch setting (or, with ``None``, removing) one annotation; optionally locked to a resourceVersion."""
    meta: dict[str, Any] = {"annotations": {key: value}}
    if resource_version:
        meta["resourceVersion"] = resource_version
    return {"metadata": meta}


@dataclass(frozen=True)
class AnnotationVerb:
    key: str
    value: str | None  # None: remove the annotation
    prompt: str  # "<prompt> ALL etcd resources across ALL namespaces"
    done: str
    already: str

    def patch(self) -> Obj:
        return annotation_patch(self.key, self.value)

    def satisfied(self, etcd: Obj) -> bool:
        current = etcd_annotations(etcd)
        return self.key not in current if self.value is None else current.get(self.key) == self.value


SUSPEND = AnnotationVerb(
    c.ANNOTATION_SUSPEND_SPEC_RECONCILE,
    "true",
    "suspend reconciliation for",
    "reconciliation suspended",
    "already suspended",
)
RESUME = AnnotationVerb(
    c.ANNOTATION_SUSPEND_SPEC_RECONCILE, None, "resume reconciliation for", "reconciliation resumed", "not suspended"
)
PROTECT = AnnotationVerb(
    c.ANNOTATION_DISABLE_COMPONENT_PROTECTION,
    None,
    "add protection to",
    "component protection added",
    "already protected",
)
UNPROTECT = AnnotationVerb(
    c.ANNOTATION_DISABLE_COMPONENT_PROTECTION,
    "",
    "remove protection from",
    "component protection removed",
    "already unprotected",
)


def trigger_patch(resource_version: str | None = None) -> Obj:
    return annotation_patch(c.ANNOTATION_OPERATION, c.OPERATION_RECONCILE, resource_version)


def trigger_error(args: argparse.Namespace) -> str | None:
    """druidctl's extra rules for ``trigger``: ``-t`` only with ``-w``; ``-W`` with neither."""
    if args.timeout is not None and not args.wait_till_ready:
        return "cannot specify --timeout/-t without --wait-till-ready/-w"
    if args.watch and (args.wait_till_ready or args.timeout is not None):
        return "cannot specify --watch/-W with --wait-till-ready/-w or --timeout/-t"
    return None


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _run(
    args: argparse.Namespace, prompt: str, body: Callable[[Kube, list[Obj]], Awaitable[int]], extra: str | None = None
) -> int:
    error = selection_error(args.etcds, args.namespace, args.all_namespaces) or extra
    if error:
        return _fail(error)
    try:
        if args.all_namespaces and not confirm_all_namespaces(prompt, yes=args.yes):
            print("Operation cancelled by user")
            return 0
        return asyncio.run(_with_etcds(args, body))
    except CtlError as e:
        return _fail(str(e))
    except KeyboardInterrupt:  # -W waits until interrupted
        return 130


async def _with_etcds(args: argparse.Namespace, body: Callable[[Kube, list[Obj]], Awaitable[int]]) -> int:
    kube = await connect(args)
    async with kube:
        etcds = await select_etcds(kube, args)
        if not etcds:
            where = "across all namespaces" if args.all_namespaces else f"in namespace {args.namespace or 'default'!r}"
            print(f"No Etcd resources found {where}")
            return 0
        if args.verbose:
            print(f"Selected {len(etcds)} Etcd(s): {', '.join(str(ref_of(e)) for e in etcds)}")
        return await body(kube, etcds)


async def _apply(kube: Kube, verb: AnnotationVerb, etcds: list[Obj]) -> int:
    failed = 0
    for etcd in etcds:
        ref = ref_of(etcd)
        if verb.satisfied(etcd):
            print(f"etcd {ref}: {verb.already}")
            continue
        try:
            await kube.merge_patch(ETCDS, ref.name, verb.patch(), ref.namespace)
        except ApiError as e:
            failed += 1
            print(f"error: etcd {ref}: {e}", file=sys.stderr)
            continue
        print(f"etcd {ref}: {verb.done}")
    return 1 if failed else 0


def _annotation_handler(verb: AnnotationVerb) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        return _run(args, verb.prompt, lambda kube, etcds: _apply(kube, verb, etcds))

    return handler


async def trigger_one(kube: Kube, etcd: Obj) -> None:
    """Set the operation annotation unless reconciliation is suspended (checked under optimistic locking)."""
    ref = ref_of(etcd)
    for _ in range(CONFLICT_RETRIES):
        if facts.spec_reconcile_suspended(etcd):
            raise CtlError(
                f"etcd {ref}: reconciliation is suspended (annotation {c.ANNOTATION_SUSPEND_SPEC_RECONCILE}); "
                f"not triggered. Run 'druid reconciliation resume {ref}' first"
            )
        rv = etcd["metadata"].get("resourceVersion")
        try:
            await kube.merge_patch(ETCDS, ref.name, trigger_patch(rv), ref.namespace)
            return
        except ApiError as e:
            if not e.conflict:
                raise CtlError(f"etcd {ref}: {e}") from e
        try:
            etcd = await kube.get(ETCDS, ref.name, ref.namespace)
        except ApiError as e:
            raise CtlError(f"etcd {ref}: {e}") from e
    raise CtlError(f"etcd {ref}: kept changing while being triggered; try again")


async def _trigger(args: argparse.Namespace, kube: Kube, etcds: list[Obj]) -> int:
    from druid.cli import ctlwait

    triggered: list[EtcdRef] = []
    failed = 0
    for etcd in etcds:
        try:
            await trigger_one(kube, etcd)
        except CtlError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
            continue
        triggered.append(ref_of(etcd))
        print(f"etcd {ref_of(etcd)}: reconciliation triggered")
    if triggered and (args.wait_till_ready or args.watch):
        timeout = None if args.watch else (args.timeout if args.timeout is not None else DEFAULT_TIMEOUT)
        not_ready = await ctlwait.wait_ready(kube, triggered, timeout=timeout, interval=args.poll_interval)
        failed += len(not_ready)
    return 1 if failed else 0


def _trigger_handler(args: argparse.Namespace) -> int:
    return _run(args, "reconcile", lambda kube, etcds: _trigger(args, kube, etcds), trigger_error(args))


def _list_resources_handler(args: argparse.Namespace) -> int:
    from druid.cli import listresources

    error = selection_error(args.etcds, args.namespace, args.all_namespaces)
    if error:
        return _fail(error)
    try:
        return asyncio.run(_with_etcds(args, lambda kube, etcds: listresources.run(kube, etcds, args)))
    except CtlError as e:
        return _fail(str(e))


def _drift_handler(args: argparse.Namespace) -> int:
    from druid.cli import drift

    return drift.main(args)


def _backups_handler(args: argparse.Namespace) -> int:
    from druid.cli import backups

    return backups.main(args)


def _recover_quorum_handler(args: argparse.Namespace) -> int:
    from druid.cli import recoverquorum

    return recoverquorum.main(args)


def _status_handler(args: argparse.Namespace) -> int:
    from druid.cli import status

    return status.main(args)


def _verb(sub: Any, name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    add_global_arguments(p, mutating=True)
    p.set_defaults(handler=handler)
    return p


def register(sub: Any) -> None:
    """Add the druidctl verbs and ``status`` to the ``druid`` subcommands."""
    p = sub.add_parser("reconciliation", help="trigger, suspend or resume spec reconciliation of Etcds (druidctl)")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    t = _verb(verbs, "trigger", "set druid.gardener.cloud/operation=reconcile on the Etcds", _trigger_handler)
    t.add_argument("-w", "--wait-till-ready", action="store_true", help="wait until the Etcds are ready again")
    t.add_argument("-W", "--watch", action="store_true", help="like -w, without a timeout")
    t.add_argument("-t", "--timeout", type=go_duration, default=None, help="how long -w waits (default 5m)")
    t.add_argument("--poll-interval", type=go_duration, default=DEFAULT_POLL_INTERVAL, help=argparse.SUPPRESS)
    _verb(verbs, "suspend", f'add {c.ANNOTATION_SUSPEND_SPEC_RECONCILE}: "true"', _annotation_handler(SUSPEND))
    _verb(verbs, "resume", f"remove {c.ANNOTATION_SUSPEND_SPEC_RECONCILE}", _annotation_handler(RESUME))

    p = sub.add_parser(
        "component-protection", help="turn the component-protection webhook on or off per Etcd (druidctl)"
    )
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    _verb(verbs, "add", f"remove {c.ANNOTATION_DISABLE_COMPONENT_PROTECTION}", _annotation_handler(PROTECT))
    _verb(verbs, "remove", f'add {c.ANNOTATION_DISABLE_COMPONENT_PROTECTION}: ""', _annotation_handler(UNPROTECT))

    from druid.cli import listresources

    p = sub.add_parser("list-resources", help="list the objects labelled app.kubernetes.io/part-of=<etcd> (druidctl)")
    add_global_arguments(p, mutating=False)
    listresources.add_arguments(p)
    p.set_defaults(handler=_list_resources_handler)

    from druid.cli import drift

    p = sub.add_parser("drift", help="desired vs live for each object of an Etcd (exit 0 in sync, 1 drift)")
    drift.add_arguments(p)
    p.set_defaults(handler=_drift_handler)

    from druid.cli import backups

    p = sub.add_parser("backups", help="list the snapshots in an Etcd's backup store (Local or --bucket-dir)")
    backups.add_arguments(p)
    p.set_defaults(handler=_backups_handler)

    from druid.cli import recoverquorum

    p = sub.add_parser(
        "recover-quorum",
        help="recover an Etcd from permanent quorum loss (a quorumLossRecovery EtcdOpsTask) and follow it",
    )
    recoverquorum.add_arguments(p)
    p.set_defaults(handler=_recover_quorum_handler)

    p = sub.add_parser("status", help="explain an Etcd's health in one line (exit 0 Ready, 1 not Ready)")
    add_connection_arguments(p)
    from druid.cli import status

    status.add_arguments(p)
    p.set_defaults(handler=_status_handler)
