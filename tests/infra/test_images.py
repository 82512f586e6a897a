"""The Dockerfiles, .dockerignore and runtime pins (no Docker engine here: read them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from infra.registry import DEFAULT_IMAGES
from infra.workload import APP_UID, ECHO_PORT, PROVISIONER_PORT
from tests.infra.harness import REPO

FINAL_BASE = "python:3.11-slim"
BUILD_TOOLS = re.compile(r"\b(apt-get|apk|gcc|g\+\+|make|build-essential|npm|node)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    lines: list[str] = field(default_factory=list)


def stages(path: Path) -> list[Stage]:
    """Dockerfile stages, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    result: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            parts = [p for p in line.split()[1:] if not p.startswith("--platform")]
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            result.append(Stage(parts[0], name))
        else:
            result[-1].lines.append(line)
    return result


def instructions(stage: Stage, keyword: str) -> list[str]:
    return [line[len(keyword) + 1 :] for line in stage.lines if line.startswith(f"{keyword} ")]


@pytest.fixture(params=[spec.dockerfile for spec in DEFAULT_IMAGES], ids=lambda p: p.split("/")[1])
def dockerfile(request: pytest.FixtureRequest) -> Path:
    return REPO / request.param


def test_multi_stage_slim_final_image(dockerfile: Path) -> None:
    found = stages(dockerfile)
    assert len(found) >= 2
    final = found[-1]
    assert final.base == FINAL_BASE and final.name is None
    for stage in found[:-1]:
        assert stage.name, "build stages are named"


def test_final_image_runs_as_numeric_non_root_user(dockerfile: Path) -> None:
    final = stages(dockerfile)[-1]
    users = instructions(final, "USER")
    assert users == [f"{APP_UID}:{APP_UID}"]
    assert final.lines[-1].startswith("CMD ")
    assert final.lines.index(f"USER {APP_UID}:{APP_UID}") > max(
        i for i, line in enumerate(final.lines) if line.startswith(("RUN ", "COPY "))
    )


def test_no_build_tools_in_the_final_image(dockerfile: Path) -> None:
    final = stages(dockerfile)[-1]
    for run in instructions(final, "RUN"):
        assert not BUILD_TOOLS.search(run), run
        assert "pip install" not in run, run
    # pip itself goes: the app's venv was filled in the build stage.
    assert any("pip uninstall" in run for run in instructions(final, "RUN"))
    for copy in instructions(final, "COPY"):
        assert copy.startswith("--from="), f"final stage copies from build stages only: {copy}"


def test_runtime_deps_from_the_pinned_file(dockerfile: Path) -> None:
    build = next(s for s in stages(dockerfile) if s.base == FINAL_BASE and s.name == "build")
    runs = " ".join(instructions(build, "RUN"))
    assert "-r /tmp/requirements-runtime.txt" in runs
    assert "--only-binary=:all:" in runs
    assert "pip --python /opt/venv/bin/python check" in runs


def test_copied_sources_exist_and_reach_the_context(dockerfile: Path) -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for stage in stages(dockerfile):
        for copy in instructions(stage, "COPY"):
            if copy.startswith("--from="):
                continue
            for source in copy.split()[:-1]:
                assert (REPO / source).exists(), source
                assert source.split("/")[0] in allowed, f"{source} is excluded by .dockerignore"


def test_echo_image() -> None:
    final = stages(REPO / "services/echo/Dockerfile")[-1]
    assert final.lines[-1] == 'CMD ["python", "-m", "services.echo"]'
    assert instructions(final, "EXPOSE") == [str(ECHO_PORT)]


def test_provisioner_image_serves_the_built_frontend() -> None:
    found = stages(REPO / "services/provisioner/Dockerfile")
    frontend = next(s for s in found if s.name == "frontend")
    assert frontend.base.startswith("node:20")
    runs = instructions(frontend, "RUN")
    assert any(r.startswith("npm ci") for r in runs)
    assert "npm run build" in runs
    final = found[-1]
    assert "--from=frontend /src/frontend/dist /app/frontend/dist" in instructions(final, "COPY")
    env = " ".join(instructions(final, "ENV"))
    for setting in ("FRONTEND_DIR=/app/frontend/dist", "HOST=0.0.0.0", f"PORT={PROVISIONER_PORT}"):
        assert setting in env
    assert final.lines[-1] == 'CMD ["python", "-m", "services.provisioner"]'
    assert instructions(final, "EXPOSE") == [str(PROVISIONER_PORT)]


def test_dockerignore_excludes_local_and_generated_files() -> None:
    lines = set((REPO / ".dockerignore").read_text().splitlines())
    assert "*" in lines  # an allow-list: nothing enters the context by default
    for entry in (".git", ".venv", "node_modules", "frontend/dist", "tests"):
        assert entry in lines or f"**/{entry}" in lines, entry


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _service_requirements() -> set[str]:
    """The names under requirements.in's "# services" heading."""
    names: set[str] = set()
    section = None
    for line in (REPO / "requirements.in").read_text().splitlines():
        if line.startswith("#"):
            section = line.lstrip("# ").strip()
        elif line.strip() and section == "services":
            names.add(re.sub(r"[-_.]+", "-", line.split("#")[0].strip()).lower())
    return names


def test_runtime_pins_match_the_development_set() -> None:
    runtime = _pins(REPO / "services/requirements-runtime.txt")
    development = _pins(REPO / "requirements.txt")
    direct = _service_requirements()
    assert {"starlette", "uvicorn", "websockets", "kubernetes"} <= direct
    assert direct <= set(runtime), f"missing from the images: {sorted(direct - set(runtime))}"
    for name, version in runtime.items():
        assert development.get(name) == version, name
    assert not {"pulumi", "pytest", "ruff", "pyright", "playwright"} & set(runtime)


def test_runtime_pins_are_closed_under_dependencies() -> None:
    """Every dependency of a pinned package is pinned too (read from the installed metadata)."""
    runtime = _pins(REPO / "services/requirements-runtime.txt")
    for name in runtime:
        for spec in metadata.distribution(name).requires or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            dep = re.sub(r"[-_.]+", "-", requirement.name).lower()
            assert dep in runtime, f"{name} needs {dep}, which the images would not pin"
