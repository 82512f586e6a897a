"""agent-sandbox, the peer warm-pool system of `bench.peers`, on the test control plane.

Every test here is marked ``peers``. The controller is built (with the control plane,
before the first test) and started once per session with its own ServiceAccount,
as the benchmark runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.controlplane import ControlPlane, ControlPlaneError
from scripts.controlplane import agentsandbox as sandbox
from scripts.controlplane.components import PEER_COMPONENTS
from scripts.gobuild import ensure_built
from tests.support.prebuild import build_before_tests, uses_fixture

HERE = Path(__file__).resolve().parent

_build_error: str | None = None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.peers)


def pytest_collection_finish(session: pytest.Session) -> None:
    global _build_error
    if uses_fixture(session, "agent_sandbox"):
        _build_error = build_before_tests(
            session, "agent-sandbox", lambda log: ensure_built(PEER_COMPONENTS, log=log)
        )


@pytest.fixture(scope="session")
def agent_sandbox(control_plane: ControlPlane) -> Iterator[sandbox.AgentSandbox]:
    if _build_error is not None:
        pytest.fail(f"building agent-sandbox failed: {_build_error}", pytrace=False)
    try:
        sandbox.install(control_plane)
        running = sandbox.start(control_plane)
    except ControlPlaneError as exc:
        pytest.fail(f"agent-sandbox did not start: {exc}", pytrace=False)
    yield running
    running.stop()
