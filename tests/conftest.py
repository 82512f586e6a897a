"""Fixtures shared by the suites that need a real Kubernetes control plane
(``tests/k8s``, ``tests/engine``).

The control plane is built from source on first use (cached under
~/.cache/pingpod), started once per session in a temporary directory, and
stopped at the end. A build or startup failure fails the tests; it never skips
them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import pytest
from kubernetes import client

from scripts.controlplane import BuildError, ControlPlane, ControlPlaneError, ensure_built

if TYPE_CHECKING:
    from tests.realstack import RealStack

T = TypeVar("T")

_build_error: str | None = None


def uses_fixture(session: pytest.Session, name: str) -> bool:
    return any(name in getattr(item, "fixturenames", ()) for item in session.items)


def build_before_tests(
    session: pytest.Session, prefix: str, ensure: Callable[..., object]
) -> str | None:
    """Run ``ensure(log=...)`` with its progress on the terminal; the error, if any.

    Called from ``pytest_collection_finish`` rather than a fixture: a cold build
    takes minutes and the per-test timeout would cut it short. The fixture that
    needs the build fails with the error; nothing is skipped.
    """
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def log(msg: str) -> None:
        if reporter is not None:
            reporter.write_line(f"{prefix}: {msg}")

    try:
        ensure(log=log)
    except BuildError as exc:
        return str(exc)
    return None


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


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
