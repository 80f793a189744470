"""ConfigMap ``<n>-config`` with the etcd configuration file ``etcd.conf.yaml``; found and deleted by name.

The file is rendered like upstream's ``sigs.k8s.io/yaml.Marshal`` of its config struct: keys in go-yaml's
natural order (not struct order), ints and bools unquoted, strings go-yaml would misread double-quoted.
``checksum`` is the value of the pod template annotation ``checksum/etcd-configmap``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from druid.api import constants as c
from druid.api import defaults, names
from druid.api.etcd import Etcd, TLSConfig
from druid.components.base import BuildOptions, Component, ErrorCodes, metadata, obj
from druid.config import features
from druid.gocompat import goyaml
from druid.runtime.objects import CONFIGMAPS, Obj

KIND = "ConfigMap"
RESOURCE = CONFIGMAPS
COMPONENT_LABEL = c.COMPONENT_CONFIGMAP
ERROR_CODES = ErrorCodes("ERR_GET_CONFIGMAP", "ERR_SYNC_CONFIGMAP", "ERR_DELETE_CONFIGMAP")
ERR_GET_CONFIGMAP, ERR_SYNC_CONFIGMAP, ERR_DELETE_CONFIGMAP = ERROR_CODES

CONFIG_KEY = "etcd.conf.yaml"
DATA_DIR = "/var/etcd/data/new.etcd"
# Mount paths of the TLS secrets in the etcd container (see statefulset_volumes).
CLIENT_CA_DIR = "/var/etcd/ssl/ca"
CLIENT_SERVER_TLS_DIR = "/var/etcd/ssl/server"
PEER_CA_DIR = "/var/etcd/ssl/peer/ca"
PEER_SERVER_TLS_DIR = "/var/etcd/ssl/peer/server"


def _security(tls: TLSConfig | None, ca_dir: str, server_dir: str) -> tuple[str, dict[str, Any] | None]:
    """URL scheme and transport-security block for one TLS config (``http`` and none without TLS)."""
    if tls is None:
        return "http", None
    return "https", {
        "cert-file": f"{server_dir}/tls.crt",
        "key-file": f"{server_dir}/tls.key",
        "client-cert-auth": True,
        "trusted-ca-file": f"{ca_dir}/{defaults.ca_data_key(tls)}",
        "auto-tls": False,
    }


def _additional_urls(etcd: Etcd, pod: str) -> list[str]:
    """additionalAdvertisePeerURLs of the first entry whose memberName equals the pod name (as upstream)."""
    for entry in etcd.spec.etcd.additional_advertise_peer_urls or ():
        if entry.member_name == pod:
            return list(entry.urls)
    return []


def initial_cluster(etcd: Etcd, peer_scheme: str) -> str:
    config = etcd.spec.etcd
    domain = f"{names.peer_service_name(etcd.name)}.{etcd.namespace}.svc"
    port = defaults.server_port(config)
    parts: list[str] = []
    for pod in names.pod_names(etcd.name, etcd.spec.replicas):
        member = names.member_name(etcd.spec.member_name_prefix, pod)
        parts.append(f"{member}={peer_scheme}://{pod}.{domain}:{port}")
        parts.extend(f"{member}={url}" for url in _additional_urls(etcd, pod))
    if config.bootstrap_with_existing_cluster is not None:
        for source in config.bootstrap_with_existing_cluster.members:
            parts.extend(f"{source.name}={url}" for url in source.peer_urls)
    return ",".join(parts)


def _advertise_urls(etcd: Etcd, scheme: str, port: int, *, peer: bool) -> dict[str, list[str]]:
    domain = f"{names.peer_service_name(etcd.name)}.{etcd.namespace}.svc"
    urls: dict[str, list[str]] = {}
    for pod in names.pod_names(etcd.name, etcd.spec.replicas):
        member = names.member_name(etcd.spec.member_name_prefix, pod)
        urls[member] = [f"{scheme}://{pod}.{domain}:{port}", *(_additional_urls(etcd, pod) if peer else ())]
    return urls


def grpc_gateway_enabled(etcd: Etcd, opts: BuildOptions) -> bool:
    """``spec.etcd.enableGRPCGateway`` when set; else on with druid's ``OrderedMemberUpdate`` gate (druid moves
    leadership through etcd's JSON gateway) and upstream's default (off) without it."""
    explicit = etcd.spec.etcd.enable_grpc_gateway
    if explicit is None and opts.feature(features.ORDERED_MEMBER_UPDATE):
        return True
    return defaults.enable_grpc_gateway(etcd.spec.etcd)


def etcd_config(etcd: Etcd, opts: BuildOptions) -> dict[str, Any]:
    """The etcd configuration as a JSON-like dict (upstream's ``etcdConfig`` after JSON encoding)."""
    config = etcd.spec.etcd
    client_scheme, client_security = _security(config.client_url_tls, CLIENT_CA_DIR, CLIENT_SERVER_TLS_DIR)
    peer_scheme, peer_security = _security(config.peer_url_tls, PEER_CA_DIR, PEER_SERVER_TLS_DIR)
    if peer_security is not None and config.peer_url_tls and config.peer_url_tls.skip_client_san_verification:
        peer_security["skip-client-san-verification"] = True
    out: dict[str, Any] = {
        "name": "etcd-config",
        "data-dir": DATA_DIR,
        "metrics": defaults.metrics(config),
        "snapshot-count": defaults.snapshot_count(config),
        "enable-grpc-gateway": grpc_gateway_enabled(etcd, opts),
        "quota-backend-bytes": defaults.quota_bytes(config),
        "initial-cluster-token": "etcd-cluster",
        "initial-cluster-state": "new",
        "initial-cluster": initial_cluster(etcd, peer_scheme),
        "auto-compaction-mode": defaults.auto_compaction_mode(etcd.spec),
        "auto-compaction-retention": defaults.auto_compaction_retention(etcd.spec),
        "listen-peer-urls": f"{peer_scheme}://0.0.0.0:{defaults.server_port(config)}",
        "listen-client-urls": f"{client_scheme}://0.0.0.0:{defaults.client_port(config)}",
        "initial-advertise-peer-urls": _advertise_urls(etcd, peer_scheme, defaults.server_port(config), peer=True),
        "advertise-client-urls": _advertise_urls(etcd, client_scheme, defaults.client_port(config), peer=False),
    }
    if client_security is not None:
        out["client-transport-security"] = client_security
    if peer_security is not None:
        out["peer-transport-security"] = peer_security
    if etcd.spec.member_name_prefix:
        out["member-name-prefix"] = etcd.spec.member_name_prefix
    out["next-cluster-version-compatible"] = True
    if opts.feature(features.UPGRADE_ETCD_VERSION):
        out["backend-bbolt-freelist-type"] = defaults.backend_bbolt_freelist_type(config)
    return out


def render(etcd: Etcd, opts: BuildOptions) -> str:
    """The text of ``etcd.conf.yaml``, byte for byte as etcd-druid renders it."""
    return goyaml.marshal(etcd_config(etcd, opts))


def build(etcd: Etcd, opts: BuildOptions) -> list[Obj]:
    name = names.config_map_name(etcd.name)
    meta = metadata(etcd, name, COMPONENT_LABEL)
    return [obj(RESOURCE.api_version, RESOURCE.kind, meta, data={CONFIG_KEY: render(etcd, opts)})]


def checksum(configmap: Obj) -> str:
    """sha256 hex of Go's ``json.Marshal(configMap.Data)`` (sorted keys, compact, HTML characters escaped)."""
    data = configmap.get("data")
    payload = "null" if data is None else goyaml.json_marshal(data)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


COMPONENT = Component.of(globals(), object_names=lambda n: [names.config_map_name(n)], runtime=False)
