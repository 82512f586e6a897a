"""A local Kubernetes control plane for tests, built from source and cached.

    from scripts.controlplane import ControlPlane, ensure_built

    ensure_built()
    with ControlPlane.start(state_dir) as cp:
        cp.kubeconfig  # admin kubeconfig path
"""

from __future__ import annotations

from .build import BuildError, ensure_built
from .cluster import ControlPlane, ControlPlaneError, default_dir, running
from .components import COMPONENTS, ETCD, K8S, KWOK, versions

__all__ = [
    "COMPONENTS",
    "ETCD",
    "K8S",
    "KWOK",
    "BuildError",
    "ControlPlane",
    "ControlPlaneError",
    "default_dir",
    "ensure_built",
    "running",
    "versions",
]
