"""Volumes, volume mounts and environment of the etcd StatefulSet's pods (upstream builder.go, store.go)."""

from __future__ import annotations

import base64
from typing import Any

from druid.api import defaults, names, store
from druid.api.etcd import Etcd, TLSConfig
from druid.components import configmap
from druid.runtime.objects import Obj

SECRET_MODE = 0o640  # defaultMode of every secret and the ConfigMap volume

# Volume names
CONFIG = "etcd-config-file"
ETCD_CA = "etcd-ca"
ETCD_SERVER_TLS = "etcd-server-tls"
ETCD_CLIENT_TLS = "etcd-client-tls"
ETCD_PEER_CA = "etcd-peer-ca"
ETCD_PEER_SERVER_TLS = "etcd-peer-server-tls"
OLD_ETCD_PEER_CA = "peer-url-ca-etcd"  # names used by etcd-druid <= v0.22, still recognised
OLD_ETCD_PEER_SERVER_TLS = "peer-url-etcd-server-tls"
BACKUP_RESTORE_CA = "backup-restore-ca"
BACKUP_RESTORE_SERVER_TLS = "backup-restore-server-tls"
BACKUP_RESTORE_CLIENT_TLS = "backup-restore-client-tls"
LOCAL_BACKUP = "local-backup"
BACKUP_SECRET = "etcd-backup-secret"

# Mount paths
DATA_DIR = "/var/etcd/data"
CONFIG_DIR = "/var/etcd/config/"
ETCD_CA_DIR = configmap.CLIENT_CA_DIR
ETCD_SERVER_TLS_DIR = configmap.CLIENT_SERVER_TLS_DIR
ETCD_CLIENT_TLS_DIR = "/var/etcd/ssl/client"
ETCD_PEER_CA_DIR = configmap.PEER_CA_DIR
ETCD_PEER_SERVER_TLS_DIR = configmap.PEER_SERVER_TLS_DIR
BACKUP_RESTORE_CA_DIR = "/var/etcdbr/ssl/ca"
BACKUP_RESTORE_SERVER_TLS_DIR = "/var/etcdbr/ssl/server"
GCS_SECRET_DIR = "/var/.gcp/"
BACKUP_SECRET_DIR = "/var/etcd-backup"

LOCAL_DEFAULT_HOST_PATH = store.LOCAL_DEFAULT_HOST_PATH
LOCAL_HOST_PATH_KEY = "hostPath"  # key of the store secret naming the host directory of Local buckets

# Providers whose credentials come from a mounted secret (ECS reads env vars from the secret instead).
SECRET_MOUNT_PROVIDERS = (store.GCS, store.S3, store.ABS, store.OSS, store.SWIFT, store.OCS)
CREDENTIALS_ENV = {
    store.S3: ("AWS_APPLICATION_CREDENTIALS", BACKUP_SECRET_DIR),
    store.ABS: ("AZURE_APPLICATION_CREDENTIALS", BACKUP_SECRET_DIR),
    store.GCS: ("GOOGLE_APPLICATION_CREDENTIALS", f"{GCS_SECRET_DIR}serviceaccount.json"),
    store.SWIFT: ("OPENSTACK_APPLICATION_CREDENTIALS", BACKUP_SECRET_DIR),
    store.OSS: ("ALICLOUD_APPLICATION_CREDENTIALS", BACKUP_SECRET_DIR),
    store.OCS: ("OPENSHIFT_APPLICATION_CREDENTIALS", BACKUP_SECRET_DIR),
}
ECS_ENV = (
    ("ECS_ENDPOINT", "endpoint"),
    ("ECS_ACCESS_KEY_ID", "accessKeyID"),
    ("ECS_SECRET_ACCESS_KEY", "secretAccessKey"),
)


def provider(etcd: Etcd) -> str | None:
    """backup-restore's provider name; None without a store, ``""`` for a store without provider.

    Raises ``ValueError`` ("unsupported storage provider ...") for an unknown provider.
    """
    backup_store = etcd.spec.backup.store
    if backup_store is None:
        return None
    return "" if backup_store.provider is None else store.storage_provider(backup_store.provider)


