"""The cluster's nodes as the page's node strip shows them, from the watch caches.

Pure functions over API-shaped dicts: a node's instance type and capacity type
from the labels node autoscaling writes, its state (Ready, not, or going), and
how many of the pool's pods it holds (the pod cache the driver keeps anyway,
grouped by `spec.nodeName`). Every node is shown, not only those with pool
pods: a node Karpenter adds appears before the pods it was added for land on
it, and that moment is what the strip is for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from services.provisioner.backends.base import CapacityType, NodeBrief, NodeState
from services.provisioner.backends.kubernetes import objects as ko
from services.provisioner.backends.kubernetes.podview import timestamp

Obj = dict[str, Any]

INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
KARPENTER_CAPACITY_LABEL = "karpenter.sh/capacity-type"  # spot | on-demand (| reserved)
EKS_CAPACITY_LABEL = "eks.amazonaws.com/capacityType"  # SPOT | ON_DEMAND (managed groups)
# Karpenter taints a node it has chosen to remove before it drains it
# (pkg/apis/v1/taints.go, DisruptedNoScheduleTaint).
DISRUPTED_TAINT = "karpenter.sh/disrupted"


def capacity_type(node: Obj) -> CapacityType:
    """Spot or on-demand, from Karpenter's label or else an EKS managed group's."""
    node_labels = ko.labels(node)
    value = node_labels.get(KARPENTER_CAPACITY_LABEL) or node_labels.get(EKS_CAPACITY_LABEL, "")
    value = value.lower().replace("_", "-")
    if value == "spot":
        return CapacityType.SPOT
    if value == "on-demand":
        return CapacityType.ON_DEMAND
    return CapacityType.UNKNOWN


def node_state(node: Obj) -> NodeState:
    spec = node.get("spec") or {}
    taints = spec.get("taints") or []
    if (
        ko.terminating(node)
        or spec.get("unschedulable")
        or any(t.get("key") == DISRUPTED_TAINT for t in taints)
    ):
        return NodeState.LEAVING
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return NodeState.READY if condition.get("status") == "True" else NodeState.NOT_READY
    return NodeState.NOT_READY  # no Ready condition yet: the kubelet has not reported


def pods_per_node(pods: Iterable[Obj]) -> Counter[str]:
    """The pool's pods by the node they are bound to (unscheduled ones count nowhere)."""
    return Counter(node for pod in pods if (node := (pod.get("spec") or {}).get("nodeName") or ""))


def briefs(nodes: Mapping[str, Obj], pods: Mapping[str, Obj]) -> list[NodeBrief]:
    """Every node with its state and its count of pool pods."""
    counts = pods_per_node(pods.values())
    return [
        NodeBrief(
            name=ko.name_of(node),
            instance_type=ko.labels(node).get(INSTANCE_TYPE_LABEL, ""),
            capacity_type=capacity_type(node),
            state=node_state(node),
            pods=counts[ko.name_of(node)],
            created=timestamp(node["metadata"].get("creationTimestamp")) or 0.0,
        )
        for node in nodes.values()
    ]
