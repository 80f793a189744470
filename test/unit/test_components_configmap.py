"""ConfigMap ``<n>-config`` with ``etcd.conf.yaml`` (checklist C25) and its checksum.

Expected texts and checksums were produced by upstream's own serializers (sigs.k8s.io/yaml v1.6.0 and
Go 1.26 encoding/json) for the same configuration.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
import yaml

from druid.api.etcd import Etcd
from druid.components import configmap
from druid.components.base import BuildOptions
from druid.config.images import Images
from druid.gocompat import goyaml

OPTS = BuildOptions(images=Images(etcd_wrapper="wrapper:1", etcd_backup_restore="br:1", alpine="alpine:1"))
UPGRADE = BuildOptions(images=OPTS.images, feature_gates={"UpgradeEtcdVersion": True})
UID = "0b5a2f8e-7f7e-4c1e-9a59-0a2d2d0c4e11"
NAME, NS = "etcd-main", "shoot--dev"
DOMAIN = f"{NAME}-peer.{NS}.svc"
TLS = {"tlsCASecretRef": {"name": "ca"}, "serverTLSSecretRef": {"name": "server"}, "clientTLSSecretRef": {"name": "c"}}

DEFAULT_YAML = f"""\
advertise-client-urls:
  etcd-main-0:
  - http://etcd-main-0.{DOMAIN}:2379
  etcd-main-1:
  - http://etcd-main-1.{DOMAIN}:2379
  etcd-main-2:
  - http://etcd-main-2.{DOMAIN}:2379
auto-compaction-mode: periodic
auto-compaction-retention: 30m
data-dir: /var/etcd/data/new.etcd
enable-grpc-gateway: false
initial-advertise-peer-urls:
  etcd-main-0:
  - http://etcd-main-0.{DOMAIN}:2380
  etcd-main-1:
  - http://etcd-main-1.{DOMAIN}:2380
  etcd-main-2:
  - http://etcd-main-2.{DOMAIN}:2380
