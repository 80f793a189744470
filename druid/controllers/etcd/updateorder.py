"""Which member to replace next, and whether it is safe (druid's ``OrderedMemberUpdate`` gate; pure).

With the gate on, the StatefulSet's ``updateStrategy`` is ``OnDelete``: the StatefulSet controller only
re-creates pods druid deleted, and druid decides the order. :func:`decide` takes a :class:`RollView` (one
:class:`MemberView` per ordinal ``0..replicas-1``, as the I/O shell ``memberupdate.py`` observed it) and
returns exactly one :class:`Step`:

- every pod at the StatefulSet's ``updateRevision``: :class:`Done`;
- a pod missing, terminating or deleted by druid and not yet re-created, or an updated member not healthy
  (not back and Ready after its replacement): :class:`Wait` (``WaitingForMember``) — one replacement at a time;
- the next out-of-date member, in this order: members already unhealthy (lowest ordinal first), then healthy
  followers, then the leader;
- it is replaced only while :func:`druid.api.quorum.safe_without` allows it (the members healthy without it
  still form a quorum; one- and two-member clusters as described there), else :class:`Wait`
  (``WaitingForQuorum``) naming the unhealthy members;
- with a backup store, a full snapshot is taken (:class:`Snapshot`) before the first replacement of a roll
  (``snapshot_taken`` false), once it is known to be safe to go on;
- the healthy leader is replaced only after leadership moved to an updated healthy follower
  (:class:`TransferLeadership`); with no such follower, :class:`Wait` (``WaitingForLeaderTarget``);
- otherwise :class:`Delete` the member's pod.

"Healthy" is the caller's: the pod is Ready and the member's lease was renewed within the unknown threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from druid.api.quorum import (
    REASON_WAITING_FOR_LEADER_TARGET,
    REASON_WAITING_FOR_MEMBER,
    REASON_WAITING_FOR_QUORUM,
    quorum_message,
    safe_without,
)

REASON_UP_TO_DATE = "UpToDate"
REASON_TAKING_SNAPSHOT = "TakingSnapshot"
REASON_TRANSFERRING_LEADERSHIP = "TransferringLeadership"
REASON_REPLACING_UNHEALTHY = "ReplacingUnhealthyMember"
REASON_REPLACING_FOLLOWER = "ReplacingFollower"


@dataclass(frozen=True)
class MemberView:
    name: str  # pod name
    ordinal: int
    present: bool  # the pod exists, is not terminating and is not one druid deleted
    updated: bool  # the pod's controller-revision-hash is the StatefulSet's updateRevision
    healthy: bool  # pod Ready and member lease renewed
    leader: bool


@dataclass(frozen=True)
class RollView:
    members: tuple[MemberView, ...]  # one per ordinal 0..replicas-1
    backup: bool = False  # a backup store is configured
    snapshot_taken: bool = False  # the pre-roll full snapshot of this update revision was taken


@dataclass(frozen=True)
class Done:
    reason: str = REASON_UP_TO_DATE


@dataclass(frozen=True)
class Wait:
    reason: str
    message: str


@dataclass(frozen=True)
class Snapshot:
    reason: str = REASON_TAKING_SNAPSHOT


@dataclass(frozen=True)
class TransferLeadership:
    leader: MemberView
    target: MemberView
    reason: str = REASON_TRANSFERRING_LEADERSHIP


@dataclass(frozen=True)
class Delete:
    member: MemberView
    reason: str  # REASON_REPLACING_UNHEALTHY or REASON_REPLACING_FOLLOWER


Step = Done | Wait | Snapshot | TransferLeadership | Delete


def _names(members: list[MemberView]) -> str:
    return ", ".join(m.name for m in members)


def replacement_order(members: tuple[MemberView, ...]) -> list[MemberView]:
    """Out-of-date members in replacement order: unhealthy, healthy followers, the healthy leader."""
    outdated = [m for m in members if not m.updated]
    return sorted(outdated, key=lambda m: (m.healthy, m.healthy and m.leader, m.ordinal))


def decide(view: RollView) -> Step:
    members = view.members
    order = replacement_order(members)
    if not order:
        return Done()
    absent = [m for m in members if not m.present]
    if absent:
        return Wait(REASON_WAITING_FOR_MEMBER, f"waiting for {_names(absent)} to be re-created")
    back = [m for m in members if m.updated and not m.healthy]
    if back:
        return Wait(REASON_WAITING_FOR_MEMBER, f"waiting for updated {_names(back)} to be Ready")
    candidate = order[0]
    replicas, healthy = len(members), sum(m.healthy for m in members)
    if not safe_without(replicas, healthy, candidate.healthy):
        unhealthy = [m.name for m in members if not m.healthy]
        message = quorum_message(f"replacing {candidate.name}", replicas, healthy, candidate.healthy, unhealthy)
        return Wait(REASON_WAITING_FOR_QUORUM, message)
    if view.backup and not view.snapshot_taken:
        return Snapshot()
    if candidate.healthy and candidate.leader and replicas > 1:
        targets = [m for m in members if m.updated and m.healthy and not m.leader]
        if not targets:
            return Wait(
                REASON_WAITING_FOR_LEADER_TARGET,
                f"leader {candidate.name} is last; no updated healthy follower to take over leadership",
            )
        return TransferLeadership(candidate, targets[0])
    return Delete(candidate, REASON_REPLACING_FOLLOWER if candidate.healthy else REASON_REPLACING_UNHEALTHY)
