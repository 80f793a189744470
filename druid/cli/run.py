"""`druid run`: start the operator.

For now it connects to the cluster and logs every Etcd it sees; the controllers arrive with the
controller-runtime and Etcd-controller work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import structlog
from kubernetes_asyncio import client, config, watch

GROUP, VERSION, PLURAL = "druid.gardener.cloud", "v1alpha1", "etcds"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="path to an OperatorConfiguration file (config.druid.gardener.cloud/v1alpha1)")
    p.add_argument("--kubeconfig", help="kubeconfig to use (default: $KUBECONFIG, then in-cluster)")


async def load_client_config(kubeconfig: str | None) -> client.Configuration:
    """In-cluster when running in a pod and no kubeconfig is named, else the kubeconfig."""
    cfg = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)
    else:
        await config.load_kube_config(config_file=path, client_configuration=cfg)
    return cfg


async def _watch_etcds(kubeconfig: str | None, stop: asyncio.Event) -> None:
    log = structlog.get_logger("druid")
    cfg = await load_client_config(kubeconfig)
    async with client.ApiClient(configuration=cfg) as api:
        co = client.CustomObjectsApi(api)
        log.info("connected", server=cfg.host)
        while not stop.is_set():
            async with watch.Watch(return_type="object") as w:
                stream = w.stream(
                    co.list_custom_object_for_all_namespaces,
                    GROUP,
                    VERSION,
                    PLURAL,
                    timeout_seconds=300,
                    _request_timeout=(10, 90),
                )
                async for event in stream:
                    obj = event["object"]
                    meta = obj.get("metadata", {})
                    log.info("etcd", event=event["type"], namespace=meta.get("namespace"), name=meta.get("name"))
                    if stop.is_set():
                        break


async def _main(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(_watch_etcds(args.kubeconfig, stop))
    await asyncio.wait([task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return 0


def main(args: argparse.Namespace) -> int:
    structlog.configure(processors=[structlog.processors.TimeStamper(fmt="iso"), structlog.processors.JSONRenderer()])
    return asyncio.run(_main(args))
