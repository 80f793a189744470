"""The druid command's basics."""

from __future__ import annotations

import subprocess
import sys

import pytest

from druid import __version__
from druid.cli.main import main


def test_version_subcommand_and_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"druid {__version__}", f"druid {__version__}"]


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "druid.cli.main", "version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"druid {__version__}"
