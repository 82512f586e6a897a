"""A real node for the test control plane: kubelet, kube-proxy, containerd + runc, CNI.

Started by ``ControlPlane.start(real_node=True)`` (``python -m scripts.controlplane
up --real-node``) next to kwok's fake nodes, which kwok alone keeps managing.
Everything it changes on the host is recorded first and undone by
``ControlPlane.stop()`` (``down``); see ``realnode.py``.
"""

from __future__ import annotations

from pathlib import Path

from scripts.gobuild import Log

from .errors import NodeError
from .hostnet import BRIDGE, NODE_IP, NODE_SUBNET
from .kubelet import NODE_LABEL, NODE_NAME
from .realnode import NODE_DIR, RealNode
from .realnode import PROCESSES as NODE_PROCESSES
from .runtime import PAUSE_IMAGE


def ensure_pause_image(log: Log) -> Path:
    """The pause image's archive, built here on first use (nothing can be pulled)."""
    from scripts.images import ensure_images

    return ensure_images(log=log, names=("pause",))["pause"].archive


__all__ = [
    "BRIDGE",
    "NODE_DIR",
    "NODE_IP",
    "NODE_LABEL",
    "NODE_NAME",
    "NODE_PROCESSES",
    "NODE_SUBNET",
    "PAUSE_IMAGE",
    "NodeError",
    "RealNode",
    "ensure_pause_image",
]
