"""Quorum of an etcd cluster, and whether one member may be taken out of service (pure; one home).

Used wherever druid takes members out one at a time: the ordered member updates
(:mod:`druid.controllers.etcd.updateorder`, a replacement) and the leader-aware defragmentation
(:mod:`druid.controllers.opstask.defragmentation`, a defragmentation blocks its member's applies).

- ``quorum(n)`` is ``n // 2 + 1``.
- :func:`safe_without`: may ``candidate`` be taken out, given how many of the ``replicas`` members are
  healthy? With three or more members only if the members healthy without it still form a quorum. A cluster
  of one or two can never keep quorum through taking a member out: a single member is always allowed (nothing
  else serves; a broken member must be replaceable), two members only while both are healthy (the unavoidable
  short outage, as with the StatefulSet's own RollingUpdate).
"""

from __future__ import annotations

# Why a one-at-a-time operation waits (condition / step reasons both operations use).
REASON_WAITING_FOR_MEMBER = "WaitingForMember"
REASON_WAITING_FOR_QUORUM = "WaitingForQuorum"
REASON_WAITING_FOR_LEADER_TARGET = "WaitingForLeaderTarget"


def quorum(replicas: int) -> int:
    return replicas // 2 + 1


def healthy_left(healthy: int, candidate_healthy: bool) -> int:
    """Healthy members once the candidate is out."""
    return healthy - (1 if candidate_healthy else 0)


def safe_without(replicas: int, healthy: int, candidate_healthy: bool) -> bool:
    """Whether the candidate (healthy or not) may be taken out of a cluster of ``replicas`` with ``healthy``
    healthy members (see the module docstring)."""
    if replicas == 1:
        return True
    if replicas == 2:
        return healthy == replicas
    return healthy_left(healthy, candidate_healthy) >= quorum(replicas)


def quorum_message(action: str, replicas: int, healthy: int, candidate_healthy: bool, unhealthy: list[str]) -> str:
    """Why ``action`` waits: how many members would be left healthy, the quorum, and who is unhealthy."""
    down = f"unhealthy: {', '.join(unhealthy)}" if unhealthy else "all members healthy"
    left = healthy_left(healthy, candidate_healthy)
    return f"{action} would leave {left} of {replicas} members healthy, quorum is {quorum(replicas)} ({down})"
