"""Kubernetes object shapes of the session model (docs/architecture.md, "Session model").

Pure functions over API-shaped dicts: building a pool ReplicaSet and reading
the session state back from labels, annotations and pod conditions.
"""

from __future__ import annotations

import copy
import secrets
import string
from datetime import datetime
from typing import Any

Obj = dict[str, Any]

NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
STATE_LABEL = "pool.state"
SESSION_LABEL = "session"
SLOT_LABEL = "slot"
WARM = "warm"
ASSIGNED = "assigned"

_ANNOTATION = "pingpod.dev/"
CREATED_AT = _ANNOTATION + "created-at"
EXPIRES_AT = _ANNOTATION + "expires-at"
LAST_ACTIVE = _ANNOTATION + "last-active"
REPLACEMENTS = _ANNOTATION + "replacements"
END_REASON = _ANNOTATION + "end-reason"
RETIRED = _ANNOTATION + "retired-pods"
SESSION_ANNOTATIONS = (CREATED_AT, EXPIRES_AT, LAST_ACTIVE, REPLACEMENTS)
GATEWAY_DRAIN = _ANNOTATION + "gateway-drain"  # epoch seconds of a "kill my gateway" request
# Karpenter does not disrupt a node by choice (consolidation, drift) while a pod on it
# carries this: a session's pods carry it, warm pods do not (those may be moved).
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"

POOL_SELECTOR = f"{NAME_LABEL}=echo,{MANAGED_BY_LABEL}=pingpod-provisioner"
POD_SELECTOR = f"{NAME_LABEL}=echo,{SLOT_LABEL}"

# Lower-case letters and digits: a valid DNS-label suffix.
_ALPHABET = string.ascii_lowercase + string.digits


def slot_name() -> str:
    return "echo-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def pool_replicaset(template: Obj, *, name: str, session: Obj | None = None) -> Obj:
    """A ReplicaSet of one echo pod, warm, or assigned when `session` annotations are given."""
    pod_metadata = copy.deepcopy(template.get("metadata", {}))
    pod_labels = {**pod_metadata.get("labels", {}), NAME_LABEL: "echo", SLOT_LABEL: name}
    pod_metadata["labels"] = pod_labels
    labels = {
        NAME_LABEL: "echo",
        PART_OF_LABEL: "pingpod",
        MANAGED_BY_LABEL: "pingpod-provisioner",
        STATE_LABEL: WARM,
    }
    annotations: dict[str, str] = {}
    if session is not None:
        labels |= session["labels"]
        annotations |= session["annotations"]
        pod_annotations = {**pod_metadata.get("annotations", {}), DO_NOT_DISRUPT: "true"}
        pod_metadata["annotations"] = pod_annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {SLOT_LABEL: name}},
            "template": {"metadata": pod_metadata, "spec": copy.deepcopy(template["spec"])},
        },
    }


def warm_pod(template: Obj, *, name: str) -> Obj:
    """A bare warm pod (POOL_MEMBERS=pods): the pool's labels, `slot` its own name, so
    that a session's ReplicaSet of the same name adopts it at claim time."""
    metadata = copy.deepcopy(template.get("metadata", {}))
    metadata["labels"] = {
        **metadata.get("labels", {}),
        NAME_LABEL: "echo",
        PART_OF_LABEL: "pingpod",
        MANAGED_BY_LABEL: "pingpod-provisioner",
        STATE_LABEL: WARM,
        SLOT_LABEL: name,
    }
    metadata["name"] = name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": copy.deepcopy(template["spec"]),
    }


def is_pod(obj: Obj) -> bool:
    """A pod rather than a ReplicaSet (list items carry no `kind`)."""
    return "containers" in (obj.get("spec") or {})


def bare(pod: Obj) -> bool:
    """No controller owns the pod (yet): a warm member, or a claimed one not adopted."""
    return not any(ref.get("controller") for ref in pod["metadata"].get("ownerReferences") or [])


def assignment(key: str, *, now: float, expires_at: float) -> Obj:
    """Labels and annotations that turn a warm ReplicaSet into a session's."""
    return {
        "labels": {STATE_LABEL: ASSIGNED, SESSION_LABEL: key},
        "annotations": {
            CREATED_AT: f"{now:.3f}",
            EXPIRES_AT: f"{expires_at:.3f}",
            LAST_ACTIVE: f"{now:.3f}",
            REPLACEMENTS: "0",
        },
    }


