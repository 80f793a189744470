"""``etcdctl`` on the host against real etcd members: what end-to-end tests assert on.

The binary is the one built for the pods' etcd version (``Binaries.etcdctl``). Endpoints are pod or Service
addresses on the suite's own bridge. With client TLS the client certificate is presented and the server's
certificate is not checked against a name (the host dials addresses, not the cluster names the certificate
carries): ``--insecure-skip-tls-verify``.
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class EtcdctlError(RuntimeError):
    pass


@dataclass(frozen=True)
class ClientTLS:
    cacert: Path
    cert: Path
    key: Path

    @classmethod
    def from_secrets(cls, directory: Path, ca: dict[str, Any], client: dict[str, Any]) -> ClientTLS:
        """Write the CA bundle (key ``ca.crt``) and client pair (``tls.crt``/``tls.key``) of two Secrets."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "ca.crt": ca["data"]["ca.crt"],
            "tls.crt": client["data"]["tls.crt"],
            "tls.key": client["data"]["tls.key"],
        }
        for name, value in files.items():
            (directory / name).write_bytes(base64.b64decode(value))
            (directory / name).chmod(0o600)
        return cls(directory / "ca.crt", directory / "tls.crt", directory / "tls.key")


@dataclass(frozen=True)
class Etcdctl:
    binary: Path
    endpoints: tuple[str, ...]
    tls: ClientTLS | None = None
    timeout: float = 10.0

    def at(self, *endpoints: str) -> Etcdctl:
        return Etcdctl(self.binary, endpoints, self.tls, self.timeout)

    def run(self, *args: str) -> str:
        argv = [str(self.binary), f"--endpoints={','.join(self.endpoints)}", f"--command-timeout={self.timeout:.0f}s"]
        argv.append(f"--dial-timeout={min(self.timeout, 5):.0f}s")
        if self.tls is not None:
            argv += [f"--cacert={self.tls.cacert}", f"--cert={self.tls.cert}", f"--key={self.tls.key}"]
            argv.append("--insecure-skip-tls-verify")
        argv += list(args)
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout + 10, check=False)
        except subprocess.TimeoutExpired as e:
            raise EtcdctlError(f"etcdctl {' '.join(args)} timed out against {self.endpoints}") from e
        if res.returncode != 0:
            raise EtcdctlError(f"etcdctl {' '.join(args)} against {self.endpoints}: {res.stderr.strip()}")
        return res.stdout

    def put(self, key: str, value: str) -> int:
        """Write a key; returns the revision of the write."""
        return int(json.loads(self.run("put", key, value, "-w", "json"))["header"]["revision"])

    def get(self, key: str) -> str | None:
        out = json.loads(self.run("get", key, "-w", "json"))
        kvs = out.get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def revision(self) -> int:
        return int(json.loads(self.run("get", "x", "-w", "json"))["header"]["revision"])

    def members(self) -> list[dict[str, Any]]:
        """``member list``: each with ``ID`` (hex), ``name``, ``peerURLs``, ``clientURLs``."""
        out = json.loads(self.run("member", "list", "-w", "json", "--hex"))
        return list(out.get("members") or [])

    def cluster_id(self) -> str:
        out = json.loads(self.run("member", "list", "-w", "json", "--hex"))
        return str(out["header"]["cluster_id"])

    def status(self) -> list[dict[str, Any]]:
        """``endpoint status`` of every endpoint (leader, revision, raft term, db size)."""
        return list(json.loads(self.run("endpoint", "status", "-w", "json", "--hex")))
