"""Three real members with client, peer and backup-restore TLS: one cluster, three members, a write through one
member read through another."""

from __future__ import annotations

import pytest

from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import SECRETS
from druid.testing.etcdctl import ClientTLS
from druid.testing.etcds import etcd_manifest, tls
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, etcdctl_for, member_pods, pod_ready, until, wait_etcd
from druid.testing.samples import tls_secrets

pytestmark = pytest.mark.e2e


async def test_three_members_with_client_peer_and_backup_tls(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    name = "etcd-tls"
    secrets = {s["metadata"]["name"]: s for s in tls_secrets(name, ns, backup=True)}
    for secret in secrets.values():
        await rkube.create(SECRETS, secret)
    container, store_secret = real_cluster.bucket(ns)
    await rkube.create(SECRETS, store_secret)
    spec = {
        "etcd": {"clientUrlTls": tls(name), "peerUrlTls": tls(f"{name}-peer", client=False)},
        "backup": {
            "tls": tls(f"{name}-backup"),
            "store": {
                "provider": "Local",
                "container": container,
                "prefix": f"{ns}--{name}",
                "secretRef": {"name": store_secret["metadata"]["name"]},
            },
        },
    }
    clock = Stopwatch()
    await rkube.create(ETCDS, etcd_manifest(name, ns, 3, **spec))
    etcd = await wait_etcd(rkube, ns, name, timeout=480)
    figures["3 members, client+peer+backup TLS: create -> Ready, s"] = clock()
    pods = await member_pods(rkube, ns, name)
    assert len(pods) == 3 and all(pod_ready(p) for p in pods)
    assert len(etcd["status"]["members"]) == 3

    client_tls = ClientTLS.from_secrets(real_cluster.workdir / ns, secrets[f"{name}-ca"], secrets[f"{name}-client"])
    ctls = [
        await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, name, tls=client_tls, member=f"{name}-{i}")
        for i in range(3)
    ]
    # One cluster: every member reports the same cluster ID and the same three members, peers over TLS.
    assert len({ctl.cluster_id() for ctl in ctls}) == 1
    for ctl in ctls:
        members = ctl.members()
        assert sorted(m["name"] for m in members) == [f"{name}-{i}" for i in range(3)]
        assert all(url.startswith("https://") for m in members for url in m["peerURLs"])
    await until(lambda: ctls[0].put("/e2e/tls", "through-0"), timeout=30, what="a write through member 0")
    assert ctls[2].get("/e2e/tls") == "through-0"
    assert ctls[1].get("/e2e/tls") == "through-0"