initial-cluster: etcd-main-0=http://etcd-main-0.{DOMAIN}:2380,etcd-main-1=http://etcd-main-1.{DOMAIN}:2380,\
etcd-main-2=http://etcd-main-2.{DOMAIN}:2380
initial-cluster-state: new
initial-cluster-token: etcd-cluster
listen-client-urls: http://0.0.0.0:2379
listen-peer-urls: http://0.0.0.0:2380
metrics: basic
name: etcd-config
next-cluster-version-compatible: true
quota-backend-bytes: 8589934592
snapshot-count: 10000
"""
# sha256 of Go's json.Marshal(map[string]string{"etcd.conf.yaml": DEFAULT_YAML}).
DEFAULT_CHECKSUM = "e40b2ca772950b17b7c0e14bbd9bafee101421b9aa26acaecec4d9909cb0267a"


def make_etcd(replicas: int = 3, *, etcd: dict[str, Any] | None = None, **spec: Any) -> Etcd:
    body: dict[str, Any] = {"replicas": replicas, "labels": {"role": "main"}, "etcd": etcd or {}, "backup": {}}
    body.update(copy.deepcopy(spec))
    return Etcd.model_validate({"metadata": {"name": NAME, "namespace": NS, "uid": UID}, "spec": body})


def rendered(etcd: Etcd, opts: BuildOptions = OPTS) -> str:
    (cm,) = configmap.build(etcd, opts)
    assert list(cm["data"]) == ["etcd.conf.yaml"]
    text: str = cm["data"]["etcd.conf.yaml"]
    return text


def parsed(etcd: Etcd, opts: BuildOptions = OPTS) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(rendered(etcd, opts))
    return doc


def test_c25_configmap_initial_cluster() -> None:
    etcd = make_etcd(3)
    (cm,) = configmap.build(etcd, OPTS)
    assert cm["apiVersion"] == "v1"
    assert cm["kind"] == "ConfigMap"
    meta = cm["metadata"]
    assert (meta["name"], meta["namespace"]) == ("etcd-main-config", NS)
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "etcd-druid",
        "app.kubernetes.io/part-of": NAME,
        "app.kubernetes.io/component": "etcd-configmap",
        "app.kubernetes.io/name": "etcd-main-config",
    }
    assert meta["ownerReferences"][0]["uid"] == UID
    assert cm["data"] == {"etcd.conf.yaml": DEFAULT_YAML}
    doc = parsed(etcd)
    assert doc["initial-cluster"] == ",".join(f"etcd-main-{i}=http://etcd-main-{i}.{DOMAIN}:2380" for i in range(3))
    assert configmap.checksum(cm) == DEFAULT_CHECKSUM
    assert configmap.KIND == "ConfigMap"
    assert configmap.COMPONENT_LABEL == "etcd-configmap"
    assert configmap.ERROR_CODES.sync == configmap.ERR_SYNC_CONFIGMAP == "ERR_SYNC_CONFIGMAP"
    assert (configmap.ERROR_CODES.get, configmap.ERROR_CODES.delete) == ("ERR_GET_CONFIGMAP", "ERR_DELETE_CONFIGMAP")


def test_c25_configmap_spec_values_and_defaults() -> None:
    etcd = make_etcd(
        1,
        etcd={
            "quota": "1.5Gi",
            "snapshotCount": 5000,
            "enableGRPCGateway": True,
            "metrics": "extensive",
            "serverPort": 2390,
            "clientPort": 2389,
            "backendBboltFreelistType": "map",
        },
        sharedConfig={"autoCompactionMode": "revision", "autoCompactionRetention": "1"},
    )
    doc = parsed(etcd)
    assert doc["quota-backend-bytes"] == 1610612736
    assert doc["snapshot-count"] == 5000
    assert doc["enable-grpc-gateway"] is True
    assert doc["metrics"] == "extensive"
    assert doc["auto-compaction-mode"] == "revision"
    assert doc["auto-compaction-retention"] == "1"  # a string go-yaml would misread is double-quoted
    assert 'auto-compaction-retention: "1"\n' in rendered(etcd)
    assert doc["listen-peer-urls"] == "http://0.0.0.0:2390"
    assert doc["listen-client-urls"] == "http://0.0.0.0:2389"
    assert doc["initial-cluster"] == f"etcd-main-0=http://etcd-main-0.{DOMAIN}:2390"
    assert doc["advertise-client-urls"] == {"etcd-main-0": [f"http://etcd-main-0.{DOMAIN}:2389"]}
    assert "backend-bbolt-freelist-type" not in doc  # only with the UpgradeEtcdVersion feature gate
    assert parsed(etcd, UPGRADE)["backend-bbolt-freelist-type"] == "map"
    assert parsed(make_etcd(), UPGRADE)["backend-bbolt-freelist-type"] == "array"


def test_c25_configmap_tls_blocks() -> None:
    peer = {**TLS, "tlsCASecretRef": {"name": "peer-ca", "dataKey": "bundle.crt"}, "skipClientSANVerification": True}
    doc = parsed(make_etcd(etcd={"clientUrlTls": TLS, "peerUrlTls": peer}))
    assert doc["client-transport-security"] == {
        "auto-tls": False,
        "cert-file": "/var/etcd/ssl/server/tls.crt",
        "client-cert-auth": True,
        "key-file": "/var/etcd/ssl/server/tls.key",
        "trusted-ca-file": "/var/etcd/ssl/ca/ca.crt",
    }
    assert doc["peer-transport-security"] == {
        "auto-tls": False,
        "cert-file": "/var/etcd/ssl/peer/server/tls.crt",
        "client-cert-auth": True,
        "key-file": "/var/etcd/ssl/peer/server/tls.key",
        "skip-client-san-verification": True,
        "trusted-ca-file": "/var/etcd/ssl/peer/ca/bundle.crt",
    }
    assert doc["listen-client-urls"] == "https://0.0.0.0:2379"
    assert doc["listen-peer-urls"] == "https://0.0.0.0:2380"
    assert doc["initial-cluster"].startswith(f"etcd-main-0=https://etcd-main-0.{DOMAIN}:2380,")
    assert doc["advertise-client-urls"]["etcd-main-1"] == [f"https://etcd-main-1.{DOMAIN}:2379"]
    assert doc["initial-advertise-peer-urls"]["etcd-main-2"] == [f"https://etcd-main-2.{DOMAIN}:2380"]

    client_only = parsed(make_etcd(etcd={"clientUrlTls": TLS}))
    assert "peer-transport-security" not in client_only
    assert client_only["listen-peer-urls"] == "http://0.0.0.0:2380"
    assert client_only["listen-client-urls"] == "https://0.0.0.0:2379"
    peer_only = parsed(make_etcd(etcd={"peerUrlTls": TLS}))
    assert "client-transport-security" not in peer_only
    assert "skip-client-san-verification" not in peer_only["peer-transport-security"]
    assert peer_only["peer-transport-security"]["trusted-ca-file"] == "/var/etcd/ssl/peer/ca/ca.crt"
    plain = parsed(make_etcd())
    assert "client-transport-security" not in plain and "peer-transport-security" not in plain


def test_c25_configmap_additional_peer_urls() -> None:
    extra = [{"memberName": "etcd-main-1", "urls": ["http://10.0.0.1:2380", "http://lb.example.com:2380"]}]
    doc = parsed(make_etcd(etcd={"additionalAdvertisePeerURLs": extra}))
    assert doc["initial-cluster"] == ",".join(
        [
            f"etcd-main-0=http://etcd-main-0.{DOMAIN}:2380",
            f"etcd-main-1=http://etcd-main-1.{DOMAIN}:2380",
            "etcd-main-1=http://10.0.0.1:2380",
            "etcd-main-1=http://lb.example.com:2380",
            f"etcd-main-2=http://etcd-main-2.{DOMAIN}:2380",
        ]
    )
    assert doc["initial-advertise-peer-urls"]["etcd-main-1"] == [
        f"http://etcd-main-1.{DOMAIN}:2380",
        "http://10.0.0.1:2380",
        "http://lb.example.com:2380",
    ]
    assert doc["initial-advertise-peer-urls"]["etcd-main-0"] == [f"http://etcd-main-0.{DOMAIN}:2380"]
    # Only the peer URLs get the extra addresses.
    assert doc["advertise-client-urls"]["etcd-main-1"] == [f"http://etcd-main-1.{DOMAIN}:2379"]


def test_c25_configmap_bootstrap_with_existing_cluster_members() -> None:
    bootstrap = {
        "members": [
            {"name": "source-0", "peerUrls": ["http://source-0.src:2380", "http://10.1.0.1:2380"]},
            {"name": "source-1", "peerUrls": ["http://source-1.src:2380"]},
        ],
        "clientEndpoints": ["http://source-client.src:2379"],
    }
    doc = parsed(make_etcd(2, etcd={"bootstrapWithExistingCluster": bootstrap}))
    assert doc["initial-cluster"] == ",".join(
        [
            f"etcd-main-0=http://etcd-main-0.{DOMAIN}:2380",
            f"etcd-main-1=http://etcd-main-1.{DOMAIN}:2380",
            "source-0=http://source-0.src:2380",
            "source-0=http://10.1.0.1:2380",
            "source-1=http://source-1.src:2380",
        ]
    )
    assert doc["initial-cluster-state"] == "new"
    assert set(doc["initial-advertise-peer-urls"]) == {"etcd-main-0", "etcd-main-1"}


def test_c25_configmap_member_name_prefix() -> None:
    # Additional URLs are matched against the pod name (<n>-<i>), as upstream does.
    extra = [{"memberName": "etcd-main-0", "urls": ["http://10.0.0.9:2380"]}]
    doc = parsed(make_etcd(2, memberNamePrefix="shoot", etcd={"additionalAdvertisePeerURLs": extra}))
    assert doc["member-name-prefix"] == "shoot"
    assert doc["initial-cluster"] == ",".join(
        [
            f"shoot-etcd-main-0=http://etcd-main-0.{DOMAIN}:2380",
            "shoot-etcd-main-0=http://10.0.0.9:2380",
            f"shoot-etcd-main-1=http://etcd-main-1.{DOMAIN}:2380",
        ]
    )
    assert doc["initial-advertise-peer-urls"] == {
        "shoot-etcd-main-0": [f"http://etcd-main-0.{DOMAIN}:2380", "http://10.0.0.9:2380"],
        "shoot-etcd-main-1": [f"http://etcd-main-1.{DOMAIN}:2380"],
    }
    assert doc["advertise-client-urls"]["shoot-etcd-main-1"] == [f"http://etcd-main-1.{DOMAIN}:2379"]
    assert "member-name-prefix" not in parsed(make_etcd())


def test_c25_configmap_key_order_is_go_yaml_natural_order() -> None:
    text = rendered(make_etcd(12))
    members = [line.strip().rstrip(":") for line in text.splitlines() if line.startswith("  etcd-main-")]
    assert members[:12] == [f"etcd-main-{i}" for i in range(12)]  # 2 before 10, unlike a plain string sort
    top = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith((" ", "-"))]
    assert top == sorted(top)  # plain keys: alphabetical ("initial-cluster" before "initial-cluster-state")


def test_c25_configmap_empty_cluster() -> None:
    text = rendered(make_etcd(0))
    assert 'initial-cluster: ""\n' in text
    assert "initial-advertise-peer-urls: {}\n" in text
    assert "advertise-client-urls: {}\n" in text


def test_c25_configmap_checksum_bytes() -> None:
    data = {"etcd.conf.yaml": 'a: x<y>&z \u2028 é \b\f\x01\t"\\\n', "b": "2"}
    expected = '{"b":"2","etcd.conf.yaml":"a: x\\u003cy\\u003e\\u0026z \\u2028 é \\b\\f\\u0001\\t\\"\\\\\\n"}'
    assert goyaml.json_marshal(data) == expected
    assert configmap.checksum({"data": data}) == hashlib.sha256(expected.encode()).hexdigest()
    assert configmap.checksum({"data": data}) == "73d07b07a78f5338348ceaef386ee65af182930cbdc200cdd82e8a42fb196792"
    assert configmap.checksum({}) == hashlib.sha256(b"null").hexdigest()


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("30m", "auto-compaction-retention: 30m"),
        ("", 'auto-compaction-retention: ""'),
        ("yes", 'auto-compaction-retention: "yes"'),
        ("y", 'auto-compaction-retention: "y"'),
        ("1e3", 'auto-compaction-retention: "1e3"'),
        ("1:30", 'auto-compaction-retention: "1:30"'),
        ("2024-01-02", 'auto-compaction-retention: "2024-01-02"'),
        ("*x", "auto-compaction-retention: '*x'"),
    ],
)
def test_c25_configmap_string_quoting_like_go_yaml(value: str, line: str) -> None:
    assert line + "\n" in rendered(make_etcd(sharedConfig={"autoCompactionRetention": value}))
