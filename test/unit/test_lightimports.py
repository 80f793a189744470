"""druid loads kubernetes-asyncio's configuration loader and ApiClient without its generated APIs and models,
and the complete packages are still there for whoever uses them (checked in fresh interpreters)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_operator_imports_leave_the_generated_apis_and_models_unloaded() -> None:
    out = run(
        """
        import sys
        import druid.cli.run, druid.controllers, druid.runtime.client
        prefixes = ("kubernetes_asyncio.client.models.", "kubernetes_asyncio.client.api.")
        loaded = [m for m in sys.modules if m.startswith(prefixes)]
        print(len(loaded), "kubernetes_asyncio.config.kube_config" in sys.modules)
        """
    )
    assert out == "0 True"


def test_the_full_packages_load_on_first_use() -> None:
    out = run(
        """
        import asyncio
        import druid
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client import ApiClient, Configuration

        async def main():
            async with ApiClient(Configuration()) as api:
                pod = api._ApiClient__deserialize({"metadata": {"name": "p"}}, "V1Pod")
            print(type(pod).__name__, pod.metadata.name, client.CoreV1Api.__name__, client.models.V1Pod is client.V1Pod)

        asyncio.run(main())
        """
    )
    assert out == "V1Pod p CoreV1Api True"


def test_nothing_changes_when_kubernetes_asyncio_came_first() -> None:
    out = run(
        """
        import kubernetes_asyncio, sys
        import druid
        print(len([m for m in sys.modules if m.startswith("kubernetes_asyncio.client.models.")]) > 100)
        """
    )
    assert out == "True"
