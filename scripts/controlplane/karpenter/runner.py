"""Karpenter's kwok provider against a running test control plane.

``start(cp)`` installs its CRDs (server-side apply, from the copies the build keeps
beside the binary), gives it a ServiceAccount with its chart's RBAC, writes the
instance-type list, and runs it as one more component of ``cp`` (logged, in the
state file, stopped with the cluster) until its ``/readyz`` passes. Its metrics and
health ports are free loopback ports; it binds them on every interface (it has no
address setting).
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import yaml

from scripts import gobuild
from scripts.controlplane import objects
from scripts.controlplane.cluster import ControlPlane
from scripts.controlplane.components import KARPENTER
from scripts.controlplane.launch import ControlPlaneError, free_ports
from scripts.controlplane.loopback import LOOPBACK, Endpoint, HttpError
from scripts.controlplane.objects import Obj, apply

from . import instancetypes, manifests

NAME = "karpenter"
BINARY = "karpenter-kwok"
BUILD_HOW = "python -m scripts.controlplane build --autoscaling"
# Ample for a test or a benchmark; the kubeconfig holds the token as it was issued.
TOKEN_SECONDS = 24 * 3600


def patch_status(cp: ControlPlane, obj: Obj, status: Obj) -> None:
    path = f"{objects.path(obj)}/status"
    api = cp.admin()
    code, text = api.raw("PATCH", path, status, content_type="application/merge-patch+json")
    if code >= 300:
        raise HttpError(code, "PATCH", path, text)


def crds() -> list[Obj]:
    paths = [KARPENTER.file(path) for path in KARPENTER.files]
    return [yaml.safe_load(path.read_text()) for path in paths]


def _established(cp: ControlPlane, name: str) -> bool:
    crd = cp.admin().json("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@dataclass
class Karpenter:
    """The running controller: its kubeconfig (its own ServiceAccount) and ports."""

    cp: ControlPlane
    kubeconfig: Path
    metrics_port: int
    health_port: int

    @property
    def log(self) -> Path:
        return self.cp.log_dir / f"{NAME}.log"

    def running(self) -> bool:
        return self.cp.component_running(NAME)

    def ready(self) -> bool:
        return Endpoint(LOOPBACK, self.health_port, timeout=2.0).ok("/readyz")

    def metrics(self) -> str:
        conn = http.client.HTTPConnection(LOOPBACK, self.metrics_port, timeout=5.0)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode(errors="replace")
        finally:
            conn.close()

    def stop(self) -> None:
        self.cp.stop_component(NAME)


def install(cp: ControlPlane) -> None:
    """CRDs, its identity and the KWOKNodeClass (Ready), once the CRDs are established."""
    definitions = crds()
    apply(cp, definitions)
    deadline = time.monotonic() + 60
    for crd in definitions:
        while not _established(cp, crd["metadata"]["name"]):
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"CRD {crd['metadata']['name']} was never Established")
            time.sleep(0.1)
    apply(cp, manifests.identity())
    node_class = manifests.node_class()
    apply(cp, [node_class])
    patch_status(cp, node_class, manifests.node_class_ready())


def start(
    cp: ControlPlane,
    *,
    timeout: float = 120.0,
    sizes: tuple[instancetypes.Size, ...] = instancetypes.T4G,
    env: dict[str, str] | None = None,
) -> Karpenter:
    """Install and start Karpenter on ``cp``; ``env`` adds to or overrides its settings
    (``BATCH_IDLE_DURATION``, ``LOG_LEVEL``, ...). Raises ControlPlaneError if it does
    not become ready, with its log's tail."""
    binary = gobuild.binary(KARPENTER, BINARY, BUILD_HOW)
    install(cp)
    token = cp.service_account_token(
        manifests.NAMESPACE, manifests.SERVICE_ACCOUNT, expiration_seconds=TOKEN_SECONDS
    )
    kubeconfig = cp.kubeconfig_for_token(token, manifests.NAMESPACE)
    types_file = instancetypes.write(cp.dir / NAME / "instance-types.json", sizes)
    metrics_port, health_port = free_ports(2)
    settings = {
        "KUBECONFIG": str(kubeconfig),
        "DISABLE_LEADER_ELECTION": "true",
        "SYSTEM_NAMESPACE": manifests.NAMESPACE,
        "METRICS_PORT": str(metrics_port),
        "HEALTH_PROBE_PORT": str(health_port),
        "INSTANCE_TYPES_FILE_PATH": str(types_file),
        **(env or {}),
    }
    cp.run_component(NAME, [str(binary)], {**os.environ, **settings})
    karpenter = Karpenter(
        cp=cp, kubeconfig=kubeconfig, metrics_port=metrics_port, health_port=health_port
    )
    deadline = time.monotonic() + timeout
    while not karpenter.ready():
        if not karpenter.running() or time.monotonic() > deadline:
            state = "exited" if not karpenter.running() else f"not ready after {timeout:.0f}s"
            raise ControlPlaneError(f"karpenter {state}:\n{cp.log_tail(NAME)}")
        time.sleep(0.2)
    return karpenter


def nodeclaims(cp: ControlPlane, pool: str) -> list[Obj]:
    query = urllib.parse.urlencode({"labelSelector": f"{manifests.NODEPOOL_LABEL}={pool}"})
    return list(cp.admin().json("GET", f"{manifests.NODECLAIMS}?{query}")["items"])


def nodes(cp: ControlPlane, pool: str) -> list[Obj]:
    query = urllib.parse.urlencode({"labelSelector": f"{manifests.NODEPOOL_LABEL}={pool}"})
    return list(cp.admin().json("GET", f"/api/v1/nodes?{query}")["items"])


def delete_node_pool(cp: ControlPlane, pool: str) -> None:
    """Delete a NodePool; Karpenter then drains and removes its nodes."""
    status, text = cp.admin().raw("DELETE", f"{manifests.NODEPOOLS}/{pool}")
    if status not in (200, 202, 404):
        raise HttpError(status, "DELETE", pool, text)
