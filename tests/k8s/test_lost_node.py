"""A node lost under a live session, on the test control plane: the session's pod
is evicted once its toleration of the node's not-ready taint runs out, its
ReplicaSet starts a replacement on another node, the page hears that the pod is
being replaced because its node was lost, and the gateway's WebSocket follows
the session to the new pod.

The node is one of two this test makes for itself (kwok nodes with a label the
test's template selects and a taint only it tolerates), so the shared nodes
and every other test's pods stay as they are. kwok stops heartbeating a node
once it loses the `type=kwok` label; the test then reports the node NotReady
through its status, as a kubelet whose runtime failed would, and the node
lifecycle controller taints it within its monitor period (5 s). A node that
stops reporting altogether is marked Unknown only after the grace period
(50 s), which would make this test a minute longer for the same eviction.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from websockets.asyncio.client import connect

from scripts.controlplane.flags import KWOK_NODE_LABELS
from scripts.controlplane.startup import fake_node
from tests.support.polling import wait_for
from tests.support.wsclient import is_event, until

from .rig import BOTH_MODES, ECHO_TEMPLATE, NODE_LOST_SECONDS, Rig

pytestmark = [pytest.mark.k8s, BOTH_MODES]

OWN = "pingpod.dev/lost-node-test"  # label and taint of this test's nodes
# The node lifecycle controller's monitor period (5 s), the toleration, then the
# eviction, the replacement's scheduling and kwok making it Ready, with room for
# a busy machine. Kubernetes' own default toleration (300 s) is far beyond it.
BOUND = 5 + NODE_LOST_SECONDS + 25


def node_ready(core: client.CoreV1Api, name: str) -> bool:
    node = core.read_node(name).to_dict()
    ready = [c["status"] for c in node["status"]["conditions"] or [] if c["type"] == "Ready"]
    # The controller lifts its not-ready taint a moment after kwok reports Ready.
    taints = [t["key"] for t in node["spec"]["taints"] or [] if t["key"] != OWN]
    return ready == ["True"] and not taints


@pytest.fixture
def own_nodes(api: client.ApiClient, namespace: str) -> Iterator[list[str]]:
    """Two Ready kwok nodes only this test's pods may use; afterwards they and every
    pod on them are deleted (kwok no longer finishes the deletes on a node it let go)."""
    core = client.CoreV1Api(api)
    names = [f"{namespace}-a", f"{namespace}-b"]
    try:
        for name in names:
            node: Any = fake_node(name)
            node["metadata"]["labels"][OWN] = namespace
            node["spec"] = {"taints": [{"key": OWN, "value": namespace, "effect": "NoSchedule"}]}
            del node["status"]["nodeInfo"]  # kwok fills it in
            core.create_node(node)
        for name in names:
            wait_for(f"node {name} Ready", lambda n=name: node_ready(core, n), timeout=30)
        yield names
    finally:
        for name in names:
            pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={name}")
            for pod in pods.to_dict()["items"]:
                meta = pod["metadata"]
                unless_gone(
                    lambda m=meta: core.delete_namespaced_pod(
                        m["name"], m["namespace"], grace_period_seconds=0
                    )
                )
            unless_gone(lambda n=name: core.delete_node(n))


def unless_gone(delete: Callable[[], object]) -> None:
    try:
        delete()
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def pinned_template(namespace: str) -> dict[str, Any]:
    """The rig's echo template, on this test's nodes only."""
    template = copy.deepcopy(ECHO_TEMPLATE)
    spec = template["spec"]
    spec["nodeSelector"] = {OWN: namespace}
    spec["tolerations"] = [
        *spec["tolerations"],
        {"key": OWN, "operator": "Equal", "value": namespace, "effect": "NoSchedule"},
    ]
    return template


def lose(core: client.CoreV1Api, name: str) -> None:
    """kwok lets the node go; then its status says NotReady, as a kubelet would."""
    labels: Any = {"metadata": {"labels": dict.fromkeys(KWOK_NODE_LABELS)}}
    core.patch_node(name, labels)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ready = {
        "type": "Ready",
        "status": "False",
        "reason": "KubeletNotReady",
        "message": "container runtime is down",
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }
    # A strategic merge patch: the conditions are merged by type.
    status: Any = {"status": {"conditions": [ready]}}
    core.patch_node_status(name, status)
    # A heartbeat kwok sent just before it let go may land after that patch and say
    # Ready again; then only the 50 s grace period would mark the node. Say it again
    # until the node has read NotReady for a second.
    seen: list[float] = []

    def not_ready() -> bool:
        node = core.read_node(name).to_dict()
        conditions = node["status"]["conditions"] or []
        if [c["status"] for c in conditions if c["type"] == "Ready"] != ["False"]:
            seen.clear()
            core.patch_node_status(name, status)
            return False
        seen.append(time.monotonic())
        return seen[-1] - seen[0] >= 1.0

    wait_for("the node to read NotReady", not_ready, timeout=15, interval=0.2)


async def test_a_session_on_a_lost_node_moves_to_a_pod_on_another(
    rig: Rig, own_nodes: list[str], api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    rig.template.write_text(json.dumps(pinned_template(namespace)))
    server = rig.start(POOL_SIZE="1")
    server.wait_pool(1)
    async with server.aclient() as http:
        session = (await http.post("/session")).json()
        sid, pod, node = session["session_id"], session["pod"]["name"], session["pod"]["node"]
        assert node in own_nodes
        (other,) = (n for n in own_nodes if n != node)
        async with connect(server.ws + session["ws_url"]) as ws:
            hello = await until(ws, is_event("upstream_ready"))
            assert hello["pod"] == pod
            await until(ws, lambda f: f.get("type") == "pong")

            lose(core, node)
            frames: list[dict[str, Any]] = []

            def moved(frame: dict[str, Any]) -> bool:
                frames.append(frame)
                return is_event("upstream_ready")(frame) and frame["pod"] != pod

            ready = await until(ws, moved, timeout=BOUND)
            new = ready["pod"]
            events = [
                (f["event"], f["pod"], f.get("reason")) for f in frames if f["type"] == "event"
            ]
            # The page is told the pod is being replaced, and why; then where to.
            assert events.index(("pod_killed", pod, "node_lost")) < events.index(
                ("pod_replaced", new, None)
            )
            # Pongs flow again, now from the new pod. (kwok pods' data path is one
            # local echo server, which names itself: the gateway names the pod.)
            await until(ws, lambda f: f.get("type") == "pong")

        status = (await http.get(f"/session/{sid}")).json()
        assert status["pod"]["name"] == new
        assert status["pod"]["node"] == other
        assert status["pod"]["ready"] is True
        evicted = core.read_namespaced_pod(pod, namespace).to_dict()
        assert evicted["metadata"]["deletion_timestamp"] is not None
        reasons = {c["type"]: c["reason"] for c in evicted["status"]["conditions"]}
        assert reasons.get("DisruptionTarget") == "DeletionByTaintManager"
        assert (await http.delete(f"/session/{sid}")).status_code == 204

    # Only this test's node was tainted: the shared ones carry on.
    shared = core.list_node(label_selector=f"!{OWN}").to_dict()["items"]
    assert shared
    for node in shared:
        assert [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"] == [
            "True"
        ]
