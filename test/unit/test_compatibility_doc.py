"""``docs/compatibility.md`` stays true: it lists every compatibility item A1–L70 once, in order, each with at
least one test or an honest "not covered by a test", and every test it names exists.

The item ids and their letters are etcd-druid's compatibility checklist (A: CRDs 1–9, B: reconcile triggers
10–17, ... L: operator configuration and CLI 65–70), fixed here so the document cannot silently lose an item.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "compatibility.md"

# Letter -> the item numbers it holds (numbers run on across letters, as in the checklist).
ITEM_RANGES = {
    "A": range(1, 10),
    "B": range(10, 18),
    "C": range(18, 28),
    "D": range(28, 37),
    "E": range(37, 47),
    "F": range(47, 49),
    "G": range(49, 54),
    "H": range(54, 57),
    "I": range(57, 61),
    "J": range(61, 62),
    "K": range(62, 65),
    "L": range(65, 71),
}
EXPECTED_IDS = [f"{letter}{n}" for letter, numbers in ITEM_RANGES.items() for n in numbers]

ITEM_HEADING = re.compile(r"^### ([A-L])(\d+)\s*$", re.MULTILINE)
TEST_REF = re.compile(r"`(test/[\w/.-]+\.py)::(\w+)`")
NOT_COVERED = "not covered by a test"


@cache
def sections() -> dict[str, str]:
    """Item id -> the text of its section (up to the next heading of any level)."""
    text = DOC.read_text()
    headings = list(ITEM_HEADING.finditer(text))
    out: dict[str, str] = {}
    for match in headings:
        body = text[match.end() :]
        end = re.search(r"^#{1,3} ", body, re.MULTILINE)
        item = match.group(1) + match.group(2)
        assert item not in out, f"item {item} listed twice"
        out[item] = body[: end.start()] if end else body
    return out


@cache
def defined_functions(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def test_expected_ids_are_a1_to_l70() -> None:
    assert len(EXPECTED_IDS) == 70 and EXPECTED_IDS[0] == "A1" and EXPECTED_IDS[-1] == "L70"
    assert [int(i[1:]) for i in EXPECTED_IDS] == list(range(1, 71))


def test_every_item_listed_once_in_order() -> None:
    listed = [m.group(1) + m.group(2) for m in ITEM_HEADING.finditer(DOC.read_text())]
    assert listed == EXPECTED_IDS


def test_each_item_names_a_test_or_says_it_has_none() -> None:
    bare = [item for item, body in sections().items() if not TEST_REF.search(body) and NOT_COVERED not in body.lower()]
    assert bare == [], f"items with neither a test nor '{NOT_COVERED}': {bare}"


def test_each_item_states_a_behaviour() -> None:
    """The first paragraph of every item is a statement, not a list of tests."""
    for item, body in sections().items():
        first = body.strip().split("\n\n")[0]
        assert first and not first.startswith("-"), item


@pytest.mark.parametrize("item", EXPECTED_IDS)
def test_named_tests_exist(item: str) -> None:
    body = sections().get(item)
    assert body is not None, f"{item} missing"
    missing = []
    for path, name in TEST_REF.findall(body):
        if not (ROOT / path).is_file():
            missing.append(f"{path} (no such file)")
        elif name not in defined_functions(path):
            missing.append(f"{path}::{name}")
    assert missing == [], f"{item} names tests that do not exist: {missing}"


def test_test_references_outside_item_sections_exist_too() -> None:
    """References in the introduction or elsewhere must not go stale either."""
    for path, name in TEST_REF.findall(DOC.read_text()):
        assert (ROOT / path).is_file(), path
        assert name in defined_functions(path), f"{path}::{name}"


def test_readme_links_the_document() -> None:
    assert "docs/compatibility.md" in (ROOT / "README.md").read_text()
