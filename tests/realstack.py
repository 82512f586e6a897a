"""The `local` stack deployed by the real engine onto a control plane with a real node,
reached through ``kubectl port-forward`` as a user would (``scripts.localstack``).
The ``real_stack`` fixture (tests/conftest.py) holds one per session, shared by
tests/e2e/test_real_pods.py and tests/engine/test_real_stack.py, which
`make test-node` runs in one session."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.controlplane import K8S, BuildError, ControlPlane, ControlPlaneError
from scripts.localstack import LocalStack, PortForward, deploy, port_forward
from scripts.servers import free_port

NAMESPACE = "pingpod-real"


@dataclass
class RealStack:
    local: LocalStack
    forward: PortForward

    @property
    def cp(self) -> ControlPlane:
        return self.local.cp


def _log(msg: str) -> None:
    print(f"real stack: {msg.rstrip()}")


@contextlib.contextmanager
def running(state: Path) -> Iterator[RealStack]:
    """Start the control plane with a real node, deploy, forward; undo it all after."""
    try:
        cp = ControlPlane.start(state / "cluster", real_node=True, keep_dir=True, timeout=600)
    except (BuildError, ControlPlaneError) as exc:
        pytest.fail(f"the control plane with a real node did not start: {exc}", pytrace=False)
    with cp:
        port = free_port()
        origins = [f"http://127.0.0.1:{port}"]
        local = deploy(cp, state / "engine", namespace=NAMESPACE, origins=origins, log=_log)
        try:
            with port_forward(
                K8S.binary("kubectl"),
                cp.kubeconfig,
                NAMESPACE,
                port=port,
                log=state / "port-forward.log",
            ) as forward:
                yield RealStack(local=local, forward=forward)
        finally:
            # The destroy test may have run already; a failed run must not leave the app.
            if (local.stack.export_stack().deployment or {}).get("resources"):
                local.stack.destroy(on_output=_log)
