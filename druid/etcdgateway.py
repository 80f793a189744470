"""Talking to one etcd member through etcd's JSON gateway (the gRPC gateway on the client port).

Used by druid's ordered member updates (``controllers/etcd/memberupdate.py``), the quorum-loss recovery task
(``controllers/opstask/quorumrecovery.py``), verified restores (``controllers/opstask/verifiedrestore.py``) and
the leader-aware defragmentation task (``controllers/opstask/defragmentation.py``):

- ``POST /v3/maintenance/status`` ``{}``: the member's view: the response ``header`` (``cluster_id``,
  ``member_id``, ``revision``), the leader's member ID (``leader``), the database file size (``dbSize``) and the
  bytes of it in use (``dbSizeInUse``);
- ``POST /v3/maintenance/transfer-leadership`` ``{"targetID": <id>}``, sent to the leader: etcd's move-leader;
- ``POST /v3/cluster/member/list`` ``{}``: the members the cluster knows (``members[].name``, ``isLearner``);
- ``POST /v3/kv/range`` over the whole key space with ``count_only``: the revision and number of keys;
- ``POST /v3/maintenance/defragment`` ``{}``: defragment the member that answers (etcd's ``Defragment``; it
  blocks that member's reads and writes until its database file is rewritten, so it gets its own timeout).

IDs, revisions and counts travel as decimal strings (the gateway's encoding of 64-bit integers; a zero count
is left out); member leases hold IDs in hex.

Contract:

- **Address.** A member is reached at its pod IP on the client port (``spec.etcd.clientPort``, default 2379);
  no DNS is needed. With client TLS (``spec.etcd.clientUrlTls``) the scheme is https, the server is verified
  against the CA of ``tlsCASecretRef`` (key ``dataKey``, default ``ca.crt``) under the name
  ``<pod>.<etcd>-peer.<ns>.svc`` (the member's advertised client host, which the server certificate names), and
  druid presents the client certificate of ``clientTLSSecretRef`` (``tls.crt``/``tls.key``), since etcd
  requires client certificates whenever client TLS is on.
- **Session.** Requests go through the shared :class:`~druid.backuprestore.BackupRestoreClient` session.
- **Errors.** :class:`GatewayError` for a non-200 answer or an answer that is not what etcd sends; no answer at
  all raises :class:`~druid.backuprestore.BackupRestoreError` (status 0).
- The gateway must be enabled in the member's configuration (``enable-grpc-gateway``); druid turns it on with
  the ``OrderedMemberUpdate`` gate unless ``spec.etcd.enableGRPCGateway`` says otherwise.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any

from druid.api import defaults, names
from druid.api.etcd import Etcd
from druid.backuprestore import BackupRestoreClient, ca_context
from druid.runtime.client import Kube
from druid.runtime.objects import SECRETS

TIMEOUT = 5.0


class GatewayError(Exception):
    """etcd's JSON gateway answered, but not with success."""


@dataclass(frozen=True)
class MemberAddress:
    url: str  # scheme://podIP:clientPort
    server_hostname: str | None  # TLS name to verify (None without TLS)


def member_address(etcd: Etcd, pod: str, pod_ip: str) -> MemberAddress:
    tls = etcd.spec.etcd.client_url_tls is not None
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    url = f"{'https' if tls else 'http'}://{host}:{defaults.client_port(etcd.spec.etcd)}"
    server = f"{pod}.{names.peer_service_name(etcd.name)}.{etcd.namespace}.svc" if tls else None
    return MemberAddress(url, server)


async def tls_context(kube: Kube, etcd: Etcd) -> ssl.SSLContext | None:
    """Client TLS for the members' client port (see the module docstring); None without client TLS."""
    tls = etcd.spec.etcd.client_url_tls
    if tls is None:
        return None
    ns = etcd.namespace
    ca_name = tls.tls_ca_secret_ref.name or ""
    context = ca_context(await kube.get(SECRETS, ca_name, ns), defaults.ca_data_key(tls), f"{ns}/{ca_name}")
    if tls.client_tls_secret_ref is not None:
        client_name = tls.client_tls_secret_ref.name or ""
        data = (await kube.get(SECRETS, client_name, ns)).get("data") or {}
        try:
            cert, key = (base64.b64decode(data[k]) for k in ("tls.crt", "tls.key"))
        except KeyError as e:
            raise GatewayError(f"client TLS secret {ns}/{client_name} has no {e.args[0]}") from None
        _load_chain(context, cert, key)
    return context


