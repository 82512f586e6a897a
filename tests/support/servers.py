"""Real servers for the service, Kubernetes and e2e tests: the provisioner and
echo servers run as subprocesses under uvicorn on ephemeral ports, and tests
talk to them over real sockets."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts.procinfo import descendants as descendants  # re-exported for the tests
from scripts.servers import free_port, launch


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int | None = None  # the provisioner's METRICS_PORT, when it has one

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """The Prometheus scrape, on the metrics port (never the public one)."""
        if self.metrics_port is None:
            raise ValueError("started without a metrics port (start_server(metrics=True))")
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def aclient(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=60)

    def wait_pool(self, warm: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(self.url + "/pool", timeout=2).json()["warm"] >= warm:
                return
            time.sleep(0.05)
        raise TimeoutError(f"pool never reached {warm} warm pods")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def start_server(
    module: str,
    tmp: Path,
    env: dict[str, str],
    ready: str = "/health",
    *,
    metrics: bool = False,
) -> Server:
    """Start `module` on a free port; `metrics`: a provisioner with a free METRICS_PORT."""
    port = free_port()
    log = tmp / f"{module.rsplit('.', 1)[-1]}-{port}.log"
    settings = {"FRONTEND_DIR": str(tmp / "no-frontend"), **env}
    if metrics and "METRICS_PORT" not in env:
        settings["METRICS_PORT"] = str(free_port())
    metrics_port = int(settings.get("METRICS_PORT", "0")) or None  # 0: no metrics listener
    proc = launch(module, port=port, log=log, env=settings, ready_path=ready)
    return Server(proc=proc, port=port, log=log, env=env, metrics_port=metrics_port)


StartProvisioner = Callable[..., Server]  # the `start_provisioner` fixture: env overrides


def new_session(server: Server) -> dict[str, Any]:
    response = httpx.post(server.url + "/session", timeout=30)
    assert response.status_code == 201, response.text
    return response.json()
