"""Node autoscaling on the test control plane: Karpenter with its kwok provider.

``start(cp)`` runs it against a running :class:`~scripts.controlplane.ControlPlane`
(built by ``python -m scripts.controlplane build --autoscaling``); ``node_pool(...)``
and ``echo_scheduling(pool)`` shape a NodePool for echo pods and the pods that use
it, ``apply(cp, objects)`` applies them. See docs/autoscaling.md.
"""

from __future__ import annotations

from .instancetypes import T4G, Size
from .manifests import ECHO_TAINT, NODEPOOL_LABEL, echo_scheduling, node_pool
from .runner import Karpenter, apply, delete_node_pool, nodeclaims, nodes, start

__all__ = [
    "ECHO_TAINT",
    "NODEPOOL_LABEL",
    "T4G",
    "Karpenter",
    "Size",
    "apply",
    "delete_node_pool",
    "echo_scheduling",
    "node_pool",
    "nodeclaims",
    "nodes",
    "start",
]
