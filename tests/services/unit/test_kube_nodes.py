"""Nodes for the node strip from API-shaped objects, and the feed's bound on them."""

from __future__ import annotations

from typing import Any

from services.provisioner.backends.base import CapacityType, NodeBrief, NodeState
from services.provisioner.backends.kubernetes import nodes as kn
from services.provisioner.poolfeed import shown_nodes


def node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    ready: bool | None = True,
    created: str = "2026-12-04T10:00:00Z",
    deleting: bool = False,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": created, "labels": labels or {}}
    if deleting:
        metadata["deletionTimestamp"] = created
    conditions = [] if ready is None else [{"type": "Ready", "status": str(ready)}]
    return {
        "metadata": metadata,
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {"conditions": conditions},
    }


def pod_on(name: str, node_name: str | None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"nodeName": node_name} if node_name else {}}


def test_capacity_type_from_karpenter_or_an_eks_managed_group() -> None:
    assert kn.capacity_type(node("a", labels={kn.KARPENTER_CAPACITY_LABEL: "spot"})) == "spot"
    karpenter_od = node("b", labels={kn.KARPENTER_CAPACITY_LABEL: "on-demand"})
    assert kn.capacity_type(karpenter_od) == CapacityType.ON_DEMAND
    assert kn.capacity_type(node("c", labels={kn.EKS_CAPACITY_LABEL: "SPOT"})) == "spot"
    eks_od = node("d", labels={kn.EKS_CAPACITY_LABEL: "ON_DEMAND"})
    assert kn.capacity_type(eks_od) == CapacityType.ON_DEMAND
    assert kn.capacity_type(node("e")) == CapacityType.UNKNOWN
    reserved = node("f", labels={kn.KARPENTER_CAPACITY_LABEL: "reserved"})
    assert kn.capacity_type(reserved) == CapacityType.UNKNOWN


def test_node_state_ready_not_ready_and_leaving() -> None:
    assert kn.node_state(node("a")) == NodeState.READY
    assert kn.node_state(node("b", ready=False)) == NodeState.NOT_READY
    assert kn.node_state(node("c", ready=None)) == NodeState.NOT_READY  # not reported yet
    assert kn.node_state(node("d", deleting=True)) == NodeState.LEAVING
    assert kn.node_state(node("e", unschedulable=True)) == NodeState.LEAVING
    disrupted = [{"key": kn.DISRUPTED_TAINT, "effect": "NoSchedule"}]
    assert kn.node_state(node("f", taints=disrupted)) == NodeState.LEAVING
    other = [{"key": "dedicated", "effect": "NoSchedule"}]
    assert kn.node_state(node("g", taints=other)) == NodeState.READY


def test_briefs_count_the_pool_pods_bound_to_each_node() -> None:
    nodes = {
        "n1": node("n1", labels={kn.INSTANCE_TYPE_LABEL: "t4g.small"}),
        "n2": node("n2", created="2026-12-04T11:00:00Z"),
    }
    pods = {
        "p1": pod_on("p1", "n1"),
        "p2": pod_on("p2", "n1"),
        "p3": pod_on("p3", None),  # pending: on no node yet
        "p4": pod_on("p4", "elsewhere"),  # a node not (yet) in the cache: counted nowhere shown
    }
    got = {b.name: b for b in kn.briefs(nodes, pods)}
    assert got["n1"].pods == 2 and got["n1"].instance_type == "t4g.small"
    assert got["n2"].pods == 0 and got["n2"].instance_type == ""
    assert got["n2"].created - got["n1"].created == 3600


def brief(name: str, *, pods: int, created: float) -> NodeBrief:
    return NodeBrief(
        name=name,
        instance_type="t4g.small",
        capacity_type=CapacityType.SPOT,
        state=NodeState.READY,
        pods=pods,
        created=created,
    )


def test_the_strip_is_bounded_shows_busy_nodes_first_in_creation_order() -> None:
    nodes = [
        brief("empty-old", pods=0, created=1),
        brief("busy-new", pods=3, created=5),
        brief("busy-old", pods=1, created=2),
        brief("empty-new", pods=0, created=9),
    ]
    assert [n["name"] for n in shown_nodes(nodes, 2)] == ["busy-old", "busy-new"]
    assert [n["name"] for n in shown_nodes(nodes, 3)] == ["empty-old", "busy-old", "busy-new"]
    first = shown_nodes(nodes, 10)[0]
    assert first == {
        "name": "empty-old",
        "instance_type": "t4g.small",
        "capacity_type": "spot",
        "state": "ready",
        "pods": 0,
    }
