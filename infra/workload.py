"""What runs in the namespace, as plain data: labels, ports, the echo pod, the quota.

No Pulumi here: ``infra/app.py`` (with ``infra/provisioner.py`` and
``infra/policies.py``) turns this into Kubernetes objects, and the numbers
(requests, limits, the quota derived from them) sit side by side so a change
to one shows in the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from infra.keys import default_integer
from infra.session_nodes import session_toleration

if TYPE_CHECKING:
    from infra.settings import AppSettings

PART_OF: Final = {"app.kubernetes.io/part-of": "pingpod"}
ECHO_LABELS: Final = {"app.kubernetes.io/name": "echo", **PART_OF}
PROVISIONER_LABELS: Final = {"app.kubernetes.io/name": "provisioner", **PART_OF}
ECHO_SELECTOR: Final = {"app.kubernetes.io/name": "echo"}
PROVISIONER_SELECTOR: Final = {"app.kubernetes.io/name": "provisioner"}

ECHO_PORT: Final = 8080
PROVISIONER_PORT: Final = 8000
# The provisioner's named port: its probes, its Service and the ALB's target use it.
PROVISIONER_PORT_NAME: Final = "http"
# Its metrics listener (METRICS_PORT): the PodMonitor scrapes it; no Service, no ALB.
PROVISIONER_METRICS_PORT: Final = 9090
PROVISIONER_METRICS_PORT_NAME: Final = "metrics"
# The provisioner's liveness (also the ALB's health check) and readiness paths.
PROVISIONER_HEALTH_PATH: Final = "/health"
PROVISIONER_READY_PATH: Final = "/ready"
APP_UID: Final = 10001  # the images' numeric non-root user
# The node label echoArm64Only selects on.
ARCH_LABEL: Final = "kubernetes.io/arch"
# The taints the node lifecycle controller puts on a node that reports NotReady, or
# that has stopped reporting at all (node-monitor-grace-period, 50 s by default).
NODE_LOST_TAINTS: Final = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
# The echo pod template: a ConfigMap, mounted as TEMPLATE_DIR/TEMPLATE_FILE.
TEMPLATE_CONFIGMAP: Final = "echo-pod-template"
TEMPLATE_DIR: Final = "/etc/pingpod"
TEMPLATE_FILE: Final = "echo-pod.json"
# The provisioner's Deployment, Service, PodDisruptionBudget and container.
PROVISIONER_NAME: Final = "provisioner"
QUOTA_NAME: Final = "pingpod-pods"

# Per-container requests and limits (the quota below is computed from them).
# An idle echo server (Python, uvicorn, one WebSocket) uses ~25-30 MiB.
ECHO_CPU_REQUEST_M: Final = 10
# The limit only caps bursts (the request decides placement): an echo server needs
# ~250 ms of CPU to start, which at 100m took 2-3 s of CFS throttling before it
# listened, and 0.3 s at 1000m (docs/benchmarks-real-node.md).
ECHO_CPU_LIMIT_M: Final = 1000
ECHO_MEMORY_REQUEST_MI: Final = 32
ECHO_MEMORY_LIMIT_MI: Final = 64
PROVISIONER_CPU_REQUEST_M: Final = 100
PROVISIONER_CPU_LIMIT_M: Final = 1000
PROVISIONER_MEMORY_REQUEST_MI: Final = 128
PROVISIONER_MEMORY_LIMIT_MI: Final = 256
# Pods beyond sessions + pool the quota tolerates: a killed pod's replacement
# starts while the old one terminates, and cold creations overlap refills.
QUOTA_MARGIN_PODS: Final = 10


def restricted_pod_security() -> dict[str, Any]:
    """A pod's security context under the restricted Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security() -> dict[str, Any]:
    """A container's security context: restricted, read-only, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def node_lost_tolerations(seconds: int) -> list[dict[str, Any]]:
    """Stay on a NotReady or unreachable node for ``seconds``, then be evicted.

    Without these, the DefaultTolerationSeconds admission plugin gives every pod
    300 s: a visitor's pod on a lost node (a Spot interruption, a crashed kubelet)
    would wait five minutes before its ReplicaSet replaced it elsewhere.
    """
    return [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
        for key in NODE_LOST_TAINTS
    ]


def echo_pod_template(
    image: str,
    *,
    arm64_only: bool,
    node_selector: Iterable[tuple[str, str]] = (),
    node_lost_seconds: int = default_integer("nodeLostSeconds"),
    session_nodes: bool = False,
) -> dict[str, Any]:
    """The echo pod template (API shape) the provisioner wraps in ReplicaSets.

    The provisioner adds its own labels (``slot``, ``pool.state``, ``session``)
    and the ReplicaSet around it; everything about the pod itself is decided
    here, next to the NetworkPolicy and the quota that depend on it. Its
    ``nodeSelector`` is the stack's ``node_selector`` plus, with ``arm64_only``,
    ``kubernetes.io/arch: arm64``; with neither the field is left out. Its
    tolerations evict it ``node_lost_seconds`` after its node is lost; with
    ``session_nodes`` it also tolerates the session NodePool's taint
    (``infra/session_nodes.py``): it may run there, and nothing else may.
    """
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        # Nothing to drain: a killed echo pod should go at once.
        "terminationGracePeriodSeconds": 5,
        "securityContext": restricted_pod_security(),
        "containers": [_echo_container(image)],
        "tolerations": node_lost_tolerations(node_lost_seconds),
    }
    selector = dict(node_selector)
    if arm64_only:
        selector[ARCH_LABEL] = "arm64"
    if selector:
        spec["nodeSelector"] = selector
    if session_nodes:
        spec["tolerations"].append(session_toleration())
    return {"metadata": {"labels": dict(ECHO_LABELS)}, "spec": spec}


def _echo_container(image: str) -> dict[str, Any]:
    return {
        "name": "echo",
        "image": image,
        # The image is pinned by digest: what is on the node is right.
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "ws", "containerPort": ECHO_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "PORT", "value": str(ECHO_PORT)},
            {
                "name": "POD_NAME",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
            },
            {
                "name": "NODE_NAME",
                "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
            },
        ],
        # Probed every second: a pool member or a replacement is handed
        # out only once Ready, so readiness latency is user-visible.
        "readinessProbe": {
            "httpGet": {"path": "/health", "port": ECHO_PORT},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": ECHO_PORT},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {
                "cpu": f"{ECHO_CPU_REQUEST_M}m",
                "memory": f"{ECHO_MEMORY_REQUEST_MI}Mi",
            },
            "limits": {
                "cpu": f"{ECHO_CPU_LIMIT_M}m",
                "memory": f"{ECHO_MEMORY_LIMIT_MI}Mi",
            },
        },
        "securityContext": restricted_container_security(),
    }


def quota_hard(settings: AppSettings) -> dict[str, str]:
    """The namespace's ResourceQuota: the cost backstop whatever the provisioner does.

    Pods: every session, the warm pool, ``QUOTA_MARGIN_PODS`` in flight, the
    provisioner replicas (the HorizontalPodAutoscaler's maximum when it is on)
    and one surge replica of a rolling update. CPU and memory: the same pods at
    their requests and limits.
    """
    echo = settings.max_sessions + settings.pool_size + QUOTA_MARGIN_PODS
    prov = (settings.provisioner_max_replicas or settings.provisioner_replicas) + 1
    return {
        "pods": str(echo + prov),
        "requests.cpu": f"{echo * ECHO_CPU_REQUEST_M + prov * PROVISIONER_CPU_REQUEST_M}m",
        "requests.memory": (
            f"{echo * ECHO_MEMORY_REQUEST_MI + prov * PROVISIONER_MEMORY_REQUEST_MI}Mi"
        ),
        "limits.cpu": f"{echo * ECHO_CPU_LIMIT_M + prov * PROVISIONER_CPU_LIMIT_M}m",
        "limits.memory": f"{echo * ECHO_MEMORY_LIMIT_MI + prov * PROVISIONER_MEMORY_LIMIT_MI}Mi",
    }
