"""Properties of the ordered member update decision (druid/controllers/etcd/updateorder.py)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from druid.api.quorum import quorum
from druid.controllers.etcd import updateorder as order
from druid.controllers.etcd.updateorder import MemberView, RollView, decide


@st.composite
def views(draw: st.DrawFn, min_size: int = 1) -> RollView:
    n = draw(st.integers(min_value=min_size, max_value=7))
    leader = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=n - 1)))
    members = tuple(
        MemberView(
            name=f"etcd-{i}",
            ordinal=i,
            present=draw(st.booleans()),
            updated=draw(st.booleans()),
            healthy=draw(st.booleans()),
            leader=i == leader,
        )
        for i in range(n)
    )
    members = tuple(replace(m, healthy=m.healthy and m.present) for m in members)
    return RollView(members, backup=draw(st.booleans()), snapshot_taken=draw(st.booleans()))


def healthy(view: RollView) -> int:
    return sum(m.healthy for m in view.members)


@given(views())
def test_done_exactly_when_every_member_is_updated(view: RollView) -> None:
    assert isinstance(decide(view), order.Done) == all(m.updated for m in view.members)


@given(views(min_size=3))
def test_a_deletion_always_leaves_a_quorum_of_healthy_members(view: RollView) -> None:
    step = decide(view)
    if isinstance(step, order.Delete):
        left = healthy(view) - (1 if step.member.healthy else 0)
        assert left >= quorum(len(view.members))


@given(views())
def test_nothing_is_touched_while_a_member_is_absent_or_an_updated_one_not_ready(view: RollView) -> None:
    busy = any(not m.present for m in view.members) or any(m.updated and not m.healthy for m in view.members)
    if busy:
        assert isinstance(decide(view), order.Done | order.Wait)


@given(views())
def test_unhealthy_out_of_date_members_go_first(view: RollView) -> None:
    step = decide(view)
    if isinstance(step, order.Delete) and step.member.healthy:
        assert all(m.healthy for m in view.members if not m.updated)


@given(views(min_size=2))
def test_a_healthy_leader_is_never_deleted_and_only_goes_last(view: RollView) -> None:
    step = decide(view)
    if isinstance(step, order.Delete):
        assert not (step.member.leader and step.member.healthy)
    if isinstance(step, order.TransferLeadership):
        assert step.leader.leader and step.target.updated and step.target.healthy and not step.target.leader
        assert [m for m in view.members if not m.updated] == [step.leader]


@given(views())
def test_with_a_backup_store_the_snapshot_comes_before_any_change(view: RollView) -> None:
    step = decide(view)
    if view.backup and not view.snapshot_taken:
        assert not isinstance(step, order.Delete | order.TransferLeadership)
    if isinstance(step, order.Snapshot):
        assert view.backup and not view.snapshot_taken


def test_two_of_three_down_waits_for_quorum_and_names_them() -> None:
    members = tuple(
        MemberView(f"etcd-{i}", i, present=True, updated=False, healthy=i == 2, leader=i == 2) for i in range(3)
    )
    step = decide(RollView(members))
    assert isinstance(step, order.Wait) and step.reason == order.REASON_WAITING_FOR_QUORUM
    assert "etcd-0" in step.message and "etcd-1" in step.message


def simulate(view: RollView, limit: int = 50) -> tuple[list[str], list[str]]:
    """Run the decisions against a model where a replaced member comes back updated and healthy."""
    deleted: list[str] = []
    leaders: list[str] = []  # the leader at each deletion
    for _ in range(limit):
        step = decide(view)
        if isinstance(step, order.Done):
            return deleted, leaders
        assert not isinstance(step, order.Wait), step
        if isinstance(step, order.Snapshot):
            view = replace(view, snapshot_taken=True)
            continue
        if isinstance(step, order.TransferLeadership):
            members = tuple(replace(m, leader=m.name == step.target.name) for m in view.members)
        else:
            assert isinstance(step, order.Delete)
            assert healthy(view) - step.member.healthy >= quorum(len(view.members))
            deleted.append(step.member.name)
            leaders += [m.name for m in view.members if m.leader]
            members = tuple(
                replace(m, updated=True, healthy=True) if m.name == step.member.name else m for m in view.members
            )
        view = replace(view, members=members)
    raise AssertionError("no convergence")


@given(st.integers(min_value=3, max_value=7), st.data())
def test_a_roll_with_one_member_down_converges_unhealthy_first_leader_last(n: int, data: st.DataObject) -> None:
    down = data.draw(st.integers(min_value=0, max_value=n - 1))
    leader = data.draw(st.integers(min_value=0, max_value=n - 1).filter(lambda i: i != down))
    members = tuple(
        MemberView(f"etcd-{i}", i, present=True, updated=False, healthy=i != down, leader=i == leader) for i in range(n)
    )
    deleted, leaders = simulate(RollView(members, backup=True))
    assert sorted(deleted) == sorted(m.name for m in members)  # everyone replaced exactly once
    assert deleted[0] == f"etcd-{down}" and deleted[-1] == f"etcd-{leader}"
    assert f"etcd-{leader}" not in leaders[-1:]  # leadership had moved away before its replacement


def test_a_single_member_is_replaced_when_healthy() -> None:
    member = MemberView("etcd-0", 0, present=True, updated=False, healthy=True, leader=True)
    assert decide(RollView((member,))) == order.Delete(member, order.REASON_REPLACING_FOLLOWER)
    assert isinstance(decide(RollView((replace(member, healthy=False),))), order.Delete)
