"""Secret finalizers (checklist J61): referenced Secrets carry ``druid.gardener.cloud/etcd-druid`` exactly as long
as an Etcd in their namespace references them."""

from __future__ import annotations

from druid.api import constants as c
from druid.controllers.etcd.operation import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import SECRETS
from druid.testing.etcds import create_secret, etcd_manifest, tls
from druid.testing.operator import Operator
from druid.testing.wait import eventually


async def finalized(kube: Kube, ns: str) -> set[str]:
    secrets = (await kube.list(SECRETS, ns))["items"]
    return {s["metadata"]["name"] for s in secrets if c.FINALIZER_ETCD in (s["metadata"].get("finalizers") or ())}


async def wait_finalized(kube: Kube, ns: str, want: set[str], what: str) -> None:
    async def probe() -> bool:
        return await finalized(kube, ns) == want

    await eventually(probe, timeout=15, what=what)


async def test_j61_finalizer_follows_references(operator: Operator, kube: Kube, namespace: str) -> None:
    ns = namespace
    client = {"client-ca", "client-server", "client-client"}
    for name in (*client, "store", "unrelated"):
        await create_secret(kube, ns, name)
    store = {"provider": "aws", "container": "bucket-one", "prefix": "one", "secretRef": {"name": "store"}}
    spec = {"etcd": {"clientUrlTls": tls("client")}, "backup": {"store": store}}
    await kube.create(ETCDS, etcd_manifest("one", ns, **spec))
    await wait_finalized(kube, ns, client | {"store"}, "finalizers on every referenced Secret")

    # A Secret referenced before it exists gets the finalizer when it is created.
    await kube.create(ETCDS, etcd_manifest("two", ns, backup={"store": {**store, "secretRef": {"name": "late"}}}))
    await create_secret(kube, ns, "late")
    await wait_finalized(kube, ns, client | {"store", "late"}, "finalizer on a Secret created later")

    # A dropped reference releases the Secret (no reconcile annotation needed).
    await kube.merge_patch(ETCDS, "one", {"spec": {"etcd": {"clientUrlTls": None}}}, ns)
    await wait_finalized(kube, ns, {"store", "late"}, "finalizers removed from Secrets no longer referenced")

    # Still referenced by "three" after "one" is gone; released once no Etcd references it.
    await kube.create(ETCDS, etcd_manifest("three", ns, backup={"store": {**store, "container": "bucket-three"}}))
    await kube.delete(ETCDS, "one", ns)

    async def one_gone() -> bool:
        return await kube.get_or_none(ETCDS, "one", ns) is None

    await eventually(one_gone, timeout=20, what="Etcd one deleted")
    assert await finalized(kube, ns) == {"store", "late"}
    for name in ("two", "three"):
        await kube.delete(ETCDS, name, ns)
    await wait_finalized(kube, ns, set(), "no finalizers once no Etcd references the Secrets")
