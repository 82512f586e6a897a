"""Marks every test here ``k8s``; the control-plane fixtures are in tests/conftest.py,
the provisioner rig's here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from scripts.controlplane import ControlPlane
from tests.support.servers import Server, start_server

from .rig import Rig, make_rig

K8S_TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Runs before `-m` deselection, so `-m k8s` / `-m "not k8s"` see the marker.
    for item in items:
        if K8S_TESTS in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.k8s)


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[Server]:
    """A real echo server: kwok pods have fake IPs, so the data path goes here."""
    server = start_server("services.echo", tmp_path, {"POD_NAME": "local-echo"})
    yield server
    server.stop()


@pytest.fixture
def rig(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    echo: Server,
) -> Iterator[Rig]:
    members = getattr(request, "param", "pods")  # POOL_MEMBERS, the default (rig.BOTH_MODES)
    rig = make_rig(control_plane, api, namespace, tmp_path, echo, members=members)
    yield rig
    rig.stop_all()
