"""Run the project's own servers as real processes, for tests and benchmarks.

`launch()` starts `python -m <module>` on 127.0.0.1 with its output in a log
file (a provisioner without its metrics listener unless `env` gives
`METRICS_PORT`) and returns once `ready_path` answers 200; `stop()` ends it with SIGTERM
(the graceful path, which also stops a provisioner's echo processes), then
SIGKILL if it outstays `timeout`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(log: Path, size: int = 3000) -> str:
    return log.read_text(errors="replace")[-size:] if log.exists() else "(no log)"


def launch(
    module: str,
    *,
    port: int,
    log: Path,
    env: Mapping[str, str] = {},
    ready_path: str = "/health",
    timeout: float = 30,
) -> subprocess.Popen[bytes]:
    """Start `python -m module` on `port` and wait until `ready_path` answers 200."""
    full_env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        # Servers started here run side by side (and beside other checkouts' tests):
        # no provisioner metrics listener on the shared default port unless asked.
        "METRICS_PORT": "0",
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}{ready_path}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{module} exited early:\n{log_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return proc
        if time.monotonic() > deadline:
            stop(proc)
            raise TimeoutError(
                f"{module}: {ready_path} not ready after {timeout:g} s:\n{log_tail(log)}"
            )
        time.sleep(0.05)


def stop(
    proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM, timeout: float = 15
) -> int:
    """Signal the process (if still running) and reap it; SIGKILL after `timeout`."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
