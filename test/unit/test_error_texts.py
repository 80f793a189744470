"""Every lastErrors / lastOperation / lastError text druid writes prints an API error as Go etcd-druid does: the
Status message alone (client-go ``StatusError.Error()``), never ``422 Invalid: ...`` (issue 11 item 2).

Each path is driven with a real refusal through FakeKube and the text it writes is checked against the HTTP
status prefix :class:`ApiError` carries in ``str()``; the prefix check is shown to catch that very form.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from druid.api import constants as c
from druid.api.resources import ETCD_COPY_BACKUPS_TASKS as COPY_BACKUPS_TASKS
from druid.backuprestore import BackupRestoreError
from druid.components import registry
from druid.components.errors import DruidError
from druid.components.sync import EtcdRef, SyncContext, sync
from druid.config.images import Images
from druid.controllers.compaction.status import full_snapshot_condition
from druid.controllers.copybackups.reconciler import CopyBackupsReconciler
from druid.controllers.etcd.operation import ETCDS, StatusWriter, StepResult
from druid.controllers.opstask import handlers as h
from druid.controllers.opstask import status as st
from druid.controllers.opstask.reconciler import CLEANUP
from druid.runtime.client import ApiError
from druid.runtime.objects import ObjectKey
from druid.runtime.store import Store
from druid.testing.fakekube import FakeKube

MESSAGE = 'ConfigMap "e-config" is invalid: data: Too long: must have at most 1048576 bytes'
REFUSAL = ApiError(422, "Invalid", MESSAGE)
PREFIX = re.compile(r"\b[1-5]\d\d [A-Z][A-Za-z]*: ")


def no_status_prefix(text: str) -> None:
    assert not PREFIX.search(text), text


def test_the_check_catches_the_prefixed_form() -> None:
    with pytest.raises(AssertionError):
        no_status_prefix(f"cause: {REFUSAL}")
    no_status_prefix(f"cause: {MESSAGE}")


async def test_etcd_controller_last_errors_and_last_operation() -> None:
    kube = FakeKube()
    etcd = kube.add(ETCDS, {"metadata": {"name": "e", "namespace": "ns", "uid": "u"}, "status": {}})
    kube.fail(REFUSAL, method="PATCH", path="/configmaps/e-config", times=5)
    component = registry.component(registry.CONFIG_MAP)
    desired = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "e-config", "namespace": "ns"}}]
    with pytest.raises(DruidError) as info:
        await sync(SyncContext(kube), component, EtcdRef("e", "ns", "u"), desired)
    writer = StatusWriter(kube, etcd, "run")
    await writer.record_incomplete(c.OPERATION_TYPE_RECONCILE, StepResult.failed(info.value))
    status: dict[str, Any] = (kube.object(ETCDS, "e", "ns") or {})["status"]
    [error] = status["lastErrors"]
    assert error["description"].endswith(f"cause: {MESSAGE}")
    no_status_prefix(error["description"])
    no_status_prefix(status["lastOperation"]["description"])


def test_ops_task_last_errors() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    failed = h._fail("Failed to get etcd object", h.ERR_GET_ETCD, "Admit", "failed", h._cause(REFUSAL), True)
    cleanup = DruidError(h.ERR_DELETE_ETCD_OPS_TASK, CLEANUP, "failed to delete EtcdOpsTask resource", REFUSAL)
    for error in (failed.error, cleanup):
        assert error is not None
        status: dict[str, Any] = {}
        st.append_error(status, error, now)
        assert status["lastErrors"][0]["description"].endswith(MESSAGE)
        no_status_prefix(status["lastErrors"][0]["description"])
    op = st.Operation("Admit", c.OPERATION_STATE_FAILED, failed.description)
    out = st.apply({}, st.Update(op, error=failed.error), task_name="t", run_id="r", now=now)
    no_status_prefix(out["lastOperation"]["description"])


async def test_copy_backups_last_error() -> None:
    kube = FakeKube()
    task = kube.add(COPY_BACKUPS_TASKS, {"metadata": {"name": "t", "namespace": "ns", "generation": 1}, "spec": {}})
    reconciler = CopyBackupsReconciler(kube, Store(), Images("w", "b", "a"))
    await reconciler._update_status(ObjectKey("ns", "t"), task, None, REFUSAL)
    text = (kube.object(COPY_BACKUPS_TASKS, "t", "ns") or {})["status"]["lastError"]
    assert text == MESSAGE
    no_status_prefix(text)


def test_compaction_condition() -> None:
    failure = BackupRestoreError(500, "InternalServerError", "snapshot failed")
    message = full_snapshot_condition("ns", "e", failure.message)["message"]
    assert "snapshot failed" in message
    no_status_prefix(message)
