"""Multi-step EtcdOpsTasks: the step record and the status fields a handler returns (druid extension)."""

from __future__ import annotations

import datetime as dt

from druid.api import constants as c
from druid.api.opstask import EtcdOpsTaskStatus
from druid.components.errors import DruidError
from druid.controllers.opstask import status as st

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(seconds=7)


def test_record_step_appends_then_finishes_in_place_and_keeps_the_start() -> None:
    steps = st.record_step(None, "ScaleToZero", "InProgress", T0, "waiting for 3 pods to go")
    steps = st.record_step(steps, "ScaleToZero", "InProgress", T1, "waiting for 1 pod to go")
    assert steps == [
        {
            "name": "ScaleToZero",
            "startedAt": "2026-01-02T03:04:05Z",
            "state": "InProgress",
            "message": "waiting for 1 pod to go",
        }
    ]
    done = st.record_step(steps, "ScaleToZero", "Succeeded", T1, details={"pods": "0"})
    assert done[0]["finishedAt"] == "2026-01-02T03:04:12Z" and done[0]["startedAt"] == "2026-01-02T03:04:05Z"
    assert done[0]["details"] == {"pods": "0"} and done[0]["message"] == "waiting for 1 pod to go"
    assert steps[0].get("finishedAt") is None, "the input list is not modified"
    again = st.record_step(done, "ScaleToZero", "Succeeded", T1 + dt.timedelta(seconds=5))
    assert again == done, "recording the same state again is no change"
    two = st.record_step(again, "RemoveVolumes", "InProgress", T1)
    assert [s["name"] for s in two] == ["ScaleToZero", "RemoveVolumes"]
    EtcdOpsTaskStatus.model_validate({"steps": two})  # the CRD schema accepts what is recorded


def test_status_fields_of_a_result_are_set_in_every_outcome() -> None:
    fields = {"steps": st.record_step(None, "Verify", "Succeeded", T0), "quorumLossRecovery": {"revision": "7"}}
    results = [
        (c.OPERATION_TYPE_EXECUTION, st.Result("waiting", requeue=True, status=fields, requeue_after=2.0)),
        (c.OPERATION_TYPE_EXECUTION, st.Result("failed", DruidError("ERR_X", "Execution", "boom"), status=fields)),
        (c.OPERATION_TYPE_EXECUTION, st.Result("done", status=fields)),
        (c.OPERATION_TYPE_ADMIT, st.Result("admitted", status=fields)),
    ]
    for phase, result in results:
        update, _ = st.outcome(phase, result)
        out = st.apply({"state": "InProgress"}, update, task_name="t", run_id="r", now=T0)
        assert out["steps"] == fields["steps"] and out["quorumLossRecovery"] == {"revision": "7"}
        assert out["lastOperation"]["description"] == result.description
