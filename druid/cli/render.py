"""`druid render`: print the objects druid would create for Etcd manifests, offline (no cluster).

The objects come from ``druid.render.render_objects``, i.e. the controller's own builders. Bad input
exits 2 with ``druid render: <file>[ (document N)]: <field path>: <problem>`` lines on stderr and
nothing on stdout.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from druid.components.base import BuildOptions
from druid.components.options import build_options as components_options
from druid.components.statefulset_volumes import LOCAL_DEFAULT_HOST_PATH
from druid.config import features
from druid.config.images import ImageVectorError
from druid.gocompat import strconv
from druid.render import PLACEHOLDER_UID, RenderError, load_documents, render_objects, to_yaml
from druid.runtime.objects import Obj

if TYPE_CHECKING:
    from druid.config.operator import OperatorConfiguration

EXIT_BAD_INPUT = 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Print every object druid would create for the given Etcd resources as a YAML stream, in the "
        "order the controller syncs them, without a cluster. Objects get an ownerReference with the "
        f"Etcd's metadata.uid, or the placeholder {PLACEHOLDER_UID} when it has none: applying such "
        "output lets the garbage collector delete it, since no owner with that uid exists."
    )
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="Etcd manifest (YAML stream or JSON; '-' for stdin); may be repeated",
    )
    p.add_argument("-n", "--namespace", help="namespace for Etcds without metadata.namespace")
    p.add_argument(
        "--backup-host-path",
        default=None,
        help="Local backup provider: host directory of the buckets; the controller reads it from the store "
        f"secret's 'hostPath' key (default {LOCAL_DEFAULT_HOST_PATH}, also when there is no secretRef)",
    )
    p.add_argument(
        "--feature-gates",
        default="",
        metavar="K=V,...",
        help=f"operator feature gates ({', '.join(features.KNOWN)}); UpgradeEtcdVersion=true selects the "
        "-next images and adds backend-bbolt-freelist-type to the etcd config",
    )
    p.add_argument(
        "--disable-etcd-serviceaccount-automount",
        action="store_true",
        help="render the ServiceAccount with automountServiceAccountToken: false",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="OperatorConfiguration file (as for druid run): its controllers.etcd.disableEtcdServiceAccountAutomount "
        "and featureGates are used; --feature-gates overrides single gates, the automount flag can only disable",
    )


def parse_feature_gates(text: str) -> dict[str, bool]:
    """``K=V,...`` with Go boolean values; unlike ``druid run``'s deprecated flag, bad pairs are errors."""
    gates: dict[str, bool] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = (part.strip() for part in pair.partition("="))
        try:
            if not sep:
                raise ValueError(pair)
            gates[key] = strconv.parse_bool(value)
        except ValueError:
            raise RenderError([f"--feature-gates: invalid value {pair!r}: want NAME=true|false"]) from None
    if errors := features.gate_errors(gates):
        known = ", ".join(features.KNOWN)
        raise RenderError([f"--feature-gates: {message} (known: {known})" for message in errors.values()])
    return gates


def _read_config(path: str) -> OperatorConfiguration:
    """The OperatorConfiguration in ``path``; its deprecation notes go to stderr (never stdout)."""
    from druid.config import ConfigError, loader

    try:
        config, notes = loader.read(path)
    except ConfigError as err:
        raise RenderError([f"--config {path}: {error}" for error in err.errors]) from None
    for note in notes:
        print(f"druid render: --config {path}: {note}", file=sys.stderr)
    return config


def build_options(args: argparse.Namespace) -> BuildOptions:
    config = _read_config(args.config) if args.config else None
    gates = parse_feature_gates(args.feature_gates)
    try:
        return components_options(
            config,
            feature_gates=gates,
            disable_etcd_service_account_automount=args.disable_etcd_serviceaccount_automount,
        )
    except ImageVectorError as err:
        raise RenderError([str(err)]) from None


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as err:
        raise RenderError([f"cannot read: {err}"]) from None


def _document_label(doc: Any, index: int, count: int) -> str:
    if count == 1:
        return ""
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
    named = f", {doc.get('kind')} {name}" if isinstance(name, str) and isinstance(doc, dict) else ""
    return f" (document {index}{named})"


def render_files(args: argparse.Namespace, opts: BuildOptions) -> tuple[list[Obj], list[str]]:
    """All objects of all Etcds in the given files, and the error lines (empty when all is well)."""
    objects: list[Obj] = []
    errors: list[str] = []
    for path in args.filename:
        source = "<stdin>" if path == "-" else path
        try:
            docs = load_documents(_read(path))
        except RenderError as err:
            errors += [f"{source}: {p}" for p in err.problems]
            continue
        if not docs:
            errors.append(f"{source}: no Etcd documents found")
        for index, doc in enumerate(docs, start=1):
            try:
                objects += render_objects(
                    doc, namespace=args.namespace, opts=opts, backup_host_path=args.backup_host_path
                )
            except RenderError as err:
                errors += [f"{source}{_document_label(doc, index, len(docs))}: {p}" for p in err.problems]
    return objects, errors


def main(args: argparse.Namespace) -> int:
    try:
        opts = build_options(args)
    except RenderError as err:
        errors = err.problems
    else:
        objects, errors = render_files(args, opts)
    if errors:
        for line in errors:
            print(f"druid render: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    sys.stdout.write(to_yaml(objects))
    return 0
