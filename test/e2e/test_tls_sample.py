"""The TLS sample as shipped (``manifests/samples/etcd-3-tls.yaml``: client and peer TLS, no backup TLS) gets
Ready pods for real. Real pods found it broken: etcd-wrapper serves ``/readyz`` over HTTPS whenever client TLS
is on, while the probe's scheme followed backup TLS; and the Etcd showed Ready=True with no Ready pod."""

from __future__ import annotations

import copy

import pytest
import yaml

from druid.api.resources import ETCDS
from druid.runtime.client import Kube
from druid.runtime.objects import SECRETS, STATEFULSETS
from druid.testing.binaries import REPO
from druid.testing.etcdctl import ClientTLS
from druid.testing.realcluster import RealCluster
from druid.testing.realetcd import Stopwatch, etcdctl_for, member_pods, pod_ready, until, wait_etcd
from druid.testing.samples import tls_secrets

pytestmark = pytest.mark.e2e

SAMPLE = REPO / "manifests" / "samples" / "etcd-3-tls.yaml"


async def test_tls_sample_gets_ready_pods_and_serves_tls(
    real_cluster: RealCluster, rkube: Kube, ns: str, figures: dict[str, object]
) -> None:
    body = copy.deepcopy(yaml.safe_load(SAMPLE.read_text()))
    name = body["metadata"]["name"]
    body["metadata"]["namespace"] = ns
    secrets = {s["metadata"]["name"]: s for s in tls_secrets(name, ns)}
    for secret in secrets.values():
        await rkube.create(SECRETS, secret)
    clock = Stopwatch()
    await rkube.create(ETCDS, body)
    await wait_etcd(rkube, ns, name, timeout=480, members=3)
    figures["TLS sample (3 members, client+peer TLS): create -> Ready, s"] = clock()
    pods = await member_pods(rkube, ns, name)
    assert len(pods) == 3 and all(pod_ready(p) for p in pods)
    sts = await rkube.get(STATEFULSETS, name, ns)
    etcd_container = next(x for x in sts["spec"]["template"]["spec"]["containers"] if x["name"] == "etcd")
    assert etcd_container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"

    tls = ClientTLS.from_secrets(real_cluster.workdir / ns, secrets[f"{name}-ca"], secrets[f"{name}-client"])
    ctl = await etcdctl_for(rkube, real_cluster.binaries.etcdctl, ns, name, tls=tls)
    await until(lambda: ctl.put("/e2e/sample", "tls"), timeout=30, what="a write over client TLS")
    assert ctl.get("/e2e/sample") == "tls"
