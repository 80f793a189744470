"""druid's Etcd and Secret controllers running in-process against a test control plane (and the EtcdOpsTask
controller alone, :func:`ops_task_controller`).

Tests start one :class:`Operator` per module (or per test, confined to a namespace when it needs another
configuration), with short periods from :func:`fast_config`, short reflector backoffs and a fresh metrics
registry, and stop it in teardown. ``writes()`` counts the API writes the operator made (its own client), so a
test can prove a steady state makes none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from prometheus_client import CollectorRegistry

from druid.backuprestore import BackupRestoreClient
from druid.components.base import BuildOptions
from druid.config.operator import OperatorConfiguration, parse
from druid.controllers.etcd.setup import make_etcd_controller
from druid.controllers.opstask.setup import make_ops_task_controller
from druid.controllers.secret import make_secret_controller
from druid.runtime.client import ApiError, Kube
from druid.runtime.controller import Controller
from druid.runtime.informer import InformerFactory
from druid.runtime.manager import Manager, ManagerOptions
from druid.runtime.reflector import ReflectorConfig
from druid.testing.wait import eventually

FAST_REFLECTOR = ReflectorConfig(backoff_initial=0.1, backoff_max=1.0)
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def fast_config(
    *,
    status_sync_period: str = "1s",
    unknown_threshold: str = "2s",
    not_ready_threshold: str = "3s",
    **etcd: Any,
) -> OperatorConfiguration:
    """An OperatorConfiguration with short status periods and member thresholds (``etcd``: more camelCase keys)."""
    return OperatorConfiguration.model_validate(
        {
            "controllers": {
                "etcd": {
                    "etcdStatusSyncPeriod": status_sync_period,
                    "etcdMember": {"unknownThreshold": unknown_threshold, "notReadyThreshold": not_ready_threshold},
                    **etcd,
                }
            }
        }
    )


class RecordingKube(Kube):
    """A client that remembers every write it made (method and path; dry-runs are no writes), so tests can count
    them per namespace."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.written: list[tuple[str, str]] = []
        self.refused: list[tuple[str, str]] = []  # the writes among ``written`` the API server refused

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        write = method in WRITE_METHODS and (kwargs.get("query") or {}).get("dryRun") is None  # dry-runs write nothing
        if write:
            self.written.append((method, path))
        try:
            return await super().request(method, path, **kwargs)
        except ApiError:
            if write:
                self.refused.append((method, path))
            raise


@dataclass
class Operator:
    kube: RecordingKube
    informers: InformerFactory
    registry: CollectorRegistry
    etcd: Controller
    secret: Controller

    @classmethod
    async def start(
        cls,
        kubeconfig: str | Path,
        config: OperatorConfiguration | None = None,
        *,
        namespace: str | None = None,
        build_options: BuildOptions | None = None,
        sync_retry_interval: float = 1.0,
        delete_retry_interval: float = 0.5,
    ) -> Operator:
        config = config or fast_config()
        registry = CollectorRegistry()
        kube = cast(RecordingKube, await RecordingKube.connect(str(kubeconfig), timeout=10, registry=registry))
        informers = InformerFactory(kube, config=FAST_REFLECTOR, registry=registry)
        etcd = make_etcd_controller(
            kube,
            informers,
            config,
            build_options=build_options,
            registry=registry,
            sync_retry_interval=sync_retry_interval,
            delete_retry_interval=delete_retry_interval,
            namespace=namespace,
        )
        secret = make_secret_controller(kube, informers, config, registry=registry, namespace=namespace)
        informers.start_all()
        if not await informers.wait_for_cache_sync(30):
            await informers.stop_all()
            await kube.close()
            raise RuntimeError("operator caches did not sync")
        etcd.start()
        secret.start()
        return cls(kube, informers, registry, etcd, secret)

    async def stop(self) -> None:
        await self.etcd.stop(timeout=5)
        await self.secret.stop(timeout=5)
        await self.informers.stop_all()
        await self.kube.close()

    def _sample(self, name: str, **labels: str) -> float:
        total = 0.0
        for metric in self.registry.collect():
            for s in metric.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total

    def writes(self, namespace: str | None = None) -> int:
        """API writes (POST, PUT, PATCH, DELETE) the operator has made so far (in ``namespace``, if given).

        Operators of earlier test modules may leave Etcds of deleted namespaces behind for this one to finish
        deleting, so tests count the writes in their own namespace.
        """
        if namespace is None:
            return int(sum(self._sample("rest_client_requests_total", method=m) for m in WRITE_METHODS))
        return sum(1 for _, path in self.kube.written if f"/namespaces/{namespace}/" in path)

    def reconciles(self, controller: str = "etcd-controller") -> int:
        """Reconciles the controller has finished so far (any result)."""
        return int(self._sample("controller_runtime_reconcile_total", controller=controller))

    async def wait_reconciles(self, n: int, what: str = "reconciles", timeout: float = 30) -> None:
        """Wait until the Etcd controller finished ``n`` more reconciles (periodic requeues included)."""
        target = self.reconciles() + n

        async def done() -> bool:
            return self.reconciles() >= target

        await eventually(done, timeout=timeout, what=f"{n} more {what}")


def webhook_config(cert_dir: str | Path, namespace: str, *exempt: str, enabled: bool = True) -> OperatorConfiguration:
    """The component-protection webhook on 127.0.0.1 (any free port), certificates in ``cert_dir``, druid's
    reconciler the ServiceAccount ``etcd-druid`` of ``namespace``, ``exempt`` service accounts."""
    cfg, _ = parse(
        {
            "apiVersion": "config.druid.gardener.cloud/v1alpha1",
            "kind": "OperatorConfiguration",
            "server": {"webhooks": {"bindAddress": "127.0.0.1", "port": 0, "serverCertDir": str(cert_dir)}},
            "webhooks": {
                "etcdComponentProtection": {
                    "enabled": enabled,
                    "serviceAccountInfo": {"name": "etcd-druid", "namespace": namespace},
                    "exemptServiceAccounts": list(exempt),
                }
            },
        }
    )
    return cfg


@asynccontextmanager
async def ops_task_controller(
    kubeconfig: str, namespace: str, client: BackupRestoreClient, requeue_interval: str = "1s"
) -> AsyncIterator[Kube]:
    """A Manager running the EtcdOpsTask controller (confined to ``namespace``, requests through ``client``,
    which the manager closes) while the block runs; yields a separate client for the test."""
    registry = CollectorRegistry()
    loopback = "127.0.0.1"
    opts = ManagerOptions(
        metrics_address=loopback, metrics_port=0, probe_address=loopback, probe_port=0, graceful_shutdown_timeout=5
    )
    manager = Manager(
        await Kube.connect(kubeconfig, timeout=10, registry=registry),
        opts,
        registry=registry,
        reflector_config=FAST_REFLECTOR,
    )
    config = OperatorConfiguration.model_validate(
        {"controllers": {"etcdOpsTask": {"requeueInterval": requeue_interval}}}
    )
    manager.add(
        make_ops_task_controller(
            manager.kube, manager.informers, config, backup_restore=client, registry=registry, namespace=namespace
        )
    )
    manager.add_leader_task(client.hold_open)  # closes the client's session when the manager stops
    stop = asyncio.Event()
    run = asyncio.create_task(manager.run(stop))
    kube = await Kube.connect(kubeconfig, timeout=10)
    try:
        await asyncio.wait_for(manager.is_leader.wait(), 30)
        yield kube
    finally:
        stop.set()
        assert await asyncio.wait_for(run, 30) == 0
        await kube.close()
