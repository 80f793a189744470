"""A stand-in for etcd-backup-restore's lease renewal, for tests and the local demo.

Under kwok, pods run nothing: there is no etcd and no backup-restore sidecar, so nobody renews the member
and snapshot Leases druid creates, and every member would stay out of ``status.members``. These helpers do
what backup-restore does (its ``--enable-member-lease-renewal`` / ``--enable-snapshot-lease-renewal``):

- member Lease ``<member>`` (``[<memberNamePrefix>-]<etcd>-<i>``): ``spec.holderIdentity`` =
  ``<memberID>[:<clusterID>]:<Leader|Member>``, ``spec.renewTime`` (MicroTime) = now, and the annotation
  ``member.etcd.gardener.cloud/tls-enabled`` = ``"true"``/``"false"`` (peer TLS of the member);
- snapshot Leases ``<etcd>-full-snap`` / ``<etcd>-delta-snap``: ``spec.holderIdentity`` = the snapshot
  revision as a decimal string, ``spec.renewTime`` = now.

Member IDs are stable fake hex IDs derived from the member name. Leases druid has not created yet are
skipped (backup-restore only ever updates them). :class:`LeaseRenewer` renews periodically in a background task.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import structlog

from druid.api import constants as c
from druid.api import names
from druid.runtime.client import ApiError, Kube
from druid.runtime.clock import micro_time
from druid.runtime.objects import LEASES
from druid.runtime.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


def member_id(member: str) -> str:
    """A stable fake etcd member ID (16 hex digits) for a member name."""
    return hashlib.sha256(member.encode()).hexdigest()[:16]


async def _patch(kube: Kube, namespace: str, name: str, body: dict[str, object]) -> bool:
    try:
        await kube.merge_patch(LEASES, name, body, namespace)
    except ApiError as e:
        if e.not_found:
            return False
        raise
    return True


async def renew_member_leases(
    kube: Kube,
    etcd_name: str,
    namespace: str,
    *,
    replicas: int,
    member_name_prefix: str | None = None,
    leader_ordinal: int | None = 0,
    cluster_id: str | None = None,
    tls_enabled: bool | None = None,
    ordinals: list[int] | None = None,
    now: dt.datetime | None = None,
) -> list[str]:
    """Renew the member leases of ordinals ``0..replicas-1`` (or ``ordinals``) as backup-restore does.

    ``tls_enabled`` None leaves the annotation alone. Returns the names of the leases renewed.
    """
    stamp = micro_time(now or dt.datetime.now(dt.UTC))
    renewed = []
    for i in ordinals if ordinals is not None else range(replicas):
        lease = names.member_name(member_name_prefix, names.pod_name(etcd_name, i))
        role = c.ROLE_LEADER if i == leader_ordinal else c.ROLE_MEMBER
        holder = ":".join(x for x in (member_id(lease), cluster_id, role) if x)
        body: dict[str, object] = {"spec": {"holderIdentity": holder, "renewTime": stamp}}
        if tls_enabled is not None:
            body["metadata"] = {"annotations": {c.ANNOTATION_LEASE_PEER_TLS_ENABLED: str(tls_enabled).lower()}}
        if await _patch(kube, namespace, lease, body):
            renewed.append(lease)
    return renewed


async def renew_snapshot_leases(
    kube: Kube,
    etcd_name: str,
    namespace: str,
    *,
    full_revision: int | None = None,
    delta_revision: int | None = None,
    now: dt.datetime | None = None,
) -> list[str]:
    """Set the full/delta snapshot leases to the given revisions (None leaves a lease alone)."""
    stamp = micro_time(now or dt.datetime.now(dt.UTC))
    renewed = []
    for name, revision in (
        (names.full_snapshot_lease_name(etcd_name), full_revision),
        (names.delta_snapshot_lease_name(etcd_name), delta_revision),
    ):
        if revision is None:
            continue
        if await _patch(kube, namespace, name, {"spec": {"holderIdentity": str(revision), "renewTime": stamp}}):
            renewed.append(name)
    return renewed


class LeaseRenewer:
    """Renews an Etcd's member leases (and optionally snapshot leases) every ``interval`` seconds until stopped.

    Kwok pods run nothing, so this plays the backup-restore sidecars of all members at once.
    """

    def __init__(
        self,
        kube: Kube,
        etcd_name: str,
        namespace: str,
        *,
        replicas: int,
        interval: float = 1.0,
        member_name_prefix: str | None = None,
        leader_ordinal: int | None = 0,
        cluster_id: str | None = None,
        tls_enabled: bool | None = None,
        snapshot_revisions: tuple[int, int] | None = None,
    ) -> None:
        self.kube, self.etcd_name, self.namespace = kube, etcd_name, namespace
        self.replicas, self.interval = replicas, interval
        self.member_name_prefix, self.leader_ordinal = member_name_prefix, leader_ordinal
        self.cluster_id, self.tls_enabled = cluster_id, tls_enabled
        self.snapshot_revisions = snapshot_revisions  # (full, delta)
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    async def renew_once(self) -> None:
        await renew_member_leases(
            self.kube,
            self.etcd_name,
            self.namespace,
            replicas=self.replicas,
            member_name_prefix=self.member_name_prefix,
            leader_ordinal=self.leader_ordinal,
            cluster_id=self.cluster_id,
            tls_enabled=self.tls_enabled,
        )
        if self.snapshot_revisions is not None:
            full, delta = self.snapshot_revisions
            await renew_snapshot_leases(
                self.kube, self.etcd_name, self.namespace, full_revision=full, delta_revision=delta
            )
        self.rounds += 1

    async def _run(self) -> None:
        while True:
            try:
                await self.renew_once()
            except ApiError as e:
                log.warning("lease renewal failed", etcd=self.etcd_name, error=str(e))
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"lease-renewer {self.etcd_name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()
