"""A local Kubernetes control plane for tests, built from source and cached.

``ensure_built()`` builds what the cache lacks; ``with ControlPlane.start(state_dir) as cp:``
runs a cluster whose admin kubeconfig is ``cp.kubeconfig``. The command line is
``python -m scripts.controlplane build|up|down|env|versions``.
"""

from __future__ import annotations

from .build import BuildError, ensure_built
from .cluster import ControlPlane, ControlPlaneError, default_dir
from .components import (
    AUTOSCALING_COMPONENTS,
    COMPONENTS,
    CONTAINERD,
    ETCD,
    K8S,
    KARPENTER,
    KWOK,
    NODE,
    NODE_COMPONENTS,
    versions,
)

__all__ = [
    "AUTOSCALING_COMPONENTS",
    "COMPONENTS",
    "CONTAINERD",
    "ETCD",
    "K8S",
    "KARPENTER",
    "KWOK",
    "NODE",
    "NODE_COMPONENTS",
    "BuildError",
    "ControlPlane",
    "ControlPlaneError",
    "default_dir",
    "ensure_built",
    "versions",
]
