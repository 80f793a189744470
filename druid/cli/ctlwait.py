"""``reconciliation trigger -w/-W``: poll the Etcds until AllMembersUpdated and AllMembersReady are True.

As druidctl: the first check comes one interval after the trigger (druid needs a moment to pick it up),
then one per interval (10 s; the hidden ``--poll-interval`` changes it), each printing one progress line
per Etcd still waiting; at the end a summary table. Unlike druidctl, the last check happens at the
deadline itself, so ``-t`` is the whole time allowed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from druid.api import constants as c
from druid.cli.ctlcommon import ETCDS, EtcdRef, format_table
from druid.gocompat import duration
from druid.runtime.client import ApiError, Kube
from druid.runtime.objects import Obj

WAIT_CONDITIONS = (c.CONDITION_ALL_MEMBERS_UPDATED, c.CONDITION_ALL_MEMBERS_READY)


def readiness(etcd: Obj) -> tuple[bool, bool, str]:
    """(all members updated, all members ready, a short text of both conditions) from ``status.conditions``."""
    conds = {x.get("type"): x for x in (etcd.get("status") or {}).get("conditions") or ()}
    parts, true = [], []
    for ctype in WAIT_CONDITIONS:
        cond = conds.get(ctype)
        if cond is None:
            parts.append(f"{ctype}=<none>")
            true.append(False)
            continue
        status = cond.get("status") or "Unknown"
        true.append(status == c.CONDITION_TRUE)
        parts.append(f"{ctype}={status}" + ("" if status == c.CONDITION_TRUE else f"/{cond.get('reason') or '-'}"))
    return true[0], true[1], ", ".join(parts)


def _elapsed(seconds: float) -> str:
    return duration.go_string(round(seconds) * duration.SECOND)


async def _check(kube: Kube, ref: EtcdRef) -> tuple[bool, bool, str]:
    try:
        etcd = await kube.get(ETCDS, ref.name, ref.namespace)
    except ApiError as e:
        return False, False, f"cannot read the Etcd: {e}"
    return readiness(etcd)


async def wait_ready(
    kube: Kube, refs: Sequence[EtcdRef], *, timeout: float | None, interval: float, out: TextIO | None = None
) -> list[EtcdRef]:
    """Wait for every Etcd; return those not ready when ``timeout`` (None: no limit) ran out."""
    out = out or sys.stdout
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    limit = "no timeout" if timeout is None else f"timeout {_elapsed(timeout)}"
    print(f"Waiting for {len(refs)} Etcd(s) until {' and '.join(WAIT_CONDITIONS)} are True ({limit})", file=out)
    pending: dict[EtcdRef, str] = {ref: "not checked yet" for ref in refs}
    updated: set[EtcdRef] = set()
    finished: dict[EtcdRef, float] = {}
    while pending:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        await asyncio.sleep(interval if deadline is None else min(interval, deadline - now))
        results = await asyncio.gather(*(_check(kube, ref) for ref in pending))
        elapsed = time.monotonic() - start
        for ref, (all_updated, all_ready, text) in zip(list(pending), results, strict=True):
            if all_updated:
                updated.add(ref)
            if all_updated and all_ready:
                finished[ref] = elapsed
                del pending[ref]
                print(f"[{_elapsed(elapsed)}] etcd {ref}: ready", file=out, flush=True)
            else:
                pending[ref] = text
                print(f"[{_elapsed(elapsed)}] etcd {ref}: waiting: {text}", file=out, flush=True)
    rows = [["ETCD", "TRIGGERED", "PODS UP TO DATE", "ELAPSED", "COMPLETED"]]
    total = _elapsed(time.monotonic() - start)
    for ref in refs:
        done = ref in finished
        took = _elapsed(finished[ref]) if done else total
        rows.append([str(ref), "true", str(ref in updated).lower(), took, str(done).lower()])
    print("Reconciliation status:", file=out)
    print("\n".join(format_table(rows)), file=out, flush=True)
    for ref, text in pending.items():
        print(f"error: etcd {ref}: not ready after {total}: {text}", file=sys.stderr)
    return list(pending)
