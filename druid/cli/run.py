"""`druid run`: start the operator."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="path to an OperatorConfiguration file (config.druid.gardener.cloud/v1alpha1)")
    p.add_argument("--kubeconfig", help="kubeconfig to use (default: $KUBECONFIG, then in-cluster)")


def main(args: argparse.Namespace) -> int:
    raise SystemExit("druid run: the operator is not wired up yet")
