"""``druid recover-quorum``: the task it creates, one line per step transition with durations, the exit codes."""

from __future__ import annotations

import argparse
import asyncio
import io
from typing import Any

import pytest

from druid.api.resources import ETCD_OPS_TASKS
from druid.cli import recoverquorum as rq
from druid.cli.main import build_parser
from druid.controllers.opstask.status import record_step
from druid.runtime.clock import parse_time
from druid.testing.fakekube import FakeKube
from druid.testing.wait import eventually

T = parse_time("2026-12-03T20:00:00Z")


def args(*extra: str) -> argparse.Namespace:
    parsed = build_parser().parse_args(
        ["recover-quorum", "main", "-n", "ns", "--task", "rec", "--poll-interval", "0.01s", *extra]
    )
    return parsed


def test_the_verb_builds_the_task_from_its_flags() -> None:
    a = args("--force", "--min-loss", "3m")
    assert a.handler.__name__ == "_recover_quorum_handler"
    task = rq.task_manifest(rq.one_etcd_ref(a), "rec", force=a.force, min_loss=a.min_loss)
    assert task["spec"] == {
        "etcdName": "main",
        "config": {"quorumLossRecovery": {"minQuorumLossDuration": "3m", "force": True}},
    }
    assert task["metadata"] == {"name": "rec", "namespace": "ns"}


def test_transitions_print_each_change_once_with_durations() -> None:
    one = record_step(None, "HoldReconcile", "InProgress", T, "setting the hold")
    two = record_step(one, "HoldReconcile", "Succeeded", T.replace(second=3), "spec reconciliation held")
    three = record_step(two, "ScaleToZero", "InProgress", T.replace(second=3), "scaling")
    assert rq.transitions([], one) == ["HoldReconcile started: setting the hold"]
    assert rq.transitions(one, one) == []
    assert rq.transitions(one, three) == [
        "HoldReconcile Succeeded after 3s: spec reconciliation held",
        "ScaleToZero started: scaling",
    ]


async def _script(kube: FakeKube, statuses: list[dict[str, Any]]) -> None:
    async def created() -> Any:
        return kube.object(ETCD_OPS_TASKS, "rec", "ns")

    for status in statuses:
        task = await eventually(created, timeout=5, what="the task created", interval=0.005)
        task["status"] = status
        kube.add(ETCD_OPS_TASKS, task)
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("final", "code"), [("Succeeded", 0), ("Failed", 1), ("Rejected", 1)])
async def test_follow_reports_progress_and_exits_by_the_final_state(
    final: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    kube = FakeKube()
    steps = record_step(None, "HoldReconcile", "InProgress", T)
    done = record_step(steps, "HoldReconcile", "Succeeded", T.replace(second=2))
    end: dict[str, Any] = {
        "state": final,
        "steps": done,
        "lastOperation": {"description": "QuorumNotLost: etcd ns/main has Ready True"},
        "lastErrors": [{"code": "ERR_QUORUM_NOT_LOST", "description": "d"}],
        "quorumLossRecovery": {"restoredRevision": 42, "clusterID": "abc", "originalReplicas": 3},
    }
    out = io.StringIO()
    script = asyncio.create_task(_script(kube, [{"state": "InProgress", "steps": steps}, end]))
    assert await rq.run(kube, args(), out) == code
    await script
    text = out.getvalue()
    assert "created EtcdOpsTask ns/rec" in text and "HoldReconcile started" in text
    assert "HoldReconcile Succeeded after 2s" in text
    if code == 0:
        assert "restored revision 42, cluster ID abc, 3 members" in text
    else:
        assert f"{final}: QuorumNotLost" in capsys.readouterr().err


async def test_follow_gives_up_at_the_timeout_and_says_the_task_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    kube = FakeKube()
    assert await rq.run(kube, args("-t", "0.05s"), io.StringIO()) == 1
    assert "goes on" in capsys.readouterr().err
    assert kube.object(ETCD_OPS_TASKS, "rec", "ns") is not None
