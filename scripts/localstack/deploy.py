"""The `local` stack deployed by the real engine onto a control plane with a real node:
the images built here and imported into the node, the app pinned to that node.

What ``make demo-cluster`` runs and what the tests drive; the stack is the
project's own ``__main__.py`` with ``Pulumi.local.yaml`` and these settings on top.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pulumi import automation as auto

from scripts.controlplane import ControlPlane
from scripts.controlplane.node import NODE_LABEL
from scripts.engine import bindir
from scripts.engine.stack import Engine
from scripts.images import Image, ensure_images

Log = Callable[[str], None]
STACK_LABEL = "real-node"


@dataclass
class LocalStack:
    """One deployed `local` stack and what it was deployed with."""

    cp: ControlPlane
    stack: auto.Stack
    namespace: str
    images: dict[str, Image]

    def outputs(self) -> dict[str, object]:
        return {key: out.value for key, out in self.stack.outputs().items()}


def stack_settings(
    cp: ControlPlane, images: dict[str, Image], *, namespace: str
) -> dict[str, auto.ConfigValue]:
    context = yaml.safe_load(cp.kubeconfig.read_text())["current-context"]
    settings = {
        "pingpod:kubeContext": context,
        "pingpod:namespace": namespace,
        "pingpod:echoImage": images["echo"].ref,
        "pingpod:provisionerImage": images["provisioner"].ref,
    }
    return {key: auto.ConfigValue(value) for key, value in settings.items()}


def path_settings(origins: list[str]) -> dict[str, auto.ConfigValue]:
    """Settings of list and object keys, set by path (``set_config(..., path=True)``):
    a JSON string would be refused as not of the key's type."""
    settings = {
        # The page is reached through the port-forward: its origin opens WebSockets.
        **{f"pingpod:allowedOrigins[{i}]": origin for i, origin in enumerate(origins)},
        # Real pods only: kwok's fake nodes would take them otherwise.
        f'pingpod:nodeSelector["{NODE_LABEL[0]}"]': NODE_LABEL[1],
    }
    return {key: auto.ConfigValue(value) for key, value in settings.items()}


def engine_on_path() -> Path:
    """The engine built here, first on PATH (the Automation API runs ``pulumi``)."""
    path = bindir()
    os.environ["PATH"] = f"{path}{os.pathsep}{os.environ['PATH']}"
    return path


def deploy(
    cp: ControlPlane,
    work_dir: Path,
    *,
    namespace: str,
    origins: list[str],
    log: Log,
    extra: dict[str, str] | None = None,
) -> LocalStack:
    """Build (or find cached) the images, import them into the real node, and ``up``."""
    if cp.node is None:
        raise ValueError("the control plane has no real node (start it with real_node=True)")
    images = ensure_images(log=log)
    for image in images.values():
        cp.node.import_image(image.archive)
    log("images imported into the node: " + ", ".join(i.ref for i in images.values()))
    engine = Engine(root=work_dir, bin_dir=engine_on_path(), kubeconfig=cp.kubeconfig)
    engine.install_provider()
    stack = engine.stack(STACK_LABEL)
    settings = stack_settings(cp, images, namespace=namespace)
    settings.update({key: auto.ConfigValue(value) for key, value in (extra or {}).items()})
    stack.set_all_config(settings)
    stack.set_all_config(path_settings(origins), path=True)
    stack.up(on_output=log)
    return LocalStack(cp=cp, stack=stack, namespace=namespace, images=images)


def destroy(local: LocalStack, log: Log) -> None:
    local.stack.destroy(on_output=log)
