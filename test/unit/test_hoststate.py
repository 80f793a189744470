"""The host snapshot's pure comparisons, and the real-node preconditions (no host is touched here)."""

from __future__ import annotations

import os
import signal

import pytest

from druid.testing import demo, node
from druid.testing.hoststate import HostSnapshot, differences, new_entries, sysctl_changes


def test_sysctl_changes_names_what_differs_with_its_old_value() -> None:
    before = {"vm/overcommit_memory": "0", "kernel/panic": "0", "net/ipv4/ip_forward": "0"}
    after = {"vm/overcommit_memory": "1", "kernel/panic": "0", "net/ipv4/ip_forward": "1", "new/key": "1"}
    assert sysctl_changes(before, after) == {"vm/overcommit_memory": "0", "net/ipv4/ip_forward": "0"}
    assert sysctl_changes(before, before) == {}


def test_new_entries_are_sorted_and_only_the_new_ones() -> None:
    assert new_entries(["lo", "eth0"], ["druid0", "eth0", "lo", "cni0"]) == ["cni0", "druid0"]
    assert new_entries(["a"], []) == []


def test_differences_empty_when_equal_and_explicit_otherwise() -> None:
    before = HostSnapshot(sysctls={"kernel/panic": "0"}, links=["eth0", "lo"], nft_tables=[], netns=[])
    assert differences(before, before) == []
    after = HostSnapshot(
        sysctls={"kernel/panic": "10"}, links=["druid0", "eth0", "lo"], nft_tables=["ip filter"], netns=["cni-1"]
    )
    assert differences(before, after) == [
        "sysctl kernel/panic: 0 -> 10",
        "nft table added: ip filter",
        "link added: druid0",
        "netns added: cni-1",
    ]
    assert differences(after, before)[1:] == [
        "nft table removed: ip filter",
        "link removed: druid0",
        "netns removed: cni-1",
    ]


def test_not_root_cannot_run_a_node_and_the_demo_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = node.node_unsupported()
    assert reason is not None and "root" in reason
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert demo.main([]) == 2
    finally:
        signal.signal(signal.SIGTERM, previous)  # the demo installs its own handler
    err = capsys.readouterr().err
    assert "cannot run a real node" in err and "root" in err and "--simulated" in err
