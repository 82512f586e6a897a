"""Fixtures shared by the suites that need a real Kubernetes control plane
(``tests/k8s``, ``tests/engine``).

The control plane is built from source on first use (cached under
~/.cache/pingpod), started once per session in a temporary directory, and
stopped at the end. A build or startup failure fails the tests; it never skips
them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from kubernetes import client

from scripts.controlplane import BuildError, ControlPlane, ControlPlaneError, ensure_built
from tests.support.prebuild import build_before_tests, uses_fixture

if TYPE_CHECKING:
    from tests.realstack import RealStack

_build_error: str | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    global _build_error
    if uses_fixture(session, "control_plane"):
        _build_error = build_before_tests(session, "controlplane", ensure_built)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    if _build_error is not None:
        pytest.fail(f"building the control plane failed: {_build_error}", pytrace=False)
    try:
        cp = ControlPlane.start(tmp_path_factory.mktemp("controlplane"), keep_dir=True)
    except (BuildError, ControlPlaneError) as exc:
        pytest.fail(f"the control plane did not start: {exc}", pytrace=False)
    with cp:
        yield cp


@pytest.fixture(scope="session")
def real_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealStack]:
    """The `local` stack on a control plane with a real node, through a port-forward."""
    # Imported here: the engine's SDK is heavy, and only the real-node suites need it.
    from tests.realstack import running

    with running(tmp_path_factory.mktemp("real-stack")) as stack:
        yield stack


@pytest.fixture
def api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with control_plane.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)
