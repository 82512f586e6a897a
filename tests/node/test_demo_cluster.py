"""``make demo-cluster``: the whole stack on a real node, the page on HOST:PORT through a
port-forward, until Ctrl-C; then nothing of it is left on the host."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from scripts.servers import free_port

from .conftest import ROOT
from .hoststate import HostState

pytestmark = pytest.mark.node

UP_WITHIN = 900.0  # builds are cached by then; the deploy and the pods' start remain


def test_make_demo_cluster_serves_the_page_and_cleans_up(tmp_path: Path) -> None:
    before = HostState.read()
    port = free_port()
    log = tmp_path / "demo-cluster.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "demo-cluster", "HOST=127.0.0.1", f"PORT={port}",
             f"DEMO_CLUSTER_DIR={tmp_path / 'state'}"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches make and the demo, as in a terminal
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + UP_WITHIN
        while f"serving {url}" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-5000:]
            assert time.monotonic() < deadline, log.read_text()[-5000:]
            time.sleep(1)
        with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as http:
            page = http.get("/")
            assert page.status_code == 200 and "<html" in page.text.lower()
            claim = http.post("/session")
            assert claim.status_code == 201, claim.text
            assert claim.json()["pod"]["node"] == "real-node-0"
            assert http.delete(f"/session/{claim.json()['session_id']}").status_code == 204
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=300)
    text = log.read_text()
    # make itself ends by the SIGINT once the demo has cleaned up and exited.
    assert code in (0, -signal.SIGINT), text[-5000:]
    assert "nothing is left on the host" in text
    assert before.differences(HostState.read()) == {}
