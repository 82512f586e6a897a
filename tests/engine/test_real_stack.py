"""The `local` stack for real: deployed by the real engine onto a real node with the
images built from the Dockerfiles, and used as docs/deploy.md tells users to, through
``kubectl port-forward`` to the provisioner Service.

Runs in file order on one deployment (``real_stack``, tests/conftest.py); the
last test destroys it. `make test-node` runs this module (marker ``node``).
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from infra.rbac import SERVICE_ACCOUNT_NAME
from infra.workload import APP_UID, ECHO_LABELS, PROVISIONER_NAME, PROVISIONER_READY_PATH
from scripts.controlplane import K8S
from scripts.controlplane.loopback import Endpoint
from scripts.controlplane.node import NODE_NAME
from tests.realstack import NAMESPACE, RealStack
from tests.support.polling import wait_for

pytestmark = pytest.mark.node


def pods(api: Endpoint, selector: str) -> list[dict[str, Any]]:
    path = f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}"
    return list(api.json("GET", path)["items"])


def is_ready(pod: dict[str, Any]) -> bool:
    return "deletionTimestamp" not in pod["metadata"] and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )


def echo_selector() -> str:
    return ",".join(f"{k}%3D{v}" for k, v in ECHO_LABELS.items())


def kubectl(real_stack: RealStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(K8S.binary("kubectl")), f"--kubeconfig={real_stack.cp.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_provisioner_runs_in_the_cluster_on_its_own_service_account(
    real_stack: RealStack,
) -> None:
    api = real_stack.cp.admin(timeout=10.0)
    deployment = api.json(
        "GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{PROVISIONER_NAME}"
    )
    spec = deployment["spec"]
    assert deployment["status"].get("readyReplicas") == spec["replicas"]
    running = [p for p in pods(api, f"app.kubernetes.io/name%3D{PROVISIONER_NAME}") if is_ready(p)]
    assert len(running) == spec["replicas"]
    for pod in running:
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert pod["spec"]["serviceAccountName"] == SERVICE_ACCOUNT_NAME
        container = pod["spec"]["containers"][0]
        # Ready through its own probes, on the API server it reaches from inside.
        assert container["readinessProbe"]["httpGet"]["path"] == PROVISIONER_READY_PATH
        # In-cluster config: no kubeconfig, no credential but the projected token.
        assert not [e for e in container.get("env", []) if e["name"] == "KUBECONFIG"]
        for volume in pod["spec"].get("volumes", []):
            assert "secret" not in volume, volume
            for source in volume.get("projected", {}).get("sources", []):
                assert set(source) <= {"serviceAccountToken", "configMap", "downwardAPI"}


def test_warm_echo_pods_are_ready_on_the_real_node(real_stack: RealStack) -> None:
    api = real_stack.cp.admin(timeout=10.0)
    warm = wait_for(
        "warm echo pods Ready", lambda: [p for p in pods(api, echo_selector()) if is_ready(p)], 120
    )
    for pod in warm:
        assert pod["spec"]["nodeName"] == NODE_NAME
        assert pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health"


def test_the_containers_run_as_restricted_as_declared(real_stack: RealStack) -> None:
    """From inside each running container: uid 10001, no capabilities, read-only root."""
    api = real_stack.cp.admin(timeout=10.0)
    check = (
        "import os\n"
        "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines())\n"
        "try:\n"
        "    open('/probe', 'w')\n"
        "    root = 'writable'\n"
        "except OSError as exc:\n"
        "    root = type(exc).__name__ + ':' + str(exc.errno)\n"
        "print(os.getuid(), os.getgid(), status['CapEff'].strip(), status['NoNewPrivs'].strip(),"
        " root)\n"
    )
    names = [p["metadata"]["name"] for p in pods(api, echo_selector()) if is_ready(p)][:1]
    names += [
        p["metadata"]["name"]
        for p in pods(api, f"app.kubernetes.io/name%3D{PROVISIONER_NAME}")
        if is_ready(p)
    ][:1]
    assert len(names) == 2
    for name in names:
        proc = kubectl(real_stack, "-n", NAMESPACE, "exec", name, "--", "python", "-c", check)
        assert proc.returncode == 0, proc.stderr
        uid, gid, cap_eff, no_new_privs, root = proc.stdout.split()
        assert (uid, gid) == (str(APP_UID), str(APP_UID)), name
        assert int(cap_eff, 16) == 0, name
        assert no_new_privs == "1", name
        assert root == "OSError:30", name  # EROFS: the root filesystem is read-only


def ping_until(ws: ClientConnection, want: int, timeout: float) -> list[dict[str, Any]]:
    """Ping every 100 ms until ``want`` pongs came back; returns them."""
    pongs: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    seq = 0
    while len(pongs) < want:
        assert time.monotonic() < deadline, f"{len(pongs)} of {want} pongs in {timeout}s"
        seq += 1
        ws.send(json.dumps({"type": "ping", "seq": seq, "t": 0}))
        until = time.monotonic() + 0.1
        while (left := until - time.monotonic()) > 0:
            try:
                message = json.loads(ws.recv(timeout=left))
            except TimeoutError:
                break
            if message.get("type") == "pong":
                pongs.append(message)
    return pongs


def ping_until_pod_changes(ws: ClientConnection, old_pod: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for pong in ping_until(ws, 1, deadline - time.monotonic()):
            if pong["pod"] != old_pod:
                return pong


# Synchronous on purpose: the e2e suite's Playwright (sync API) holds an event loop
# in this thread when both run in one session.
def test_a_session_through_the_port_forward(real_stack: RealStack) -> None:
    api = real_stack.cp.admin(timeout=10.0)
    base, origin = real_stack.forward.url, real_stack.forward.url
    with httpx.Client(base_url=base, timeout=15, headers={"Origin": origin}) as http:
        claim = http.post("/session")
        assert claim.status_code == 201, claim.text
        session = claim.json()
        sid, first_pod = session["session_id"], session["pod"]["name"]
        ws_url = real_stack.forward.ws_url + f"/session/{sid}/ws"
        with connect(ws_url, origin=Origin(origin), open_timeout=15) as ws:
            before = ping_until(ws, 5, 30)
            # The echo container answered: its pod name and node, from its environment.
            assert {(p["pod"], p["node"]) for p in before} == {(first_pod, NODE_NAME)}

            killed_at = time.monotonic()
            kill = http.delete(f"/session/{sid}/pod")
            assert kill.status_code == 202, kill.text
            # The container dies and the ReplicaSet's replacement takes over: pongs
            # resume through the same socket, from another pod.
            after = ping_until_pod_changes(ws, first_pod, 90)
            took = time.monotonic() - killed_at
            print(f"real node: kill -> first pong of the replacement {took:.2f}s")
            assert after["node"] == NODE_NAME

        state = http.get(f"/session/{sid}").json()
        assert state["pod"]["name"] == after["pod"] and state["replacements"] >= 1
        replacement = after["pod"]
        assert http.delete(f"/session/{sid}").status_code == 204

    def gone() -> bool:
        status, _ = api.raw("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{replacement}")
        return status == 404

    wait_for(f"pod {replacement} to go", gone, 60)


def test_destroy_leaves_nothing(real_stack: RealStack) -> None:
    api = real_stack.cp.admin(timeout=10.0)
    real_stack.local.stack.destroy()
    assert not (real_stack.local.stack.export_stack().deployment or {}).get("resources")

    def namespace_gone() -> bool:
        status, _ = api.raw("GET", f"/api/v1/namespaces/{NAMESPACE}")
        return status == 404

    wait_for(f"namespace {NAMESPACE} to go", namespace_gone, 120)
    # No pod of the app is left anywhere: the echo pods went with their namespace.
    left = api.json("GET", "/api/v1/pods?labelSelector=app.kubernetes.io%2Fpart-of%3Dpingpod")
    assert left["items"] == []
