"""Which member to defragment next, and whether it is safe (the Defragmentation task's decisions; pure).

:func:`decide` takes a :class:`DefragView` — one :class:`Member` per ordinal ``0..replicas-1`` as the I/O
shell (:mod:`druid.controllers.opstask.defragmentation`) observed it, plus what the task's ``status.steps``
already record — and returns exactly one :class:`Action`:

- every member defragmented or skipped: :class:`Done`;
- the next member, in this order: the healthy followers (one whose defragmentation already began first,
  resuming; then by ordinal), then the leader. A member not healthy is never defragmented (it cannot be reached);
  while only such members remain, :class:`Wait` (``WaitingForMember``). Without a known leader,
  :class:`Wait` (``WaitingForLeader``): the order cannot be told;
- with a fragmentation threshold, a member whose free share of its database file
  (``(dbSize - dbSizeInUse) / dbSize``, in percent) is below it is :class:`Skip`-ped, without a move;
- a member is taken out (a defragmentation blocks its applies, so its clients wait) only while
  :func:`druid.api.quorum.safe_without` allows it — the others healthy form a quorum — else
  :class:`Wait` (``WaitingForQuorum``) naming the unhealthy members;
- the leader of a cluster of two or more is defragmented only after leadership moved to a healthy follower
  this task already handled (:class:`MoveLeader`); with none, :class:`Wait` (``WaitingForLeaderTarget``).
  The former leader is then a follower and is defragmented as one. A single member is defragmented in place;
- a member is defragmented in two steps so that the status shows it before the blocking call:
  :class:`Begin` (record the sizes before), then :class:`Defragment`.

"Healthy" is the caller's: the pod is Ready and the member answered its status call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from druid.api.quorum import (
    REASON_WAITING_FOR_LEADER_TARGET,
    REASON_WAITING_FOR_MEMBER,
    REASON_WAITING_FOR_QUORUM,
    quorum_message,
    safe_without,
)

REASON_WAITING_FOR_LEADER = "WaitingForLeader"


@dataclass(frozen=True)
class Member:
    name: str  # pod name
    ordinal: int
    healthy: bool
    leader: bool = False
    db_size: int = 0  # bytes allocated (0: unknown)
    db_size_in_use: int = 0  # bytes in use

    @property
    def fragmentation_percent(self) -> float:
        """The free share of the database file, in percent (0 when the size is unknown)."""
        if self.db_size <= 0:
            return 0.0
        return max(self.db_size - self.db_size_in_use, 0) * 100.0 / self.db_size


@dataclass(frozen=True)
class DefragView:
    members: tuple[Member, ...]  # one per ordinal 0..replicas-1
    handled: frozenset[str] = field(default_factory=frozenset)  # defragmented or skipped already
    begun: frozenset[str] = field(default_factory=frozenset)  # defragmentation recorded as begun
    threshold_percent: int | None = None


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Wait:
    reason: str
    message: str


@dataclass(frozen=True)
class Skip:
    member: Member


@dataclass(frozen=True)
class Begin:
    member: Member


@dataclass(frozen=True)
class Defragment:
    member: Member


@dataclass(frozen=True)
class MoveLeader:
    leader: Member
    target: Member


Action = Done | Wait | Skip | Begin | Defragment | MoveLeader


def _names(members: list[Member]) -> str:
    return ", ".join(m.name for m in members)


def defragmentation_order(view: DefragView) -> list[Member]:
    """Healthy members not yet handled, in the order they go: followers (one already begun first, then by
    ordinal), the leader last."""
    remaining = [m for m in view.members if m.healthy and m.name not in view.handled]
    return sorted(remaining, key=lambda m: (m.leader, m.name not in view.begun, m.ordinal))


def decide(view: DefragView) -> Action:
    members = view.members
    remaining = [m for m in members if m.name not in view.handled]
    if not remaining:
        return Done()
    order = defragmentation_order(view)
    if not order:
        return Wait(REASON_WAITING_FOR_MEMBER, f"waiting for {_names(remaining)} to be healthy")
    leaders = [m for m in members if m.leader and m.healthy]
    if not leaders:
        return Wait(REASON_WAITING_FOR_LEADER, "no healthy member reports a leader")
    candidate = order[0]
    threshold = view.threshold_percent
    if threshold is not None and candidate.fragmentation_percent < threshold and candidate.name not in view.begun:
        return Skip(candidate)
    replicas, healthy = len(members), sum(m.healthy for m in members)
    if not safe_without(replicas, healthy, candidate.healthy):
        unhealthy = [m.name for m in members if not m.healthy]
        message = quorum_message(f"defragmenting {candidate.name}", replicas, healthy, True, unhealthy)
        return Wait(REASON_WAITING_FOR_QUORUM, message)
    if candidate.leader and replicas > 1:
        targets = [m for m in members if m.healthy and not m.leader and m.name in view.handled]
        if not targets:
            return Wait(
                REASON_WAITING_FOR_LEADER_TARGET,
                f"leader {candidate.name} is last; no defragmented healthy follower to take over leadership",
            )
        return MoveLeader(candidate, targets[0])
    if candidate.name in view.begun:
        return Defragment(candidate)
    return Begin(candidate)
