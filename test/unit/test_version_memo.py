"""``VersionMemo``: a remembered value answers only for the resourceVersion it was derived from."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from druid.runtime.objects import ObjectKey
from druid.runtime.reader import VersionMemo

KEY = ObjectKey("ns", "store")


def test_hit_only_for_the_version_it_was_derived_from() -> None:
    memo: VersionMemo[str] = VersionMemo()
    assert memo.lookup(KEY, "1") == (False, None)
    memo.remember(KEY, "1", "/data")
    assert memo.lookup(KEY, "1") == (True, "/data")
    assert memo.lookup(KEY, "2") == (False, None)  # updated: read again
    assert memo.lookup(ObjectKey("other", "store"), "1") == (False, None)


def test_an_object_gone_from_the_cache_is_forgotten() -> None:
    memo: VersionMemo[str] = VersionMemo()
    memo.remember(KEY, "1", "/data")
    assert memo.lookup(KEY, None) == (False, None)
    assert len(memo) == 0 and memo.lookup(KEY, "1") == (False, None)


def test_nothing_is_remembered_without_a_version() -> None:
    memo: VersionMemo[str] = VersionMemo()
    memo.remember(KEY, None, "/data")
    memo.remember(KEY, "", "/data")
    assert len(memo) == 0


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(["1", "2", "3", None]), st.booleans())))
def test_a_hit_is_always_the_last_value_derived_from_that_version(ops: list[tuple[str, str | None, bool]]) -> None:
    """Property: whatever the sequence of reads and remembers, a hit returns what was last remembered for that
    key at exactly the version asked for, and was not forgotten since."""
    memo: VersionMemo[str] = VersionMemo()
    model: dict[str, tuple[str, str]] = {}
    for n, (name, rv, write) in enumerate(ops):
        key = ObjectKey("ns", name)
        if write:
            memo.remember(key, rv, f"v{n}")
            if rv:
                model[name] = (rv, f"v{n}")
        else:
            hit, value = memo.lookup(key, rv)
            expected = model.get(name)
            if rv is None:
                model.pop(name, None)
                assert not hit
            elif expected is not None and expected[0] == rv:
                assert hit and value == expected[1]
            else:
                assert not hit and value is None
