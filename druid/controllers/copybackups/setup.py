"""Wiring the EtcdCopyBackupsTask controller (upstream ``etcdcopybackupstask/register.go``).

``etcdcopybackupstask-controller``: ``controllers.etcdCopyBackupsTask.concurrentSyncs`` workers (3 when unset:
upstream registers the controller whatever ``enabled`` says and would dereference the unset pointer); primary
kind EtcdCopyBackupsTask with the generation-changed predicate; every event of an owned Job enqueues its task.
Druid caches only Jobs labelled ``app.kubernetes.io/component=etcd-copy-backups-job`` (the ones it creates)
and falls back to a GET for any other ``<task>-worker``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from druid.api import constants as c
from druid.components.options import build_options as components_options
from druid.config.images import Images
from druid.config.operator import DEFAULT_ETCD_COPY_BACKUPS_TASK_CONCURRENT_SYNCS, OperatorConfiguration
from druid.controllers.copybackups.reconciler import COPY_BACKUPS_TASKS, CopyBackupsReconciler
from druid.runtime.client import Kube
from druid.runtime.controller import Controller, generation_changed
from druid.runtime.informer import InformerFactory
from druid.runtime.manager import Manager
from druid.runtime.objects import JOBS

CONTROLLER_NAME = "etcdcopybackupstask-controller"
JOB_SELECTOR = f"{c.LABEL_COMPONENT}={c.COMPONENT_COPY_BACKUPS_JOB}"


def make_copy_backups_controller(
    kube: Kube,
    informers: InformerFactory,
    config: OperatorConfiguration,
    *,
    images: Images | None = None,
    registry: CollectorRegistry | None = None,
    namespace: str | None = None,
) -> Controller:
    """The controller on ``informers`` (``namespace``: confined to one namespace; ``images``: image vector)."""
    if images is None:
        images = components_options(config).images
    jobs = informers.get(JOBS, namespace, JOB_SELECTOR)
    workers = config.controllers.etcd_copy_backups_task.concurrent_syncs
    controller = Controller(
        CONTROLLER_NAME,
        CopyBackupsReconciler(kube, jobs.store, images, config.admission_policy()),
        informers,
        workers=workers or DEFAULT_ETCD_COPY_BACKUPS_TASK_CONCURRENT_SYNCS,
        registry=registry,
    )
    controller.for_(COPY_BACKUPS_TASKS, namespace=namespace, predicate=generation_changed)
    controller.owns(JOBS, namespace=namespace, label_selector=JOB_SELECTOR)
    return controller


def add_copy_backups_controller(manager: Manager, config: OperatorConfiguration) -> Controller:
    """Build the controller on the manager's informers and add it to the manager."""
    controller = make_copy_backups_controller(manager.kube, manager.informers, config, registry=manager.registry)
    manager.add(controller)
    return controller