def _load_chain(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """``load_cert_chain`` reads files only: write both to a private temporary directory, load, remove."""
    with tempfile.TemporaryDirectory(prefix="druid-etcd-client-") as d:
        paths = []
        for name, data in (("tls.crt", cert), ("tls.key", key)):
            path = os.path.join(d, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            paths.append(path)
        context.load_cert_chain(paths[0], paths[1])


async def _post(
    client: BackupRestoreClient,
    member: MemberAddress,
    path: str,
    body: dict[str, Any],
    tls: ssl.SSLContext | None,
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    url = member.url + path
    response = await client.request(
        "POST", url, tls=tls, timeout=timeout, read_body=True, json=body, server_hostname=member.server_hostname
    )
    text = (response.body or b"").decode("utf-8", "replace")
    if response.status != 200:
        raise GatewayError(f'POST "{url}": status {response.status}: {text[:200]}')
    try:
        out = json.loads(text or "{}")
    except ValueError:
        raise GatewayError(f'POST "{url}": not JSON: {text[:200]}') from None
    if not isinstance(out, dict):
        raise GatewayError(f'POST "{url}": not a JSON object: {text[:200]}')
    return out


async def leader_id(client: BackupRestoreClient, member: MemberAddress, tls: ssl.SSLContext | None) -> int:
    """The leader's member ID as ``member`` sees it (0: no leader)."""
    body = await _post(client, member, "/v3/maintenance/status", {}, tls)
    try:
        return int(body.get("leader") or 0)
    except (TypeError, ValueError):
        raise GatewayError(f"status of {member.url}: leader {body.get('leader')!r} is not an ID") from None


async def move_leader(
    client: BackupRestoreClient, leader: MemberAddress, target_id: int, tls: ssl.SSLContext | None
) -> None:
    """Ask the leader to hand leadership to ``target_id`` (etcd's move-leader; fails when sent to a follower)."""
    await _post(client, leader, "/v3/maintenance/transfer-leadership", {"targetID": str(target_id)}, tls)


@dataclass(frozen=True)
class MemberStatus:
    """One member's answer to ``/v3/maintenance/status``: IDs and revision as integers, sizes in bytes."""

    member_id: int
    leader_id: int  # 0: no leader
    db_size: int = 0  # the database file, allocated
    db_size_in_use: int = 0  # the part of it holding data; the rest is what a defragmentation can free
    cluster_id: int = 0
    revision: int = 0


def _uint(body: dict[str, Any], key: str, where: str) -> int:
    try:
        return int(body.get(key) or 0)
    except (TypeError, ValueError):
        raise GatewayError(f"{where}: {key} {body.get(key)!r} is not a number") from None


async def member_status(client: BackupRestoreClient, member: MemberAddress, tls: ssl.SSLContext | None) -> MemberStatus:
    """The member's ID, cluster ID and revision, the leader it sees, and its database sizes."""
    body = await _post(client, member, "/v3/maintenance/status", {}, tls)
    header = body.get("header")
    if not isinstance(header, dict):
        raise GatewayError(f"status of {member.url}: no header")
    where = f"status of {member.url}"
    return MemberStatus(
        member_id=_uint(header, "member_id", where),
        leader_id=_uint(body, "leader", where),
        db_size=_uint(body, "dbSize", where),
        db_size_in_use=_uint(body, "dbSizeInUse", where),
        cluster_id=_uint(header, "cluster_id", where),
        revision=_uint(header, "revision", where),
    )


async def member_names(client: BackupRestoreClient, member: MemberAddress, tls: ssl.SSLContext | None) -> list[str]:
    """Names of the cluster's members as ``member`` lists them (learners marked ``name (learner)``)."""
    body = await _post(client, member, "/v3/cluster/member/list", {}, tls)
    members = body.get("members")
    if not isinstance(members, list):
        raise GatewayError(f"member list of {member.url}: no members")
    return sorted(f"{m.get('name', '')}{' (learner)' if m.get('isLearner') else ''}" for m in members)


ALL_KEYS = base64.b64encode(b"\0").decode()
"""``key`` and ``range_end`` ``"\\0"``: every key (etcdctl's ``get "" --prefix``, from the smallest key on)."""


@dataclass(frozen=True)
class KeySpace:
    revision: int  # the store's current revision (response header)
    keys: int  # number of keys


async def key_space(client: BackupRestoreClient, member: MemberAddress, tls: ssl.SSLContext | None) -> KeySpace:
    """The revision and key count ``member`` serves (a serializable count-only range over every key)."""
    body = {"key": ALL_KEYS, "range_end": ALL_KEYS, "count_only": True, "serializable": True}
    out = await _post(client, member, "/v3/kv/range", body, tls)
    try:
        revision = int((out.get("header") or {})["revision"])
        return KeySpace(revision, int(out.get("count") or 0))
    except (KeyError, TypeError, ValueError):
        raise GatewayError(f"range of {member.url}: no revision or count in {str(out)[:200]}") from None


async def defragment(
    client: BackupRestoreClient, member: MemberAddress, tls: ssl.SSLContext | None, timeout: float
) -> None:
    """Defragment ``member`` (only it; etcd's maintenance Defragment), waiting up to ``timeout`` seconds."""
    await _post(client, member, "/v3/maintenance/defragment", {}, tls, timeout=timeout)
