"""A hung API server (SIGSTOP of kube-apiserver on the test control plane): the
provisioner's readiness drops, claims answer 503 within the claim's bound
instead of the API timeout, live sessions' pongs go on (the data path does not
touch the API), and after SIGCONT everything recovers with no orphan
ReplicaSet (services/provisioner/backends/kubernetes/health.py, claim.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client
from websockets.asyncio.client import connect

from services.provisioner.backends.kubernetes.objects import SESSION_LABEL
from services.provisioner.sessions import session_key
from tests.conftest import wait_for
from tests.services.helpers import is_event
from tests.services.wsutil import until

from .rig import Rig

pytestmark = pytest.mark.k8s

CLAIM_BOUND = 2.0  # seconds: the contract for a claim while the API hangs


@contextlib.contextmanager
def api_server_stopped(rig: Rig) -> Iterator[None]:
    (ref,) = (p for p in rig.cp.procs if p.name == "kube-apiserver")
    os.kill(ref.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(ref.pid, signal.SIGCONT)


def session_replicasets(rig: Rig) -> set[str]:
    """The session keys carried by ReplicaSets in the namespace (claimed members)."""
    with rig.cp.api_client() as admin:
        items = client.AppsV1Api(admin).list_namespaced_replica_set(rig.namespace).items
    labels = [(rs.metadata.labels or {}) if rs.metadata else {} for rs in items]
    return {found[SESSION_LABEL] for found in labels if SESSION_LABEL in found}


def status(url: str) -> int:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.HTTPError:
        return 0


async def test_a_hung_api_server_costs_a_prompt_503_not_the_live_sessions(rig: Rig) -> None:
    server = rig.start(POOL_SIZE="2", CLAIM_TIMEOUT="1.5")
    server.wait_pool(2)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        live = (await http.post("/session")).json()
        async with connect(server.ws + live["ws_url"]) as ws:
            await until(ws, is_event("upstream_ready"))
            await until(ws, lambda f: f.get("type") == "pong")

            with api_server_stopped(rig):
                # Before readiness notices, a claim's write waits no longer than the claim.
                started = time.monotonic()
                first = await http.post("/session", timeout=CLAIM_BOUND)
                took = time.monotonic() - started
                assert first.status_code == 503, first.text
                assert first.json()["error"] == "backend_unavailable"
                print(f"claim while the API hangs: 503 in {took:.2f} s")

                wait_for("readiness to drop", lambda: status(server.url + "/ready") == 503)
                shed = await http.post("/session", timeout=CLAIM_BOUND)
                assert shed.status_code == 503
                assert shed.json() == {
                    "error": "backend_unavailable",
                    "detail": "the Kubernetes API is not answering; try again shortly",
                }
                # The live session's pongs go on: the gateway relays to the pod directly.
                for _ in range(3):
                    await until(ws, lambda f: f.get("type") == "pong")

            wait_for("readiness to return", lambda: status(server.url + "/ready") == 200, 30)
            again = await http.post("/session")
            assert again.status_code == 201, again.text
            await until(ws, lambda f: f.get("type") == "pong")

        # No orphan: the only claimed ReplicaSets are the two sessions handed out.
        expected = {session_key(live["session_id"]), session_key(again.json()["session_id"])}
        wait_for("no orphan session", lambda: session_replicasets(rig) == expected, 30)
        assert "Traceback" not in server.log.read_text()
        for session in (live, again.json()):
            await http.delete(f"/session/{session['session_id']}")
