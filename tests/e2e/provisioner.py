"""The real provisioner (local backend) the e2e tests drive, as a subprocess serving
the built frontend; and the rule for a missing prerequisite (the build, Chromium):
skipped, unless PINGPOD_E2E_REQUIRED=1 (as make sets it), where it is an error."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts.servers import free_port, launch, log_tail, stop

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"


def require(ok: bool, why: str) -> None:
    """Skip the test for a missing prerequisite, or fail it where PINGPOD_E2E_REQUIRED=1."""
    if ok:
        return
    if os.environ.get("PINGPOD_E2E_REQUIRED") == "1":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


@dataclass
class Provisioner:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def pool(self) -> dict[str, int]:
        with self.client() as c:
            return c.get("/pool").json()

    def log_tail(self, n: int = 3000) -> str:
        return log_tail(self.log, n)


@contextlib.contextmanager
def run_provisioner(
    log_dir: Path, *, port: int | None = None, **overrides: str
) -> Iterator[Provisioner]:
    """Start `python -m services.provisioner` on `port` (default: a free one)
    and wait for /ready.

    Stopped with SIGTERM (the graceful path that also stops its echo
    processes), then SIGKILL if it does not exit in time.
    """
    port = port or free_port()
    # Every page opens a pool feed, and the tests' pages all come from 127.0.0.1.
    env = {"FRONTEND_DIR": str(DIST), "POOL_SIZE": "4", "FEED_PER_IP": "50", **overrides}
    log = log_dir / f"provisioner-{port}.log"
    proc = launch("services.provisioner", port=port, log=log, env=env, ready_path="/ready")
    server = Provisioner(proc=proc, url=f"http://127.0.0.1:{port}", port=port, log=log)
    try:
        # A full warm pool, so the first claim is the warm path the demo is about.
        deadline = time.monotonic() + 30
        while server.pool()["warm"] < int(env["POOL_SIZE"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        yield server
    finally:
        stop(proc)
