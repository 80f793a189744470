"""kubernetes-asyncio clients for a kubeconfig (tests use the typed APIs for readable assertions)."""

from __future__ import annotations

from kubernetes_asyncio import client, config


async def make_api_client(kubeconfig: str) -> client.ApiClient:
    cfg = client.Configuration()
    await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    return client.ApiClient(configuration=cfg)