def mount(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "mountPath": path}


def data_mount(etcd: Etcd) -> dict[str, Any]:
    return mount(defaults.volume_claim_template_name(etcd), DATA_DIR)


def peer_tls_mounts(etcd: Etcd) -> list[dict[str, Any]]:
    if etcd.spec.etcd.peer_url_tls is None:
        return []
    return [mount(ETCD_PEER_CA, ETCD_PEER_CA_DIR), mount(ETCD_PEER_SERVER_TLS, ETCD_PEER_SERVER_TLS_DIR)]


def etcd_tls_mounts(etcd: Etcd) -> list[dict[str, Any]]:
    """TLS mounts of the etcd container: client CA/server/client, peer CA/server, backup-restore CA."""
    out = []
    if etcd.spec.etcd.client_url_tls is not None:
        out += [
            mount(ETCD_CA, ETCD_CA_DIR),
            mount(ETCD_SERVER_TLS, ETCD_SERVER_TLS_DIR),
            mount(ETCD_CLIENT_TLS, ETCD_CLIENT_TLS_DIR),
        ]
    out += peer_tls_mounts(etcd)
    if etcd.spec.backup.tls is not None:
        out.append(mount(BACKUP_RESTORE_CA, BACKUP_RESTORE_CA_DIR))
    return out


def backup_restore_tls_mounts(etcd: Etcd) -> list[dict[str, Any]]:
    """TLS mounts of the backup-restore container: its server certificate, the etcd client CA and certificate."""
    out = []
    if etcd.spec.backup.tls is not None:
        out.append(mount(BACKUP_RESTORE_SERVER_TLS, BACKUP_RESTORE_SERVER_TLS_DIR))
    if etcd.spec.etcd.client_url_tls is not None:
        out += [mount(ETCD_CA, ETCD_CA_DIR), mount(ETCD_CLIENT_TLS, ETCD_CLIENT_TLS_DIR)]
    return out


def local_store_mount_path(etcd: Etcd) -> str:
    """``/home/nonroot/<container>`` (``/root/...`` with runAsRoot) for a Local store, else ``""``."""
    if provider(etcd) != store.LOCAL:
        return ""
    home = "/root" if etcd.spec.run_as_root else "/home/nonroot"
    backup_store = etcd.spec.backup.store
    container = backup_store.container if backup_store else None
    return home + ("" if container is None else f"/{container}")


def backup_mount(etcd: Etcd) -> dict[str, Any] | None:
    """Where backup-restore sees the store: Local bucket directory or the provider credentials secret."""
    kind, backup_store = provider(etcd), etcd.spec.backup.store
    if backup_store is None:
        return None
    if kind == store.LOCAL:
        return mount(LOCAL_BACKUP, local_store_mount_path(etcd)) if backup_store.container is not None else None
    if kind in SECRET_MOUNT_PROVIDERS and backup_store.secret_ref is not None:
        return mount(BACKUP_SECRET, GCS_SECRET_DIR if kind == store.GCS else BACKUP_SECRET_DIR)
    return None


def etcd_mounts(etcd: Etcd) -> list[dict[str, Any]]:
    return [data_mount(etcd), *etcd_tls_mounts(etcd)]


