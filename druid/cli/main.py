"""The `druid` command: `druid version`, `druid run`, `druid render`, the druidctl verbs and `druid status`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from druid import __version__

Handler = Callable[[argparse.Namespace], int]


def _version(_: argparse.Namespace) -> int:
    print(f"druid {__version__}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from druid.cli import run

    return run.main(args)


def _render(args: argparse.Namespace) -> int:
    from druid.cli import render

    return render.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="druid", description="Run etcd clusters from Etcd custom resources.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(handler=_version)

    p = sub.add_parser("run", help="run the operator")
    from druid.cli import run

    run.add_arguments(p)
    p.set_defaults(handler=_run)

    p = sub.add_parser("render", help="print the objects druid would create for Etcd manifests (no cluster)")
    from druid.cli import render

    render.add_arguments(p)
    p.set_defaults(handler=_render)

    from druid.cli import ctl

    ctl.register(sub)  # druidctl verbs (reconciliation, component-protection, list-resources) and status
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.version:
        return _version(args)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    if unknown and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
