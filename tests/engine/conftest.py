"""The real Pulumi engine (CLI and Kubernetes provider built from source) driving
the project's own program against the test control plane.

The engine binaries are built before the first test, outside the per-test
timeout; a failed build fails the tests, it never skips them. The control-plane
fixtures are in tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.controlplane import ControlPlane
from scripts.engine import bindir, ensure_built
from scripts.engine.stack import Engine
from tests.support.prebuild import build_before_tests, uses_fixture

ENGINE_TESTS = Path(__file__).resolve().parent
_build_error: str | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if ENGINE_TESTS in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.engine)


def pytest_collection_finish(session: pytest.Session) -> None:
    global _build_error
    if uses_fixture(session, "engine_bin"):
        _build_error = build_before_tests(session, "engine", ensure_built)


@pytest.fixture(scope="session")
def engine_bin() -> Iterator[Path]:
    """The directory with ``pulumi`` and ``pulumi-resource-kubernetes``, first on PATH
    for this session (the Automation API runs ``pulumi`` from PATH)."""
    if _build_error is not None:
        pytest.fail(f"building the Pulumi engine failed: {_build_error}", pytrace=False)
    path = bindir()
    saved = os.environ["PATH"]
    os.environ["PATH"] = f"{path}{os.pathsep}{saved}"
    yield path
    os.environ["PATH"] = saved


@pytest.fixture(scope="module")
def engine(
    engine_bin: Path, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Engine:
    """A file backend, a Pulumi home and a copy of the project's files, all temporary."""
    root = tmp_path_factory.mktemp("engine")
    engine = Engine(root=root, bin_dir=engine_bin, kubeconfig=control_plane.kubeconfig)
    engine.install_provider()
    return engine