def backup_restore_mounts(etcd: Etcd) -> list[dict[str, Any]]:
    out = [data_mount(etcd), mount(CONFIG, CONFIG_DIR), *backup_restore_tls_mounts(etcd)]
    extra = backup_mount(etcd)
    return [*out, extra] if extra is not None else out


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def backup_restore_env(etcd: Etcd) -> list[dict[str, Any]]:
    """POD_NAME, POD_NAMESPACE; with a store STORAGE_CONTAINER and the provider's credentials variables.

    Raises ``ValueError`` for ECS without ``secretRef`` (its credentials are read from the secret's keys).
    """
    env = [_field_env("POD_NAME", "metadata.name"), _field_env("POD_NAMESPACE", "metadata.namespace")]
    backup_store = etcd.spec.backup.store
    if backup_store is None:
        return env
    container = backup_store.container or ""
    env.append({"name": "STORAGE_CONTAINER", "value": container} if container else {"name": "STORAGE_CONTAINER"})
    kind = provider(etcd)
    if kind in CREDENTIALS_ENV:
        name, value = CREDENTIALS_ENV[kind]
        env.append({"name": name, "value": value})
    elif kind == store.ECS:
        if backup_store.secret_ref is None:
            raise ValueError("no secretRef could be configured for backup store of ECS")
        secret = backup_store.secret_ref.name or ""
        env += [
            {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": False}}}
            for name, key in ECS_ENV
        ]
    return env


def _secret_volume(name: str, secret_name: str | None) -> dict[str, Any]:
    source: dict[str, Any] = {"defaultMode": SECRET_MODE}
    if secret_name:
        source["secretName"] = secret_name
    return {"name": name, "secret": source}


def _tls_volumes(tls: TLSConfig, ca: str, server: str, client: str | None) -> list[dict[str, Any]]:
    out = [_secret_volume(ca, tls.tls_ca_secret_ref.name), _secret_volume(server, tls.server_tls_secret_ref.name)]
    if client is not None:
        out.append(_secret_volume(client, tls.client_tls_secret_ref.name if tls.client_tls_secret_ref else None))
    return out


def local_host_path(secret: Obj | None) -> str:
    """Host directory of Local buckets: the store secret's ``hostPath`` key, else the default.

    Pass the store secret as read from the cluster (``data`` base64-encoded), or None without ``secretRef``.
    """
    value = ((secret or {}).get("data") or {}).get(LOCAL_HOST_PATH_KEY)
    return LOCAL_DEFAULT_HOST_PATH if value is None else base64.b64decode(value).decode("utf-8")


def backup_volume(etcd: Etcd, host_path: str | None) -> dict[str, Any] | None:
    kind, backup_store = provider(etcd), etcd.spec.backup.store
    if backup_store is None:
        return None
    if kind == store.LOCAL:
        root = LOCAL_DEFAULT_HOST_PATH if host_path is None else host_path
        path = f"{root}/{backup_store.container or ''}"
        return {"name": LOCAL_BACKUP, "hostPath": {"path": path, "type": "DirectoryOrCreate"}}
    if kind in SECRET_MOUNT_PROVIDERS and backup_store.secret_ref is not None:
        return _secret_volume(BACKUP_SECRET, backup_store.secret_ref.name)
    return None


def volumes(etcd: Etcd, host_path: str | None = None) -> list[dict[str, Any]]:
    """Pod volumes: the config file, the TLS secrets of each enabled TLS block, the backup volume."""
    config_map = {
        "name": names.config_map_name(etcd.name),
        "items": [{"key": configmap.CONFIG_KEY, "path": configmap.CONFIG_KEY}],
        "defaultMode": SECRET_MODE,
    }
    out: list[dict[str, Any]] = [{"name": CONFIG, "configMap": config_map}]
    spec = etcd.spec
    if spec.etcd.client_url_tls is not None:
        out += _tls_volumes(spec.etcd.client_url_tls, ETCD_CA, ETCD_SERVER_TLS, ETCD_CLIENT_TLS)
    if spec.etcd.peer_url_tls is not None:
        out += _tls_volumes(spec.etcd.peer_url_tls, ETCD_PEER_CA, ETCD_PEER_SERVER_TLS, None)
    if spec.backup.tls is not None:
        out += _tls_volumes(spec.backup.tls, BACKUP_RESTORE_CA, BACKUP_RESTORE_SERVER_TLS, BACKUP_RESTORE_CLIENT_TLS)
    extra = backup_volume(etcd, host_path)
    return [*out, extra] if extra is not None else out
