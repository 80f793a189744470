"""``druid drift ETCD``: desired vs live for each object druid manages for an Etcd, read-only.

For every object the controller would sync (built by its own builders, as ``druid render`` does) the live object is
read and compared the way the controller compares before applying:

- ``missing``: not there (the next spec reconcile creates it);
- ``differs at <path>``: druid's apply would change it (the first such path, with the live value there);
- ``foreign <field> = <value> (set by <managers>)``: a field of the object's spec that another field manager set
  and druid does not — drift, which the next spec reconcile removes (server defaults that another manager set
  explicitly are listed too: the controller tells them apart with a dry-run, this verb writes nothing);
- ``owned by <managers> (Update)``: written by a take-over manager (Go etcd-druid); the next spec reconcile moves
  the ownership to druid.

Exit 0 when every object is in sync, 1 when any is not, 2 when it cannot tell.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from druid.cli.ctlcommon import CtlError, add_one_etcd_arguments, connect, one_etcd_ref
from druid.components import diff, registry
from druid.components.base import BuildOptions
from druid.components.sync import FIELD_MANAGER
from druid.config.operator import DEFAULT_TAKE_OVER_FIELD_MANAGERS
from druid.runtime import managedfields as mf
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import Obj

EXIT_IN_SYNC, EXIT_DRIFT, EXIT_UNKNOWN = 0, 1, 2


@dataclass
class Foreign:
    field: str
    value: Any
    managers: list[str]


@dataclass
class ObjectDrift:
    kind: str
    name: str
    missing: bool = False
    differs: str | None = None  # first path an apply would change
    live_value: Any = None
    foreign: list[Foreign] = field(default_factory=list)
    take_over: list[str] = field(default_factory=list)  # managers whose Update ownership druid would take over

    @property
    def in_sync(self) -> bool:
        return not (self.missing or self.differs or self.foreign or self.take_over)


def compare(
    kind: str, desired: Obj, live: Obj | None, keep: tuple[str, ...], take_over: tuple[str, ...]
) -> ObjectDrift:
    """What the controller would find for one object (pure)."""
    out = ObjectDrift(kind, desired["metadata"]["name"])
    if live is None:
        out.missing = True
        return out
    s = mf.survey(live, desired, FIELD_MANAGER, takeover=take_over, keep=keep)
    managed = live["metadata"].get("managedFields") or []
    out.take_over = sorted({str(managed[i].get("manager")) for i in s.takeover})
    if not s.takeover:  # a take-over entry's leftovers are mostly server defaults: not listed as drift
        for path, who in sorted(s.candidates.items()):
            if not any(len(p) < len(path) and mf.under(path, p) for p in s.candidates):  # outermost only
                out.foreign.append(Foreign(mf.readable(path), mf.resolve(live, path), sorted(who)))
    found = diff.first_difference(desired, live, FIELD_MANAGER)
    if found is not None and not (found[0].startswith("<not applied") and out.take_over):
        out.differs = found[0]
        out.live_value = None if found[1] is diff.ABSENT else found[1]
    return out


async def collect(
    kube: Kube,
    namespace: str,
    name: str,
    opts: BuildOptions | None = None,
    take_over: tuple[str, ...] = DEFAULT_TAKE_OVER_FIELD_MANAGERS,
) -> list[ObjectDrift]:
    """Read the Etcd and each of its objects; compare (see the module docstring)."""
    from druid.api.resources import ETCDS
    from druid.components.options import build_options
    from druid.render import validate

    etcd_obj = await kube.get(ETCDS, name, namespace)
    etcd = validate(etcd_obj)
    out: list[ObjectDrift] = []
    for kind, objects in registry.desired_objects(etcd, opts or build_options()).items():
        component = registry.component(kind)
        for desired in objects:
            config = component.applied(desired)
            meta = desired["metadata"]
            live = await kube.get_or_none(component.resource, meta["name"], meta.get("namespace"))
            out.append(compare(component.resource.kind, config, live, component.not_applied, take_over))
    return out


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def render_text(found: list[ObjectDrift]) -> str:
    lines = []
    for o in found:
        head = f"{o.kind} {o.name}: "
        if o.missing:
            lines.append(head + "missing")
            continue
        if o.in_sync:
            lines.append(head + "in sync")
            continue
        parts = []
        if o.differs:
            parts.append(
                f"differs at {o.differs}" + ("" if o.live_value is None else f" (live: {_show(o.live_value)})")
            )
        if o.take_over:
            parts.append(f"owned by {', '.join(o.take_over)} (Update): taken over on the next spec reconcile")
        if o.foreign:
            parts.append(f"{len(o.foreign)} foreign field(s)")
        lines.append(head + "; ".join(parts))
        lines.extend(f"  foreign {f.field} = {_show(f.value)} (set by {', '.join(f.managers)})" for f in o.foreign)
    drifted = sum(1 for o in found if not o.in_sync)
    lines.append(f"{'IN SYNC' if not drifted else 'DRIFT'}: {len(found) - drifted}/{len(found)} objects in sync")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_one_etcd_arguments(p)
    p.add_argument(
        "--config",
        metavar="FILE",
        help="the operator's OperatorConfiguration (feature gates, automount, takeOverFieldManagers)",
    )


async def _drift(args: argparse.Namespace, namespace: str, name: str) -> int:
    from druid.components.options import build_options

    opts: BuildOptions | None = None
    take_over: tuple[str, ...] = DEFAULT_TAKE_OVER_FIELD_MANAGERS
    if args.config:
        from druid.config import ConfigError, loader

        try:
            config, _ = loader.read(args.config)
        except ConfigError as err:
            raise CtlError(f"--config {args.config}: {'; '.join(str(e) for e in err.errors)}") from None
        opts, take_over = build_options(config), config.controllers.etcd.take_over
    kube = await connect(args)
    async with kube:
        try:
            found = await collect(kube, namespace, name, opts, take_over)
        except ApiError as e:
            raise CtlError(f"cannot read etcd {namespace}/{name}: {e.message}") from e
        except ValueError as e:
            raise CtlError(f"etcd {namespace}/{name} cannot be built: {e}") from e
    print(json.dumps([asdict(o) for o in found], indent=2) if args.output == "json" else render_text(found))
    return EXIT_IN_SYNC if all(o.in_sync for o in found) else EXIT_DRIFT


def main(args: argparse.Namespace) -> int:
    try:
        ref = one_etcd_ref(args)
        return asyncio.run(_drift(args, ref.namespace, ref.name))
    except CtlError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_UNKNOWN
