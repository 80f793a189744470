"""Leader-aware defragmentation: the order, the quorum check, the leader move, resuming from steps (pure)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from druid.api.quorum import quorum
from druid.controllers.opstask import defragorder as order
from druid.controllers.opstask.defragmentation import agreed_leader, view_of
from druid.controllers.opstask.defragorder import DefragView, Member, decide
from druid.etcdgateway import MemberStatus

MB = 1 << 20


def members(n: int, leader: int = 0, unhealthy: tuple[int, ...] = ()) -> tuple[Member, ...]:
    return tuple(
        Member(f"e-{i}", i, healthy=i not in unhealthy, leader=i == leader, db_size=40 * MB, db_size_in_use=4 * MB)
        for i in range(n)
    )


def run(view: DefragView, max_steps: int = 50) -> tuple[list[str], list[tuple[str, str]]]:
    """Apply decisions as the handler would (a begun member is defragmented next, a move makes the target the
    leader) until Done or a Wait; the members defragmented or skipped in order, and the moves."""
    done: list[str] = []
    moves: list[tuple[str, str]] = []
    for _ in range(max_steps):
        action = decide(view)
        if isinstance(action, order.Done | order.Wait):
            return done, moves
        if isinstance(action, order.Begin):
            view = replace(view, begun=view.begun | {action.member.name})
        elif isinstance(action, order.Defragment | order.Skip):
            done.append(action.member.name)
            view = replace(view, handled=view.handled | {action.member.name}, begun=view.begun - {action.member.name})
        elif isinstance(action, order.MoveLeader):
            moves.append((action.leader.name, action.target.name))
            ms = tuple(replace(m, leader=m.name == action.target.name) for m in view.members)
            view = replace(view, members=ms)
    raise AssertionError("no end")


def test_three_members_followers_first_then_move_then_former_leader() -> None:
    done, moves = run(DefragView(members(3, leader=1)))
    assert done == ["e-0", "e-2", "e-1"]
    assert moves == [("e-1", "e-0")]


def test_begin_records_before_the_blocking_call_and_resumes_as_defragment() -> None:
    view = DefragView(members(3, leader=0))
    first = decide(view)
    assert isinstance(first, order.Begin) and first.member.name == "e-1"
    resumed = decide(replace(view, begun=frozenset({"e-1"})))
    assert isinstance(resumed, order.Defragment) and resumed.member.name == "e-1"


def test_a_begun_member_that_became_leader_waits_for_the_followers_and_a_move() -> None:
    view = DefragView(members(3, leader=2), begun=frozenset({"e-2"}))
    action = decide(view)
    assert isinstance(action, order.Begin) and action.member.name == "e-0"
    done, moves = run(view)
    assert done == ["e-0", "e-1", "e-2"] and moves == [("e-2", "e-0")]


def test_one_unhealthy_of_three_waits_for_quorum_and_names_it() -> None:
    action = decide(DefragView(members(3, leader=0, unhealthy=(2,))))
    assert isinstance(action, order.Wait) and action.reason == order.REASON_WAITING_FOR_QUORUM
    assert "e-2" in action.message and "quorum is 2" in action.message


def test_five_members_tolerate_one_unhealthy_but_do_not_defragment_it() -> None:
    view = DefragView(members(5, leader=0, unhealthy=(3,)))
    done, moves = run(view)
    assert done == ["e-1", "e-2", "e-4", "e-0"] and moves == [("e-0", "e-1")]
    assert decide(replace(view, handled=frozenset(done))) == order.Wait(
        order.REASON_WAITING_FOR_MEMBER, "waiting for e-3 to be healthy"
    )


def test_no_leader_waits() -> None:
    ms = tuple(replace(m, leader=False) for m in members(3))
    assert isinstance(decide(DefragView(ms)), order.Wait)
    assert decide(DefragView(ms)).reason == order.REASON_WAITING_FOR_LEADER  # type: ignore[union-attr]


def test_single_member_is_defragmented_in_place() -> None:
    done, moves = run(DefragView(members(1)))
    assert done == ["e-0"] and moves == []


def test_threshold_skips_members_below_it_and_needs_no_move_for_a_skipped_leader() -> None:
    ms = members(3, leader=0)
    ms = (replace(ms[0], db_size_in_use=39 * MB), ms[1], replace(ms[2], db_size_in_use=30 * MB))  # 2.5 %, 90 %, 25 %
    view = DefragView(ms, threshold_percent=50)
    skip = decide(view)
    assert isinstance(skip, order.Begin) and skip.member.name == "e-1"
    done, moves = run(view)
    assert done == ["e-1", "e-2", "e-0"] and moves == []
    assert isinstance(decide(replace(view, handled=frozenset({"e-1"}))), order.Skip)


def test_leader_waits_without_a_handled_healthy_follower() -> None:
    ms = members(2, leader=0)
    view = DefragView(ms, handled=frozenset({"e-1"}))
    assert isinstance(decide(view), order.MoveLeader)
    # the handled follower went unhealthy: two members cannot lose one — quorum wait comes first
    view = DefragView((ms[0], replace(ms[1], healthy=False)), handled=frozenset({"e-1"}))
    assert decide(view).reason == order.REASON_WAITING_FOR_QUORUM  # type: ignore[union-attr]


@given(
    n=st.integers(1, 7),
    leader=st.integers(0, 6),
    unhealthy=st.sets(st.integers(0, 6), max_size=3),
    handled=st.sets(st.integers(0, 6), max_size=7),
    begun=st.sets(st.integers(0, 6), max_size=2),
)
def test_properties_every_decision_is_safe(
    n: int, leader: int, unhealthy: set[int], handled: set[int], begun: set[int]
) -> None:
    ms = members(n, leader=leader % n, unhealthy=tuple(unhealthy))
    name = {i: f"e-{i}" for i in range(n)}
    view = DefragView(ms, frozenset(name[i] for i in handled if i < n), frozenset(name[i] for i in begun if i < n))
    action = decide(view)
    healthy = sum(m.healthy for m in ms)
    if isinstance(action, order.Begin | order.Defragment):
        m = action.member
        assert m.healthy and m.name not in view.handled
        assert n < 3 or healthy - 1 >= quorum(n), "a member taken out below quorum"
        assert n == 1 or not m.leader, "the leader of a cluster is never defragmented in place"
        assert isinstance(action, order.Defragment) == (m.name in view.begun)
    if isinstance(action, order.MoveLeader):
        assert action.leader.leader and action.target.name in view.handled and action.target.healthy
    if isinstance(action, order.Done):
        assert all(m.name in view.handled for m in ms)


def test_view_of_reads_leader_health_and_steps() -> None:
    ready = {"metadata": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    pods = {"e-0": ready, "e-1": ready, "e-2": {"metadata": {}, "status": {}}}
    statuses = {
        "e-0": MemberStatus(member_id=11, leader_id=22, db_size=100, db_size_in_use=10),
        "e-1": MemberStatus(member_id=22, leader_id=22, db_size=200, db_size_in_use=20),
    }
    steps = [
        {"name": "Defragment/e-0", "state": "Succeeded"},
        {"name": "MoveLeader/e-1", "state": "Succeeded"},
        {"name": "Defragment/e-2", "state": "Skipped"},
        {"name": "Defragment/e-1", "state": "InProgress"},
    ]
    view = view_of(pods, statuses, ["e-0", "e-1", "e-2"], steps, 10)
    assert [(m.name, m.healthy, m.leader, m.db_size) for m in view.members] == [
        ("e-0", True, False, 100),
        ("e-1", True, True, 200),
        ("e-2", False, False, 0),
    ]
    assert view.handled == {"e-0", "e-2"} and view.begun == {"e-1"} and view.threshold_percent == 10
    assert view.members[1].fragmentation_percent == 90.0


def test_the_leader_is_the_one_a_majority_of_the_answering_members_names() -> None:
    def status(member: int, leader: int) -> MemberStatus:
        return MemberStatus(member_id=member, leader_id=leader, db_size=1, db_size_in_use=1)

    assert agreed_leader([status(1, 2), status(2, 2), status(3, 1)]) == 2
    assert agreed_leader([status(1, 1), status(2, 2)]) == 0, "a split view right after a move: no leader yet"
    assert agreed_leader([status(1, 0), status(2, 0), status(3, 0)]) == 0
    assert agreed_leader([]) == 0
