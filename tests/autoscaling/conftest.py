"""Node autoscaling: Karpenter's kwok provider on the test control plane.

Every test here is marked ``autoscaling``. Karpenter is built (with the control
plane, before the first test) and started once per session; each test gets a
NodePool of its own, which only its namespace's echo pods select, and the
provisioner rig of tests/k8s with an echo pod template that needs that NodePool.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from scripts.controlplane import AUTOSCALING_COMPONENTS, ControlPlane, ControlPlaneError
from scripts.controlplane import karpenter as kp
from scripts.gobuild import ensure_built
from tests.e2e.conftest import artifacts, browser, new_page, playwright
from tests.k8s.rig import Rig, make_rig
from tests.support.prebuild import build_before_tests, uses_fixture
from tests.support.servers import Server, start_server

HERE = Path(__file__).resolve().parent
# Half a t4g's two vCPUs less Karpenter's kube-reserved 100m holds three: a few pods
# make a node, and a handful make several.
ECHO_CPU = "500m"
# Room for a drifted node's replacement beside it; the limit test sets its own.
POOL_CPU_LIMIT = 8

_build_error: str | None = None
# The page in Chromium (test_node_strip.py) uses the e2e layer's fixtures.
__all__ = ["artifacts", "browser", "new_page", "playwright"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.autoscaling)


def pytest_collection_finish(session: pytest.Session) -> None:
    global _build_error
    if uses_fixture(session, "karpenter"):
        _build_error = build_before_tests(
            session, "karpenter", lambda log: ensure_built(AUTOSCALING_COMPONENTS, log=log)
        )


@pytest.fixture(scope="session")
def karpenter(control_plane: ControlPlane) -> Iterator[kp.Karpenter]:
    if _build_error is not None:
        pytest.fail(f"building Karpenter failed: {_build_error}", pytrace=False)
    try:
        running = kp.start(control_plane)
    except ControlPlaneError as exc:
        pytest.fail(f"Karpenter did not start: {exc}", pytrace=False)
    yield running
    running.stop()


@pytest.fixture
def node_pool(control_plane: ControlPlane, karpenter: kp.Karpenter) -> Iterator[str]:
    """A NodePool of this test's own, consolidating after 5 s; deleted afterwards, which
    removes its nodes."""
    name = f"echo-{uuid.uuid4().hex[:8]}"
    pool = kp.node_pool(name, cpu_limit=POOL_CPU_LIMIT, consolidate_after="5s")
    kp.apply(control_plane, [pool])
    yield name
    kp.delete_node_pool(control_plane, name)


def echo_template(pool: str) -> dict[str, Any]:
    """Echo pods that only ``pool``'s nodes take."""
    return {
        "metadata": {"labels": {"app.kubernetes.io/part-of": "pingpod"}},
        "spec": {
            "automountServiceAccountToken": False,
            **kp.echo_scheduling(pool),
            "containers": [
                {
                    "name": "echo",
                    "image": "registry.invalid/echo:1",
                    "ports": [{"containerPort": 8080}],
                    "resources": {"requests": {"cpu": ECHO_CPU, "memory": "64Mi"}},
                }
            ],
        },
    }


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[Server]:
    """A real echo server: kwok pods have fake IPs, so the data path goes here."""
    server = start_server("services.echo", tmp_path, {"POD_NAME": "local-echo"})
    yield server
    server.stop()


@pytest.fixture
def rig(
    control_plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    echo: Server,
    node_pool: str,
) -> Iterator[Rig]:
    rig = make_rig(control_plane, api, namespace, tmp_path, echo, echo_template(node_pool))
    yield rig
    rig.stop_all()
