"""agent-sandbox's controller against a running test control plane.

``install(cp)`` applies its CRDs (server-side: two are about 200 KB) and its
release's RBAC, bound to a ServiceAccount of its own; ``start(cp)`` runs the
controller with that ServiceAccount's token (never an admin credential: API
Priority and Fairness then treats it like any other controller) as one more
component of ``cp`` until its ``/readyz`` passes. The objects a user makes
(SandboxTemplate, SandboxWarmPool, SandboxClaim) are built by the functions below.

A claim is *bound* once ``status.sandbox.name`` is set, and *Ready* once its
``Ready`` condition is True; a claim served from the warm pool gets a Sandbox
named by the pool, a cold one a Sandbox named after the claim
(``extensions/controllers/sandboxclaim_controller.go``, ``createSandbox``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts import gobuild

from .apply import Obj, apply, install_crds, wait_component
from .cluster import ControlPlane
from .components import AGENT_SANDBOX
from .launch import free_ports
from .loopback import LOOPBACK, Endpoint

NAME = "agent-sandbox"
BINARY = "agent-sandbox-controller"
BUILD_HOW = "python -m scripts.controlplane build --peers"
NAMESPACE = "agent-sandbox-system"
SERVICE_ACCOUNT = "agent-sandbox-controller"
TOKEN_SECONDS = 24 * 3600
_RBAC = "rbac.authorization.k8s.io/v1"

CORE_GROUP = "agents.x-k8s.io/v1beta1"
EXTENSIONS_GROUP = "extensions.agents.x-k8s.io/v1beta1"


def crds() -> list[Obj]:
    return [
        yaml.safe_load(AGENT_SANDBOX.file(path).read_text())
        for path in AGENT_SANDBOX.files
        if "/crds/" in path
    ]


def cluster_roles() -> list[Obj]:
    """The release's ClusterRoles (``k8s/*rbac.generated.yaml``) as it ships them."""
    roles: list[Obj] = []
    for path in AGENT_SANDBOX.files:
        if path.endswith("rbac.generated.yaml"):
            docs = yaml.safe_load_all(AGENT_SANDBOX.file(path).read_text())
            roles += [doc for doc in docs if doc and doc["kind"] == "ClusterRole"]
    return roles


def identity() -> list[Obj]:
    """Its namespace and ServiceAccount, and a binding to each of its ClusterRoles."""
    subject = {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
    objects: list[Obj] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
        },
    ]
    for role in cluster_roles():
        name = role["metadata"]["name"]
        objects += [
            role,
            {
                "apiVersion": _RBAC,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [subject],
            },
        ]
    return objects


@dataclass
class AgentSandbox:
    """The running controller: its kubeconfig (its own ServiceAccount) and ports."""

    cp: ControlPlane
    kubeconfig: Path
    metrics_port: int
    health_port: int

    def ready(self) -> bool:
        return Endpoint(LOOPBACK, self.health_port, timeout=2.0).ok("/readyz")

    def pid(self) -> int:
        return next(ref.pid for ref in self.cp.procs if ref.name == NAME)

    def stop(self) -> None:
        self.cp.stop_component(NAME)


def install(cp: ControlPlane) -> None:
    """CRDs (once Established) and the controller's identity."""
    install_crds(cp, crds())
    apply(cp, identity())


def start(cp: ControlPlane, *, timeout: float = 120.0, flags: tuple[str, ...] = ()) -> AgentSandbox:
    """Run the controller (installed by :func:`install`) with its release's defaults,
    plus ``flags``; ControlPlaneError with its log's tail if it is not ready in time."""
    binary = gobuild.binary(AGENT_SANDBOX, BINARY, BUILD_HOW)
    token = cp.service_account_token(NAMESPACE, SERVICE_ACCOUNT, expiration_seconds=TOKEN_SECONDS)
    kubeconfig = cp.kubeconfig_for_token(token, NAMESPACE)
    metrics_port, health_port = free_ports(2)
    argv = [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--extensions",
        # One instance: no Lease to wait for (as the control plane's own controllers).
        "--leader-elect=false",
        f"--metrics-bind-address={LOOPBACK}:{metrics_port}",
        f"--health-probe-bind-address={LOOPBACK}:{health_port}",
        *flags,
    ]
    cp.run_component(NAME, argv, os.environ)
    controller = AgentSandbox(cp, kubeconfig, metrics_port, health_port)
    wait_component(cp, NAME, controller.ready, timeout)
    return controller


# -- what a user makes ----------------------------------------------------------------------


def template(namespace: str, name: str, pod_template: dict[str, Any]) -> Obj:
    return {
        "apiVersion": EXTENSIONS_GROUP,
        "kind": "SandboxTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podTemplate": pod_template},
    }


def warm_pool(namespace: str, name: str, template_name: str, replicas: int) -> Obj:
    return {
        "apiVersion": EXTENSIONS_GROUP,
        "kind": "SandboxWarmPool",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "sandboxTemplateRef": {"name": template_name}},
    }


def claim(namespace: str, name: str, pool: str) -> Obj:
    return {
        "apiVersion": EXTENSIONS_GROUP,
        "kind": "SandboxClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"warmPoolRef": {"name": pool}},
    }


def claims_path(namespace: str) -> str:
    return f"/apis/{EXTENSIONS_GROUP}/namespaces/{namespace}/sandboxclaims"


def warm_pool_path(namespace: str, name: str) -> str:
    return f"/apis/{EXTENSIONS_GROUP}/namespaces/{namespace}/sandboxwarmpools/{name}"


def bound_sandbox(obj: Obj) -> str:
    """The Sandbox a claim is bound to, or "" while it is not."""
    return str(((obj.get("status") or {}).get("sandbox") or {}).get("name") or "")


def is_ready(obj: Obj) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
