"""The one error a real node raises."""

from __future__ import annotations

from scripts.controlplane.launch import ControlPlaneError


class NodeError(ControlPlaneError):
    """A real-node step failed (host network, runtime, kubelet); the message says which."""
