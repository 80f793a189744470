"""``druid recover-quorum ETCD [-n NS] [--force] [--min-loss 10m]``: start a quorum-loss recovery and follow it.

Creates the EtcdOpsTask ``recover-quorum-<etcd>-<unix time>`` (``--task`` names it) with
``spec.config.quorumLossRecovery`` and polls it (every 2 s): one line per step transition, with the time since
the task was created, the step's own duration once it finished, and its message. Ends with the evidence
(restored revision, cluster ID, data-loss window) and exit 0 when the task Succeeded; with the reason on stderr
and exit 1 when it was Rejected or Failed; exit 1 also when ``--timeout`` (default 45m) runs out, saying that the
task goes on. Interrupting the command does not stop the task.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from druid.api import constants as c
from druid.api.resources import ETCD_OPS_TASKS
from druid.cli.ctlcommon import CtlError, EtcdRef, add_connection_arguments, connect, go_duration, one_etcd_ref
from druid.gocompat import duration
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import parse_time
from druid.runtime.objects import Obj

POLL_INTERVAL = 2.0
DEFAULT_TIMEOUT = 45 * 60.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_connection_arguments(p)
    p.add_argument("etcd", metavar="ETCD", help="NAME (namespace from -n, default 'default') or NAMESPACE/NAME")
    p.add_argument("--force", action="store_true", help="skip the minimum quorum-loss duration (quorum must be lost)")
    p.add_argument("--min-loss", help="minQuorumLossDuration, e.g. 10m (default: the API default, 10m)")
    p.add_argument("--task", help="name of the EtcdOpsTask (default recover-quorum-<etcd>-<unix time>)")
    p.add_argument("-t", "--timeout", type=go_duration, default=DEFAULT_TIMEOUT, help="how long to follow (45m)")
    p.add_argument("--poll-interval", type=go_duration, default=POLL_INTERVAL, help=argparse.SUPPRESS)


def task_manifest(ref: EtcdRef, name: str, *, force: bool, min_loss: str | None) -> Obj:
    config: dict[str, Any] = {}
    if min_loss:
        config["minQuorumLossDuration"] = min_loss
    if force:
        config["force"] = True
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_ETCD_OPS_TASK,
        "metadata": {"name": name, "namespace": ref.namespace},
        "spec": {"etcdName": ref.name, "config": {"quorumLossRecovery": config}},
    }


def _took(step: Mapping[str, Any]) -> str:
    seconds = (parse_time(step["finishedAt"]) - parse_time(step["startedAt"])).total_seconds()
    return duration.format_seconds(round(seconds))


def transitions(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per step that started or changed state between two reads of ``status.steps``."""
    seen = {(s.get("name"), s.get("startedAt")): s.get("state") for s in before}
    lines = []
    for step in after:
        key, state = (step.get("name"), step.get("startedAt")), step.get("state")
        if seen.get(key) == state:
            continue
        message = f": {step['message']}" if step.get("message") else ""
        if state == "InProgress":
            lines.append(f"{step.get('name')} started{message}")
        elif step.get("finishedAt") and step.get("startedAt"):
            lines.append(f"{step.get('name')} {state} after {_took(step)}{message}")
        else:
            lines.append(f"{step.get('name')} {state}{message}")
    return lines


def summary(status: Mapping[str, Any]) -> list[str]:
    evidence = status.get("quorumLossRecovery") or {}
    window = evidence.get("dataLossWindow") or {}
    lines = [
        f"restored revision {evidence.get('restoredRevision', '?')}, cluster ID {evidence.get('clusterID', '?')}, "
        f"{evidence.get('originalReplicas', '?')} members"
    ]
    if window:
        lines.append(
            f"data-loss window: writes from {window.get('start', '(no snapshot recorded)')} to "
            f"{window.get('end', '?')} were not in the backup store"
        )
    return lines


def reason(status: Mapping[str, Any]) -> str:
    last = status.get("lastOperation") or {}
    errors = status.get("lastErrors") or []
    text = str(last.get("description") or "")
    if errors:
        code = errors[-1].get("code", "")
        text = f"{text} ({code}: {errors[-1].get('description', '')})" if text else f"{code}: {errors[-1]}"
    return text or "no reason recorded"


async def follow(
    kube: Kube, ref: EtcdRef, name: str, *, timeout: float, interval: float, out: TextIO | None = None
) -> int:
    """Poll the task until it finished or ``timeout``; print transitions; the exit code."""
    out = out or sys.stdout
    start = time.monotonic()
    steps: list[Mapping[str, Any]] = []
    state = None
    while True:
        try:
            task = await kube.get(ETCD_OPS_TASKS, name, ref.namespace)
        except ApiError as e:
            raise CtlError(f"cannot read EtcdOpsTask {ref.namespace}/{name}: {e}") from e
        status = task.get("status") or {}
        elapsed = duration.format_seconds(round(time.monotonic() - start))
        if status.get("state") != state:
            state = status.get("state")
            if state:
                print(f"[{elapsed}] task {state}", file=out, flush=True)
        new = list(status.get("steps") or [])
        for line in transitions(steps, new):
            print(f"[{elapsed}] {line}", file=out, flush=True)
        steps = new
        if state == c.TASK_SUCCEEDED:
            for line in summary(status):
                print(line, file=out, flush=True)
            return 0
        if state in (c.TASK_FAILED, c.TASK_REJECTED):
            print(f"error: recovery of etcd {ref} {state}: {reason(status)}", file=sys.stderr, flush=True)
            return 1
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            print(
                f"error: recovery of etcd {ref} still {state or 'not started'} after {elapsed}; the task "
                f"{ref.namespace}/{name} goes on (kubectl get etcdopstask {name} -n {ref.namespace} -o yaml)",
                file=sys.stderr,
            )
            return 1
        await asyncio.sleep(min(interval, left))


async def run(kube: Kube, args: argparse.Namespace, out: TextIO | None = None) -> int:
    ref = one_etcd_ref(args)
    name = args.task or f"recover-quorum-{ref.name}-{int(time.time())}"
    try:
        await kube.create(ETCD_OPS_TASKS, task_manifest(ref, name, force=args.force, min_loss=args.min_loss))
    except ApiError as e:
        raise CtlError(f"cannot create EtcdOpsTask {ref.namespace}/{name}: {e}") from e
    print(f"created EtcdOpsTask {ref.namespace}/{name} (quorumLossRecovery of etcd {ref})", file=out or sys.stdout)
    return await follow(kube, ref, name, timeout=args.timeout, interval=args.poll_interval, out=out)


def main(args: argparse.Namespace) -> int:
    async def go() -> int:
        kube = await connect(args)
        async with kube:
            return await run(kube, args)

    try:
        return asyncio.run(go())
    except CtlError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