def pod_protection(on: bool) -> Obj:
    """The ReplicaSet spec merge patch that makes the pods it starts from now on a
    session's (``DO_NOT_DISRUPT``), or warm again; its current pod is patched apart."""
    return {"template": {"metadata": {"annotations": {DO_NOT_DISRUPT: "true" if on else None}}}}


def release(reason: str, retired: list[str]) -> Obj:
    """The merge patch (None removes a key) that returns an assigned ReplicaSet to the pool.

    `retired` names the session's pods: deleted right after this patch, and never
    a member's pod again, even in a cache that sees this patch before their deletion.
    """
    return {
        "labels": {STATE_LABEL: WARM, SESSION_LABEL: None},
        "annotations": {
            **dict.fromkeys(SESSION_ANNOTATIONS),
            END_REASON: reason,
            RETIRED: ",".join(retired),
        },
    }


def retired_pods(rs: Obj) -> set[str]:
    return {name for name in annotation(rs, RETIRED).split(",") if name}


def is_label_value(value: str) -> bool:
    return 0 < len(value) <= 63 and all(c in _ALPHABET + "-_." for c in value)


def name_of(obj: Obj) -> str:
    return obj["metadata"]["name"]


def labels(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("labels") or {}


def annotation_float(obj: Obj, key: str, default: float = 0.0) -> float:
    raw = (obj["metadata"].get("annotations") or {}).get(key)
    try:
        return float(raw) if raw is not None else default
    except ValueError:
        return default


def annotation(obj: Obj, key: str) -> str:
    return (obj["metadata"].get("annotations") or {}).get(key, "")


def terminating(obj: Obj) -> bool:
    return obj["metadata"].get("deletionTimestamp") is not None


def pod_ready(pod: Obj) -> bool:
    if terminating(pod) or (pod.get("status") or {}).get("phase") != "Running":
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _condition(pod: Obj, kind: str) -> Obj:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), {})


def node_lost(pod: Obj) -> bool:
    """Whether the control plane says the pod's node is lost (NotReady or unreachable).

    Two marks, both written by controllers, never by the pod's kubelet:
    - Ready False while ContainersReady stays True: what the node lifecycle
      controller writes on every pod of a node that has not reported for its grace
      period (`MarkPodsNotReady`, pkg/controller/util/node/controller_utils.go). A
      kubelet derives Ready from ContainersReady, or from readiness gates with a
      reason of their own (`GeneratePodReadyCondition`, pkg/kubelet/status/generate.go);
    - the DisruptionTarget condition, reason DeletionByTaintManager, that the taint
      eviction controller writes just before it deletes a pod whose NoExecute
      toleration ran out (the node's not-ready or unreachable taint).
    """
    ready = _condition(pod, "Ready")
    marked = (
        (pod.get("status") or {}).get("phase") == "Running"
        and ready.get("status") == "False"
        and ready.get("reason") != "ReadinessGatesNotReady"
        and _condition(pod, "ContainersReady").get("status") == "True"
    )
    evicted = _condition(pod, "DisruptionTarget")
    return marked or (
        evicted.get("status") == "True" and evicted.get("reason") == "DeletionByTaintManager"
    )


def replicaset_ready(rs: Obj) -> bool:
    """Whether the ReplicaSet controller has recorded its pod as Ready (status is current)."""
    status = rs.get("status") or {}
    generation = rs["metadata"].get("generation", 0)
    return status.get("readyReplicas", 0) >= 1 and status.get("observedGeneration", 0) >= generation


def pod_started_at(pod: Obj) -> float:
    stamp = (pod.get("status") or {}).get("startTime") or pod["metadata"].get("creationTimestamp")
    if not stamp:
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def current_pod(pods: list[Obj]) -> Obj | None:
    """The pod a session follows: not terminating, Ready first, then the newest."""
    live = [p for p in pods if not terminating(p)]
    if not live:
        return None
    return max(live, key=lambda p: (pod_ready(p), p["metadata"].get("creationTimestamp", "")))
