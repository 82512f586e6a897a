"""Metrics on a port of their own (METRICS_PORT), never on the public one.

The load balancer routes the public port to the internet, so `/metrics` there
is the JSON 404 of any unknown path, page or no page. The metrics port serves
the scrape (with the pool gauges read at scrape time), stops with the app, is
off at 0, and a port that cannot be had stops the start with METRICS_PORT named.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.procinfo import open_fds
from scripts.servers import ROOT, free_port
from services.provisioner.errors import ConfigError
from services.provisioner.settings import Settings
from tests.support.servers import Server, StartProvisioner

PAGE = "<!doctype html><title>pingpod</title>"


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process listens on: its sockets' inodes in /proc/net/tcp{,6}.

    While the local backend starts an echo server it holds that server's listening
    socket for a moment (it binds it, then hands it to the child): read this once
    the pool is full, with nothing starting."""
    inodes = {t[len("socket:[") : -1] for t in open_fds(pid) if t.startswith("socket:[")}
    ports: set[int] = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize("page", [False, True], ids=["api-only", "with-page"])
def test_public_port_answers_404_for_metrics(
    start_provisioner: StartProvisioner, tmp_path: Path, page: bool
) -> None:
    env: dict[str, str] = {"POOL_SIZE": "1"}
    if page:  # the page's static mount catches every path the API does not have
        (tmp_path / "dist").mkdir()
        (tmp_path / "dist" / "index.html").write_text(PAGE)
        env["FRONTEND_DIR"] = str(tmp_path / "dist")
    server = start_provisioner(**env)
    assert server.metrics_port is not None
    for path in ("/metrics", "/metrics/", "/metrics?name[]=pingpod_claims_total"):
        public = httpx.get(server.url + path, timeout=10)
        assert public.status_code == 404, (path, public.text[:200])
        assert public.headers["content-type"] == "application/json"
        assert public.json()["error"] == "not_found"
        assert set(public.json()) == {"error", "detail"}
        assert "pingpod_" not in public.text
    # The same process serves the scrape on the other port.
    assert httpx.get(server.metrics_url, timeout=10).status_code == 200


def test_metrics_port_serves_the_scrape(provisioner: Server) -> None:
    response = httpx.get(provisioner.metrics_url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    # The pool gauges are read from the backend at scrape time: the warm pool is there.
    assert found[("pingpod_pool_pods", frozenset({("state", "warm")}))] >= 4
    assert found[("pingpod_pool_target", frozenset())] >= 4
    assert ("pingpod_sessions_active", frozenset()) in found
    # Only the scrape is served there: the API is not.
    other = httpx.get(f"http://127.0.0.1:{provisioner.metrics_port}/pool", timeout=10)
    assert other.status_code == 404
    assert other.json()["error"] == "not_found"


def test_metrics_port_zero_means_no_metrics_listener(
    start_provisioner: StartProvisioner,
) -> None:
    server = start_provisioner(METRICS_PORT="0", POOL_SIZE="1")
    server.wait_pool(1)
    assert listening_ports(server.proc.pid) == {server.port}
    assert httpx.get(server.url + "/metrics", timeout=10).status_code == 404


def test_metrics_listener_stops_with_the_app(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(POOL_SIZE="1")
    assert server.metrics_port is not None
    server.wait_pool(1)
    assert listening_ports(server.proc.pid) == {server.port, server.metrics_port}
    assert httpx.get(server.metrics_url, timeout=10).status_code == 200
    # A scrape connection left open does not hold the exit up.
    idle = socket.create_connection(("127.0.0.1", server.metrics_port))
    try:
        code = server.stop(signal.SIGTERM, timeout=30)
    finally:
        idle.close()
    assert code in (0, -signal.SIGTERM), code
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    for port in (server.port, server.metrics_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def _start_expecting_exit(env: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    """Run the provisioner to its exit (60 s at most): its status and its output."""
    full = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "POOL_SIZE": "0",
        "FRONTEND_DIR": str(tmp_path / "no-frontend"),
        "PYTHONPATH": str(ROOT),
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.provisioner"],
        cwd=ROOT,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"the provisioner kept running:\n{out.decode(errors='replace')[-2000:]}")
    return proc.returncode, out.decode(errors="replace")


def test_metrics_port_in_use_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, out = _start_expecting_exit({"METRICS_PORT": str(port)}, tmp_path)
    assert code != 0
    assert "configuration error: METRICS_PORT" in out, out[-2000:]
    assert str(port) in out
    assert "Traceback" not in out, out[-2000:]


def test_metrics_port_equal_to_port_is_a_configuration_error(tmp_path: Path) -> None:
    port = str(free_port())
    code, out = _start_expecting_exit({"PORT": port, "METRICS_PORT": port}, tmp_path)
    assert code != 0
    assert "configuration error: METRICS_PORT" in out, out[-2000:]


def test_metrics_port_setting() -> None:
    assert Settings.from_env({}).metrics_port == 9090
    assert Settings.from_env({"METRICS_PORT": "0"}).metrics_port == 0
    assert Settings.from_env({"METRICS_PORT": "9100"}).metrics_port == 9100
    for bad in ("-1", "65536", "8000", "metrics"):  # 8000: PORT's default
        with pytest.raises(ConfigError) as refused:
            Settings.from_env({"METRICS_PORT": bad})
        assert refused.value.key == "METRICS_PORT", bad
    # PORT 0 (any free port) never equals a metrics port.
    assert Settings.from_env({"PORT": "0", "METRICS_PORT": "0"}).metrics_port == 0
