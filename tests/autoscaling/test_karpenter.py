"""Nodes follow the sessions: the provisioner's pool on Karpenter-made nodes.

Real provisioner processes (Kubernetes backend, under the provisioner's Role) keep
a warm pool of echo pods that only this test's NodePool can take; Karpenter's kwok
provider creates the NodeClaims and Nodes and the control plane's kwok keeps them
Ready. Every wait polls for a state; nothing here times anything.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from kubernetes import client

from scripts.controlplane import ControlPlane
from scripts.controlplane import karpenter as kp
from tests.conftest import wait_for
from tests.k8s.rig import Rig
from tests.k8s.test_backend import ASSIGNED, is_ready, replicasets
from tests.services.helpers import new_session

from .conftest import POOL_CPU_LIMIT

NODE_WAIT = 120.0  # a node appears in seconds; slack for a loaded machine
DISRUPTION_WAIT = 240.0  # Karpenter looks every 10 s, and validates consolidation for 15 s
T4G_NAMES = {size.name for size in kp.T4G}


def pool_nodes(cp: ControlPlane, pool: str) -> dict[str, dict[str, Any]]:
    return {node["metadata"]["name"]: node for node in kp.nodes(cp, pool)}


def pool_pods(api: client.ApiClient, namespace: str) -> list[Any]:
    items: list[Any] = (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="slot").items
    )
    return [p for p in items if p.metadata.deletion_timestamp is None]


def node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def condition(obj: dict[str, Any], kind: str) -> bool:
    conditions = obj.get("status", {}).get("conditions") or []
    return any(c["type"] == kind and c["status"] == "True" for c in conditions)


def events(api: client.ApiClient, namespace: str, reason: str) -> list[Any]:
    selector = f"reason={reason}"
    return client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=selector).items


def test_pending_echo_pods_bring_nodes_that_take_them(
    rig: Rig, control_plane: ControlPlane, api: client.ApiClient, node_pool: str
) -> None:
    server = rig.start(POOL_SIZE="4", POOL_HEADROOM="0")
    wait_for("NodeClaims", lambda: kp.nodeclaims(control_plane, node_pool), timeout=NODE_WAIT)
    server.wait_pool(4, timeout=NODE_WAIT)

    nodes = pool_nodes(control_plane, node_pool)
    assert nodes
    for node in nodes.values():
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/arch"] == "arm64"
        assert labels["karpenter.sh/capacity-type"] in {"spot", "on-demand"}
        assert labels["node.kubernetes.io/instance-type"] in T4G_NAMES
        assert labels["type"] == "kwok"  # the control plane's kwok keeps it Ready
        assert node["spec"]["providerID"].startswith("kwok://")
        assert node_ready(node)
        taints = [t["key"] for t in node["spec"].get("taints") or []]
        assert taints == [kp.ECHO_TAINT["key"]]  # registered: Karpenter's own taint is gone
    for pod in pool_pods(api, rig.namespace):
        assert is_ready(pod)
        assert pod.spec.node_name in nodes
    claims = kp.nodeclaims(control_plane, node_pool)
    assert {c["status"]["nodeName"] for c in claims} == set(nodes)
    assert all(condition(c, "Initialized") for c in claims)


def test_nodes_emptied_when_sessions_end_are_removed(
    rig: Rig, control_plane: ControlPlane, api: client.ApiClient, node_pool: str
) -> None:
    server = rig.start(POOL_SIZE="3", POOL_HEADROOM="0")
    server.wait_pool(3, timeout=NODE_WAIT)
    sessions = [new_session(server) for _ in range(3)]
    server.wait_pool(3, timeout=NODE_WAIT)  # the refill did not fit: it brought a node
    peak = set(pool_nodes(control_plane, node_pool))
    assert len(peak) >= 2, peak

    for session in sessions:
        ended = httpx.delete(server.url + f"/session/{session['session_id']}")
        assert ended.status_code == 204

    def settled() -> bool:
        nodes = set(pool_nodes(control_plane, node_pool))
        holding = {p.spec.node_name for p in pool_pods(api, rig.namespace)}
        return bool(nodes) and nodes <= holding and len(nodes) < len(peak)

    wait_for("the emptied nodes to be removed", settled, timeout=DISRUPTION_WAIT, interval=1)
    server.wait_pool(3, timeout=NODE_WAIT)  # the warm pool is whole on what is left


@pytest.mark.timeout(600)
def test_a_node_holding_a_session_stays_until_the_session_ends(
    rig: Rig, control_plane: ControlPlane, api: client.ApiClient, node_pool: str
) -> None:
    server = rig.start(POOL_SIZE="3", POOL_HEADROOM="0")
    server.wait_pool(3, timeout=NODE_WAIT)
    session = new_session(server)
    pod, node = session["pod"]["name"], session["pod"]["node"]
    server.wait_pool(3, timeout=NODE_WAIT)
    others = set(pool_nodes(control_plane, node_pool)) - {node}
    assert others, "the refill should have needed a node of its own"

    # A new label in the template: every node is out of date (drifted) and is replaced,
    # except where a pod says not to disrupt it.
    revised = kp.node_pool(
        node_pool, cpu_limit=POOL_CPU_LIMIT, consolidate_after="5s", labels={"revision": "2"}
    )
    kp.apply(control_plane, [revised])

    def claim_of(name: str) -> dict[str, Any] | None:
        claims = kp.nodeclaims(control_plane, node_pool)
        return next((c for c in claims if c["status"].get("nodeName") == name), None)

    wait_for(
        "the session's node to be drifted",
        lambda: condition(claim_of(node) or {}, "Drifted"),
        timeout=NODE_WAIT,
    )

    def others_replaced() -> bool:
        nodes = pool_nodes(control_plane, node_pool)
        revised_nodes = [n for n in nodes.values() if n["metadata"]["labels"].get("revision")]
        return not others & set(nodes) and bool(revised_nodes)

    wait_for("the other nodes to be replaced", others_replaced, timeout=DISRUPTION_WAIT, interval=1)
    assert node in pool_nodes(control_plane, node_pool)
    held: Any = client.CoreV1Api(api).read_namespaced_pod(pod, rig.namespace)
    assert held.spec.node_name == node and is_ready(held)

    ended = httpx.delete(server.url + f"/session/{session['session_id']}")
    assert ended.status_code == 204
    wait_for(
        "the session's node to go once the session ended",
        lambda: node not in pool_nodes(control_plane, node_pool),
        timeout=DISRUPTION_WAIT,
        interval=1,
    )


def test_the_limit_caps_the_nodes_and_claims_past_it_are_shed(
    rig: Rig, control_plane: ControlPlane, api: client.ApiClient, node_pool: str
) -> None:
    # One t4g of two vCPUs: three echo pods.
    kp.apply(control_plane, [kp.node_pool(node_pool, cpu_limit=2, consolidate_after="5s")])
    server = rig.start(POOL_SIZE="2", POOL_HEADROOM="0")
    server.wait_pool(2, timeout=NODE_WAIT)

    sessions: list[dict[str, Any]] = []
    shed: httpx.Response | None = None
    for _ in range(10):
        reply = httpx.post(server.url + "/session", timeout=30)
        if reply.status_code != 201:
            shed = reply
            break
        sessions.append(reply.json())
    assert shed is not None, "every claim found a pod: the limit did not hold"
    assert shed.status_code == 429, shed.text
    assert shed.json()["error"] == "pool_empty"
    assert shed.headers["Retry-After"] == "1"

    # Karpenter wanted a node for the pending pods and was held to the limit.
    def refused() -> bool:
        failed = events(api, rig.namespace, "FailedScheduling")
        return any("exceed limits for nodepool" in (e.message or "") for e in failed)

    wait_for("Karpenter to refuse a node past the limit", refused, timeout=NODE_WAIT)
    nodes = pool_nodes(control_plane, node_pool)
    assert len(nodes) == 1
    assert {s["pod"]["node"] for s in sessions} <= set(nodes)
    # Shed, not queued: nothing is left of the refused claim.
    wait_for(
        "only the answered claims to hold ReplicaSets",
        lambda: len(replicasets(api, rig.namespace, ASSIGNED)) == len(sessions),
    )
