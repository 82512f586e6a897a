"""Build the control-plane binaries, and a real node's, from source into the
version-keyed cache (the mechanics are in ``scripts.gobuild``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from scripts import gobuild
from scripts.gobuild import BuildError, Component, Log

from .components import COMPONENTS, ETCD, K8S, KWOK, NODE_COMPONENTS

__all__ = ["BuildError", "binary", "cluster_binaries", "ensure_built"]

# What a running cluster runs, by component name (etcdctl and kubectl are for people).
CLUSTER_BINARIES = (
    ("etcd", ETCD),
    ("kube-apiserver", K8S),
    ("kube-controller-manager", K8S),
    ("kube-scheduler", K8S),
    ("kwok", KWOK),
)


def ensure_built(
    components: Iterable[Component] = (*COMPONENTS, *NODE_COMPONENTS),
    *,
    log: Log = print,
    force: bool = False,
) -> dict[str, dict[str, float]]:
    """Build what the cache lacks; returns the timings of what was built."""
    return gobuild.ensure_built(components, log=log, force=force)


def binary(comp: Component, name: str) -> Path:
    """Path to a cached binary, or BuildError telling how to build it."""
    return gobuild.binary(comp, name, "python -m scripts.controlplane build")


def cluster_binaries() -> dict[str, Path]:
    """Every binary a cluster runs, by name; BuildError for the first one missing."""
    return {name: binary(comp, name) for name, comp in CLUSTER_BINARIES}
