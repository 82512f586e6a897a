"""``kubectl port-forward`` to the provisioner Service: the path docs/deploy.md gives users
to reach the `local` stack, and the one the tests and ``make demo-cluster`` take."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.workload import PROVISIONER_NAME, PROVISIONER_PORT


class PortForwardError(RuntimeError):
    """kubectl port-forward did not start; the message holds what it printed."""


@dataclass(frozen=True)
class PortForward:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


def argv(kubectl: Path, kubeconfig: Path, namespace: str, host: str, port: int) -> list[str]:
    return [
        str(kubectl),
        f"--kubeconfig={kubeconfig}",
        f"--namespace={namespace}",
        "port-forward",
        f"--address={host}",
        f"svc/{PROVISIONER_NAME}",
        f"{port}:{PROVISIONER_PORT}",
    ]


@contextlib.contextmanager
def port_forward(
    kubectl: Path,
    kubeconfig: Path,
    namespace: str,
    *,
    log: Path,
    host: str = "127.0.0.1",
    port: int,
    timeout: float = 30.0,
) -> Iterator[PortForward]:
    """Forward ``host:port`` to the provisioner Service until the block ends; kubectl's
    output goes to ``log`` (it prints a line per connection, so it is never piped)."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv(kubectl, kubeconfig, namespace, host, port),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        # kubectl listens once it says "Forwarding from".
        while "Forwarding from" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise PortForwardError(
                    f"kubectl port-forward did not start:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.1)
        yield PortForward(host, port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
