"""Session expiry and process hygiene: nothing outlives what owns it."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from scripts.procinfo import descendants
from tests.support.polling import wait_for
from tests.support.servers import Server, StartProvisioner, alive, new_session
from tests.support.wsclient import close_code, is_event, next_json, until


def pod_pids(server: Server) -> dict[str, int]:
    """Echo-server processes of a provisioner, by pod name."""
    pods: dict[str, int] = {}
    for pid in descendants(server.proc.pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in environ:
            if entry.startswith(b"POD_NAME="):
                pods[entry.removeprefix(b"POD_NAME=").decode()] = pid
    return pods


def wait_dead(pid: int) -> None:
    wait_for(f"process {pid} to end", lambda: not alive(pid), timeout=10, interval=0.05)


def test_idle_session_ends_and_its_process_stops(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(SESSION_IDLE_TIMEOUT="1")
    session = new_session(server)
    pid = pod_pids(server)[session["pod"]["name"]]
    url = server.url + f"/session/{session['session_id']}"

    def ended() -> dict[str, str] | None:
        response = httpx.get(url)  # a read is no activity: it does not keep the session
        return response.json() if response.status_code == 404 else None

    assert "idle" in wait_for("the idle session to end", ended)["detail"]
    wait_dead(pid)


async def test_open_websocket_keeps_session_alive_until_lifetime(
    start_provisioner: StartProvisioner,
) -> None:
    server = start_provisioner(SESSION_IDLE_TIMEOUT="1", SESSION_MAX_LIFETIME="6")
    session = new_session(server)
    pid = pod_pids(server)[session["pod"]["name"]]
    async with connect(server.ws + session["ws_url"]) as ws:
        await until(ws, is_event("upstream_ready"))
        await asyncio.sleep(2.5)  # more than twice the idle timeout
        status = httpx.get(server.url + f"/session/{session['session_id']}")
        assert status.status_code == 200  # the open socket counts as activity
        assert status.json()["last_active"] > status.json()["created_at"] + 1
        await until(ws, is_event("session_expiring"), timeout=10)
        assert await close_code(ws) == 4408
    wait_dead(pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
async def test_stopping_the_provisioner_leaves_no_child(
    start_provisioner: StartProvisioner, sig: signal.Signals
) -> None:
    server = start_provisioner(POOL_SIZE="3")
    server.wait_pool(3)
    session = new_session(server)
    async with connect(server.ws + session["ws_url"]) as ws:
        await next_json(ws)
        children = descendants(server.proc.pid)
        assert len(pod_pids(server)) >= 3
        await asyncio.to_thread(server.stop, sig)
        if sig != signal.SIGKILL:
            # A graceful stop tells the browser the server is going away.
            assert await close_code(ws) == 1001
    for pid in children:
        wait_dead(pid)


def test_a_claim_whose_client_left_is_ended_at_once(start_provisioner: StartProvisioner) -> None:
    # A cold claim (no pool) takes a child process's start: time to leave before the answer.
    server = start_provisioner(POOL_SIZE="0", SESSION_IDLE_TIMEOUT="600")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /session HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
    wait_for("the claim to end as abandoned", lambda: "claim_abandoned" in server.log.read_text())
    pool = httpx.get(server.url + "/pool").json()
    assert pool["assigned"] == 0  # not held until the idle reaper, 600 s on
    wait_for("its pod's process to stop", lambda: not pod_pids(server))
