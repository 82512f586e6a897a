"""The session model's Kubernetes object shapes, without a cluster."""

from __future__ import annotations

from typing import Any

from services.provisioner.backends.kubernetes import objects as ko

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app.kubernetes.io/part-of": "pingpod"}},
    "spec": {"containers": [{"name": "echo", "image": "echo@sha256:abc"}]},
}


def pod(name: str, *, ready: bool, created: str, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if deleting:
        metadata["deletionTimestamp"] = created
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {
        "metadata": metadata,
        "status": {"phase": "Running", "conditions": [condition], "startTime": created},
    }


def test_warm_replicaset_selects_only_its_own_pod() -> None:
    name = ko.slot_name()
    rs = ko.pool_replicaset(TEMPLATE, name=name)
    assert ko.is_label_value(name)
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["selector"] == {"matchLabels": {"slot": name}}
    assert rs["spec"]["template"]["metadata"]["labels"]["slot"] == name
    assert rs["metadata"]["labels"]["pool.state"] == "warm"
    assert "session" not in rs["metadata"]["labels"]
    # The template given is not modified (it is shared by every ReplicaSet).
    assert "slot" not in TEMPLATE["metadata"]["labels"]


def test_assignment_labels_and_annotations() -> None:
    assign = ko.assignment("ab" * 20, now=100.0, expires_at=1000.0)
    rs = ko.pool_replicaset(TEMPLATE, name="echo-x", session=assign)
    assert ko.labels(rs)["pool.state"] == "assigned"
    assert ko.labels(rs)["session"] == "ab" * 20
    assert ko.annotation_float(rs, ko.EXPIRES_AT) == 1000.0
    assert ko.annotation_float(rs, ko.LAST_ACTIVE) == 100.0
    assert ko.annotation_float(rs, "pingpod.dev/missing", 7.0) == 7.0


def test_current_pod_prefers_ready_then_newest_and_skips_terminating() -> None:
    old = pod("a", ready=True, created="2026-01-01T00:00:00Z")
    new = pod("b", ready=False, created="2026-01-01T00:01:00Z")
    dying = pod("c", ready=True, created="2026-01-01T00:02:00Z", deleting=True)
    assert ko.current_pod([old, new, dying]) is old
    assert ko.current_pod([new, dying]) is new
    assert ko.current_pod([dying]) is None
    assert not ko.pod_ready(dying)
    assert ko.pod_started_at(old) == 1767225600.0


def conditions(*pairs: tuple[str, str], phase: str = "Running") -> dict[str, Any]:
    """A pod with these (type, status) conditions; "status:reason" adds a reason."""
    listed = []
    for kind, value in pairs:
        status, _, reason = value.partition(":")
        listed.append({"type": kind, "status": status, **({"reason": reason} if reason else {})})
    return {"metadata": {"name": "p"}, "status": {"phase": phase, "conditions": listed}}


def test_node_lost_is_what_controllers_say_not_what_a_kubelet_says() -> None:
    # The node lifecycle controller flips Ready alone once the node stops reporting.
    assert ko.node_lost(conditions(("Ready", "False"), ("ContainersReady", "True")))
    # The taint eviction controller's mark, just before it deletes the pod.
    evicted = conditions(("Ready", "True"), ("DisruptionTarget", "True:DeletionByTaintManager"))
    assert ko.node_lost(evicted)
    # A kubelet sets both together: a container failing its readiness probe.
    assert not ko.node_lost(conditions(("Ready", "False"), ("ContainersReady", "False")))
    assert not ko.node_lost(
        conditions(("Ready", "False:ReadinessGatesNotReady"), ("ContainersReady", "True"))
    )
    assert not ko.node_lost(conditions(("Ready", "True"), ("ContainersReady", "True")))
    starting = conditions(("Ready", "False"), ("ContainersReady", "True"), phase="Pending")
    assert not ko.node_lost(starting)
    # Evicted through the Eviction API (a drain): a delete like any other.
    drained = conditions(("Ready", "True"), ("DisruptionTarget", "True:EvictionByEvictionAPI"))
    assert not ko.node_lost(drained)
    assert not ko.node_lost({"metadata": {"name": "p"}})
