"""TLS Secrets for the sample Etcds (``manifests/samples/etcd-3-tls.yaml``), from throw-away CAs.

Used by ``hack/gen-sample-secrets.py``, the local demo and the tests. Two CAs (one for clients, one for
peers) made with :mod:`druid.testing.pki`; certificates are valid for 30 days and the CA keys are discarded.
Secrets (for an Etcd named N):
  N-ca           ca.crt               client CA bundle (clientUrlTls.tlsCASecretRef, dataKey ca.crt)
  N-server       tls.crt, tls.key     etcd's client-facing serving cert (serverTLSSecretRef)
  N-client       tls.crt, tls.key     client cert backup-restore and etcd-wrapper use (clientTLSSecretRef)
  N-peer-ca      ca.crt               peer CA bundle (peerUrlTls.tlsCASecretRef)
  N-peer-server  tls.crt, tls.key     peer cert, serving and client use (peerUrlTls.serverTLSSecretRef)
and, with ``backup=True``, for backup-restore's own server (backup.tls; a third CA):
  N-backup-ca      ca.crt             CA bundle the wrapper trusts (backup.tls.tlsCASecretRef)
  N-backup-server  tls.crt, tls.key   backup-restore's serving cert for ``N-local`` (serverTLSSecretRef)
  N-backup-client  tls.crt, tls.key   client cert (clientTLSSecretRef)
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

from druid.testing.pki import CertificateAuthority, KeyPair


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _secret(name: str, namespace: str, data: dict[str, Path], kind: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": kind,
        "data": {key: _b64(path) for key, path in data.items()},
    }


def _tls(name: str, namespace: str, pair: KeyPair) -> dict[str, Any]:
    return _secret(name, namespace, {"tls.crt": pair.cert, "tls.key": pair.key}, "kubernetes.io/tls")


def peer_names(name: str, namespace: str) -> tuple[str, ...]:
    """Member addresses: ``<pod>.<name>-peer.<ns>.svc`` (advertised URLs) and shorter/longer forms."""
    peer = f"{name}-peer"
    domains = (peer, f"{peer}.{namespace}", f"{peer}.{namespace}.svc", f"{peer}.{namespace}.svc.cluster.local")
    return tuple(f"*.{d}" for d in domains) + domains


def client_names(name: str, namespace: str) -> tuple[str, ...]:
    """What clients dial: ``<name>-local`` (in the pod), the client Service, the members' own addresses."""
    client = f"{name}-client"
    service = (client, f"{client}.{namespace}", f"{client}.{namespace}.svc", f"{client}.{namespace}.svc.cluster.local")
    return (f"{name}-local", *service, *peer_names(name, namespace), "localhost")


def _backup_secrets(name: str, namespace: str, workdir: Path) -> list[dict[str, Any]]:
    ca = CertificateAuthority(workdir / "backup", common_name=f"{name}-backup-ca")
    local = (f"{name}-local", "localhost")
    server = ca.issue("server", f"{name}-backup-server", dns=local, ips=("127.0.0.1",), server=True, client=True)
    client = ca.issue("client", f"{name}-backup-client", client=True)
    return [
        _secret(f"{name}-backup-ca", namespace, {"ca.crt": ca.pair.cert}),
        _tls(f"{name}-backup-server", namespace, server),
        _tls(f"{name}-backup-client", namespace, client),
    ]


def _secrets(name: str, namespace: str, workdir: Path) -> list[dict[str, Any]]:
    client_ca = CertificateAuthority(workdir / "client", common_name=f"{name}-ca")
    peer_ca = CertificateAuthority(workdir / "peer", common_name=f"{name}-peer-ca")
    server = client_ca.issue(
        "server",
        f"{name}-server",
        dns=client_names(name, namespace),
        ips=("127.0.0.1", "::1"),
        server=True,
        client=True,
    )
    client = client_ca.issue("client", f"{name}-client", client=True)
    peer = peer_ca.issue("peer", f"{name}-peer-server", dns=peer_names(name, namespace), server=True, client=True)
    return [
        _secret(f"{name}-ca", namespace, {"ca.crt": client_ca.pair.cert}),
        _tls(f"{name}-server", namespace, server),
        _tls(f"{name}-client", namespace, client),
        _secret(f"{name}-peer-ca", namespace, {"ca.crt": peer_ca.pair.cert}),
        _tls(f"{name}-peer-server", namespace, peer),
    ]


def tls_secrets(name: str, namespace: str, *, backup: bool = False) -> list[dict[str, Any]]:
    """The five TLS Secrets of the sample Etcd ``name`` in ``namespace`` (eight with ``backup``); key material
    never touches the repo."""
    with tempfile.TemporaryDirectory(prefix="druid-sample-pki-") as workdir:
        out = _secrets(name, namespace, Path(workdir))
        return out + _backup_secrets(name, namespace, Path(workdir)) if backup else out
