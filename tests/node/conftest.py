"""One control plane with a real node for the tests here, started and stopped through
the command line (``up --real-node`` / ``down``), and the host as it was before."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.controlplane import ControlPlane
from scripts.controlplane.loopback import Endpoint

from .hoststate import HostState

ROOT = Path(__file__).resolve().parents[2]
UP_TIMEOUT = 900.0  # a cold cache builds the pause image first


@dataclass
class RealCluster:
    cp: ControlPlane
    before: HostState
    up_output: list[str]


def controlplane_cli(*args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.controlplane", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    before = HostState.read()
    state_dir = tmp_path_factory.mktemp("realnode")
    proc = controlplane_cli("up", "--real-node", "--dir", str(state_dir))
    if proc.returncode != 0:
        controlplane_cli("down", "--dir", str(state_dir), "--keep")
        pytest.fail(f"up --real-node failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    cp = ControlPlane.attach(state_dir)
    yield RealCluster(cp=cp, before=before, up_output=proc.stdout.splitlines())
    if cp.running():
        controlplane_cli("down", "--dir", str(state_dir), timeout=120)


@pytest.fixture(scope="module")
def api(real_cluster: RealCluster) -> Endpoint:
    """The API server with admin credentials, answering plain JSON."""
    return real_cluster.cp.admin(timeout=10.0)
