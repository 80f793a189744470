"""The test tree has no packages (no ``__init__.py``), so pytest imports each test module by its basename:
two modules with the same name in different folders break collection of the whole suite."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TEST_ROOT = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique() -> None:
    names = Counter(p.name for p in TEST_ROOT.rglob("test_*.py"))
    assert [name for name, n in names.items() if n > 1] == []
