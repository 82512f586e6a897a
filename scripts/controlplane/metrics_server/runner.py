"""metrics-server on a control plane with a real node: installed, waited for, removed.

``running(cp)`` builds (or finds cached) its image, imports it into the real node,
makes its serving certificate, applies its objects and waits until the API
server serves ``metrics.k8s.io`` with the node's figures; on the way out it
deletes every object it applied and waits for its pod to go.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from scripts.controlplane import apply, pki
from scripts.controlplane.cluster import ControlPlane
from scripts.controlplane.launch import ControlPlaneError
from scripts.controlplane.node import NODE_NAME
from scripts.gobuild import Log

from . import manifests

METRICS_API = f"/apis/{manifests.API_GROUP}/v1beta1"


@dataclass
class MetricsServer:
    """The running add-on on ``cp``: what it applied, and its figures through the API server."""

    cp: ControlPlane
    applied: list[apply.Obj]
    image: str

    def pod_metrics(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        """``metrics.k8s.io`` PodMetrics of ``namespace`` (what the HPA controller reads)."""
        query = f"?labelSelector={selector}" if selector else ""
        status, text = self.cp.admin().raw(
            "GET", f"{METRICS_API}/namespaces/{namespace}/pods{query}"
        )
        return list(json.loads(text)["items"]) if status == 200 else []

    def node_metrics(self) -> dict[str, Any] | None:
        status, text = self.cp.admin().raw("GET", f"{METRICS_API}/nodes/{NODE_NAME}")
        return json.loads(text) if status == 200 else None

    def pods(self) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}%3D{v}" for k, v in manifests.LABELS.items())
        path = f"/api/v1/namespaces/{manifests.NAMESPACE}/pods?labelSelector={selector}"
        return list(self.cp.admin().json("GET", path)["items"])

    def log_tail(self, lines: int = 20) -> str:
        """The pod's log, through the API server and the kubelet (for failures)."""
        out: list[str] = []
        for pod in self.pods():
            path = (
                f"/api/v1/namespaces/{manifests.NAMESPACE}/pods/{pod['metadata']['name']}/log"
                f"?tailLines={lines}"
            )
            out.append(self.cp.admin().raw("GET", path)[1])
        return "\n".join(out) or "(no pod)"


def _available(cp: ControlPlane) -> bool:
    path = f"/apis/apiregistration.k8s.io/v1/apiservices/{manifests.API_SERVICE}"
    status, text = cp.admin().raw("GET", path)
    if status != 200:
        return False
    conditions = json.loads(text).get("status", {}).get("conditions") or []
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def _wait(what: str, probe: Any, deadline: float, server: MetricsServer) -> None:
    while not probe():
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"metrics-server: {what} never came:\n{server.log_tail()}")
        time.sleep(0.5)


def install(cp: ControlPlane, *, log: Log, timeout: float = 180.0) -> MetricsServer:
    """Apply everything and wait until the node's figures are served; ControlPlaneError
    (with its log's tail) if they are not within ``timeout``."""
    from scripts.images import ensure_images

    if cp.node is None:
        raise ValueError("metrics-server needs the real node (start with real_node=True)")
    image = ensure_images(log=log, names=("metrics-server",))["metrics-server"]
    cp.node.import_image(image.archive)
    ca = pki.KeyPair(cp.pki_dir / "ca.crt", cp.pki_dir / "ca.key")
    serving = pki.serving_pair(
        cp.pki_dir / manifests.NAME, ca, manifests.NAME, manifests.SERVICE_DNS
    )
    applied = [
        *manifests.identity(),
        manifests.serving_secret(serving.cert.read_bytes(), serving.key.read_bytes()),
        manifests.deployment(image.ref),
        manifests.service(),
        manifests.api_service(ca.cert.read_bytes()),
    ]
    server = MetricsServer(cp=cp, applied=[], image=image.ref)
    deadline = time.monotonic() + timeout
    try:
        for obj in applied:
            apply.apply(cp, [obj])
            server.applied.append(obj)
        _wait(
            f"APIService {manifests.API_SERVICE} Available",
            lambda: _available(cp),
            deadline,
            server,
        )
        # Two scrapes make the first rate: about twice the resolution after the start.
        _wait("the node's figures", server.node_metrics, deadline, server)
    except BaseException:
        uninstall(server)
        raise
    return server


def uninstall(server: MetricsServer, timeout: float = 60.0) -> None:
    """Delete what was applied, the APIService first (the API server stops routing to
    it), then wait for the pod to go."""
    apply.delete(server.cp, reversed(server.applied))
    deadline = time.monotonic() + timeout
    while server.pods() and time.monotonic() < deadline:
        time.sleep(0.5)
    server.applied.clear()


@contextlib.contextmanager
def running(cp: ControlPlane, *, log: Log, timeout: float = 180.0) -> Iterator[MetricsServer]:
    server = install(cp, log=log, timeout=timeout)
    try:
        yield server
    finally:
        uninstall(server)
