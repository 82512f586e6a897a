"""Pool pods as the page sees them, from the Kubernetes watch caches' objects.

Pure functions over API-shaped dicts: each pool pod's state for the pool grid
(nothing of its session), and when a pod got through each start phase. The
API server keeps those times to the second, so the phases say so
(`resolution`); the page shows the durations as ranges (docs/architecture.md,
"Replacement anatomy").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.provisioner.backends.base import MemberState, PodPhases, PoolMember
from services.provisioner.backends.kubernetes import objects as ko

Obj = dict[str, Any]

_K8S_RESOLUTION = 1.0  # metav1.Time is serialized to the second


def timestamp(stamp: object) -> float | None:
    """An RFC 3339 API timestamp as epoch seconds (None if absent or malformed)."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _condition(pod: Obj, kind: str) -> float | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return timestamp(condition.get("lastTransitionTime"))
    return None


def _containers_started(pod: Obj) -> float | None:
    """When the last of the pod's containers started running (None until all have)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    starts = [
        timestamp(((s.get("state") or {}).get("running") or {}).get("startedAt")) for s in statuses
    ]
    if not starts or any(start is None for start in starts):
        return None
    return max(start for start in starts if start is not None)


def pod_phases(pod: Obj) -> PodPhases:
    """Created (metadata), scheduled (PodScheduled), containers started (their
    `running.startedAt`, else ContainersReady), Ready (the Ready condition)."""
    started = _containers_started(pod)
    return PodPhases(
        created=timestamp(pod["metadata"].get("creationTimestamp")) or 0.0,
        scheduled=_condition(pod, "PodScheduled"),
        started=started if started is not None else _condition(pod, "ContainersReady"),
        ready=_condition(pod, "Ready") if ko.pod_ready(pod) else None,
        resolution=_K8S_RESOLUTION,
    )


def member_state(pod: Obj, rs: Obj | None) -> MemberState:
    if ko.terminating(pod) or (rs is not None and ko.terminating(rs)):
        return MemberState.TERMINATING
    if ko.node_lost(pod):  # evicted once its toleration runs out: as good as gone
        return MemberState.TERMINATING
    if not ko.pod_ready(pod):
        # Without its ReplicaSet in the cache: a new pod whose ReplicaSet's watch
        # event has not arrived yet (the two caches are separate watches).
        return MemberState.STARTING
    if rs is None:
        # A bare pod (POOL_MEMBERS=pods) says its state itself: warm, or marked claimed
        # (a stray, its ReplicaSet gone before adopting it). Else its ReplicaSet is gone.
        state = ko.labels(pod).get(ko.STATE_LABEL) if ko.bare(pod) else None
        if state == ko.WARM:
            return MemberState.WARM
        return MemberState.ASSIGNED if state == ko.ASSIGNED else MemberState.TERMINATING
    if ko.labels(rs).get(ko.STATE_LABEL) == ko.ASSIGNED:
        return MemberState.ASSIGNED
    return MemberState.WARM


def members(replicasets: Mapping[str, Obj], pods: Mapping[str, Obj]) -> list[PoolMember]:
    """Every pod of the pool's ReplicaSets, with its state."""
    found: list[PoolMember] = []
    for pod in pods.values():
        slot = ko.labels(pod).get(ko.SLOT_LABEL, "")
        found.append(
            PoolMember(
                pod=ko.name_of(pod),
                state=member_state(pod, replicasets.get(slot)),
                created=timestamp(pod["metadata"].get("creationTimestamp")) or 0.0,
            )
        )
    return found
