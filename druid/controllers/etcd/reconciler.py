"""The Etcd reconciler (upstream ``internal/controller/etcd/reconciler.go``; docs/compatibility.md, B10–B17).

1. Etcd gone: nothing to do. Being deleted: the deletion flow (``delete.py``).
2. Should the spec be reconciled? Not while ``druid.gardener.cloud/suspend-etcd-spec-reconcile`` is present
   (a Warning Event ``SpecReconciliationSkipped`` on every reconcile); always with spec auto-reconcile; else
   when an operation annotation asks for ``reconcile``, the Etcd was never reconciled, or the last spec
   reconcile did not finish (lastOperation Reconcile in Processing/Error/Requeue — so a requeued or failed
   spec reconcile always completes, even when its trigger is gone).
3. Spec reconcile (``spec.py``); its outcome is kept.
4. Status reconcile (``observe.py``) every time, unless runtime component creation is disabled; then, with
   druid's ``OrderedMemberUpdate`` gate, one step of a druid-ordered member update (``memberupdate.py``),
   whose requeue interval wins while a roll is under way.
5. A spec reconcile that failed or has to wait decides the result (errors: rate-limited retry, capped at
   ``etcdStatusSyncPeriod``; waits: the sync retry interval); ``observedGeneration`` and the operation
   annotation stay as they are.
6. After a successful spec reconcile: ``status.observedGeneration = generation``, then the operation
   annotations with value ``reconcile`` are removed. lastOperation Succeeded, the status reconcile's fields
   and observedGeneration go to the API server in one status write (upstream makes up to three).
7. Look again after ``etcdStatusSyncPeriod``.

The spec is parsed with pydantic only when it is to be reconciled; an Etcd that does not parse gets
lastOperation Reconcile/Error with ``ERR_INVALID_SPEC`` naming the fields, and nothing is written.
"""

from __future__ import annotations

import structlog
from pydantic import ValidationError

from druid.api import constants as c
from druid.api import facts
from druid.api import problems as field_problems
from druid.api.etcd import Etcd
from druid.components.errors import OPERATION_SYNC, DruidError
from druid.controllers.etcd import delete
from druid.controllers.etcd.context import Deps, Run
from druid.controllers.etcd.memberupdate import reconcile_member_update
from druid.controllers.etcd.observe import reconcile_status
from druid.controllers.etcd.operation import ERR_INVALID_SPEC, StepResult
from druid.controllers.etcd.spec import reconcile_spec
from druid.runtime.client import ApiError
from druid.runtime.expectations import Expectations
from druid.runtime.objects import Obj, ObjectKey
from druid.runtime.reconcile import Action

log = structlog.get_logger(__name__)
RECONCILE = c.OPERATION_TYPE_RECONCILE
REASON_SPEC_RECONCILIATION_SKIPPED = "SpecReconciliationSkipped"
"""The only Event druid emits: a Warning (source ``etcd-controller``) on every reconcile while the suspend
annotation is present."""


def invalid_spec_error(error: ValidationError) -> DruidError:
    problems = "; ".join(f"{path}: {message}" for path, message in field_problems.lines(error))
    return DruidError(ERR_INVALID_SPEC, OPERATION_SYNC, f"The Etcd does not parse, nothing was written: {problems}")


def action_for(result: StepResult) -> Action:
    if result.error:
        return Action.retry()
    assert result.requeue_after is not None
    return Action.requeue(result.requeue_after)


class EtcdReconciler:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        # Read-your-writes: the informer cache can lag behind this controller's own writes (a reconcile right
        # after the first one would see observedGeneration unset and run the spec reconcile again); while the
        # cache shows a version this controller replaced, the reconcile starts from the object it wrote last.
        self.expectations: Expectations[ObjectKey] = Expectations()

    async def reconcile(self, key: ObjectKey, obj: Obj | None) -> Action:
        if obj is None:
            self.expectations.forget(key)
            return Action.done()
        obj = self.expectations.freshest(key, obj)
        run_id = structlog.contextvars.get_contextvars().get("reconcile_id", "")
        run = Run(self.deps, obj, run_id)
        try:
            return await self._reconcile(run, obj)
        finally:
            for rv in run.status.superseded:
                self.expectations.wrote(key, rv, run.etcd)

    async def _reconcile(self, run: Run, obj: Obj) -> Action:
        if obj["metadata"].get("deletionTimestamp"):
            return await delete.reconcile_delete(run)

        spec_reconciled = await self.should_reconcile_spec(obj)
        spec_result: StepResult | None = None
        if spec_reconciled:
            try:
                etcd = Etcd.model_validate(obj)
            except ValidationError as e:
                result = StepResult.failed(invalid_spec_error(e), step="Parsing the Etcd (nothing was written)")
                await run.status.record_incomplete(RECONCILE, result)
                return Action.requeue(self.deps.status_sync_period)
            spec_result = await reconcile_spec(run, etcd)

        roll: float | None = None
        try:
            if facts.runtime_components_enabled(run.etcd):
                await reconcile_status(run)
                roll = await reconcile_member_update(run)

            if spec_result is not None and spec_result.needs_requeue:
                action = action_for(spec_result)
                if roll is not None and not spec_result.error:
                    return Action.requeue(min(roll, spec_result.requeue_after or roll))
                return action
            if spec_reconciled:
                incomplete = await self.complete_reconcile(run)
                if incomplete is not None:
                    return action_for(incomplete)
        finally:
            await run.status.flush()
        return Action.requeue(self.deps.status_sync_period if roll is None else roll)

    async def should_reconcile_spec(self, obj: Obj) -> bool:
        if facts.spec_reconcile_suspended(obj):
            meta = obj["metadata"]
            await self.deps.events.warning(
                obj,
                REASON_SPEC_RECONCILIATION_SKIPPED,
                f"spec reconciliation of {meta['namespace']}/{meta['name']} is skipped by etcd-druid due to the "
                f"presence of annotation {c.ANNOTATION_SUSPEND_SPEC_RECONCILE} on the etcd resource",
            )
            return False
        if self.deps.auto_reconcile or facts.reconcile_requested(obj):
            return True
        status = obj.get("status") or {}
        if facts.reconciliation_in_progress(obj):
            return True
        return status.get("observedGeneration") is None

    async def complete_reconcile(self, run: Run) -> StepResult | None:
        """observedGeneration, then the operation annotations; None when done, else the recorded failure."""
        try:
            generation = run.etcd["metadata"].get("generation")
            if run.status.status.get("observedGeneration") != generation:
                await run.status.patch_status({"observedGeneration": generation})
            await run.status.flush()  # with lastOperation Succeeded and the status reconcile's fields
            keys = facts.reconcile_annotation_keys(run.etcd)
            if keys:
                await run.status.patch_metadata({"annotations": dict.fromkeys(keys)})
        except ApiError as e:
            log.warning("could not complete the reconcile", error=str(e))
            result = StepResult.failed_with(e, "Recording observedGeneration and removing the operation annotation")
            await run.status.record_incomplete(RECONCILE, result)
            return result
        return None
