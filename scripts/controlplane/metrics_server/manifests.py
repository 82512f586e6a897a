"""The objects metrics-server runs with on the test control plane, as API-shaped dicts.

Those of its release's ``manifests/base/`` (``sigs.k8s.io/metrics-server`` v0.9.0),
with what differs here:

- **Its serving certificate** is made here and signed by the cluster's CA, and the
  APIService carries that CA (``caBundle``): the API server verifies whom it
  proxies to, instead of the release's ``insecureSkipTLSVerify``.
- **The kubelet's certificate is verified** with the same CA (the one in every
  pod's service-account volume), not skipped (``--kubelet-insecure-tls``).
- **Only the real node is scraped** (``--node-selector``): kwok's nodes have no
  kubelet to answer.
- **A 10 s resolution**, the shortest it takes (the release's is 15 s), and so a
  kubelet request timeout below it (5 s; the default, 10 s, is refused).
- **No aggregated reader role**: the users' ``kubectl top`` role; the HPA
  controller has its own grant in the bootstrap policy.
"""

from __future__ import annotations

import base64
from typing import Final

from scripts.controlplane.apply import Obj
from scripts.controlplane.node import NODE_LABEL

NAMESPACE: Final = "kube-system"
NAME: Final = "metrics-server"
API_GROUP: Final = "metrics.k8s.io"
API_SERVICE: Final = f"v1beta1.{API_GROUP}"
# The names the API server's proxy checks the serving certificate against.
SERVICE_DNS: Final = (f"{NAME}.{NAMESPACE}.svc", f"{NAME}.{NAMESPACE}.svc.cluster.local")
LABELS: Final = {"k8s-app": NAME}
PORT: Final = 10250  # in the pod's own network namespace: no clash with the kubelet's
METRIC_RESOLUTION: Final = "10s"
KUBELET_TIMEOUT: Final = "5s"
CERT_DIR: Final = "/etc/metrics-server/tls"
SA_CA: Final = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
_RBAC: Final = "rbac.authorization.k8s.io/v1"


def _meta(name: str, *, namespaced: bool = True) -> Obj:
    meta: Obj = {"name": name, "labels": dict(LABELS)}
    if namespaced:
        meta["namespace"] = NAMESPACE
    return meta


def _binding(kind: str, name: str, role_kind: str, role: str) -> Obj:
    """A (Cluster)RoleBinding of its ServiceAccount to ``role``."""
    return {
        "apiVersion": _RBAC,
        "kind": kind,
        "metadata": _meta(name, namespaced=kind == "RoleBinding"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
    }


def identity() -> list[Obj]:
    """Its ServiceAccount and the release's RBAC (``manifests/base/rbac.yaml``)."""
    role = f"system:{NAME}"
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME)},
        {
            "apiVersion": _RBAC,
            "kind": "ClusterRole",
            "metadata": _meta(role, namespaced=False),
            "rules": [
                # What a kubelet's /metrics/resource is authorised as (Webhook mode).
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {
                    "apiGroups": [""],
                    "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        _binding("ClusterRoleBinding", role, "ClusterRole", role),
        # An aggregated API server authenticates the API server's proxy by the
        # requestheader CA the API server publishes in a ConfigMap of kube-system...
        _binding(
            "RoleBinding",
            f"{NAME}-auth-reader",
            "Role",
            "extension-apiserver-authentication-reader",
        ),
        # ...and asks the API server who may do what (TokenReview, SubjectAccessReview).
        _binding(
            "ClusterRoleBinding",
            f"{NAME}:system:auth-delegator",
            "ClusterRole",
            "system:auth-delegator",
        ),
    ]


def serving_secret(cert_pem: bytes, key_pem: bytes) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(f"{NAME}-tls"),
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(cert_pem).decode(),
            "tls.key": base64.b64encode(key_pem).decode(),
        },
    }


def args() -> list[str]:
    return [
        f"--secure-port={PORT}",
        f"--tls-cert-file={CERT_DIR}/tls.crt",
        f"--tls-private-key-file={CERT_DIR}/tls.key",
        # The node's bridge address and the kubelet's port as the Node reports them.
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        f"--kubelet-certificate-authority={SA_CA}",
        f"--node-selector={NODE_LABEL[0]}={NODE_LABEL[1]}",
        f"--metric-resolution={METRIC_RESOLUTION}",
        # It must be shorter than the resolution (the default, 10 s, is not).
        f"--kubelet-request-timeout={KUBELET_TIMEOUT}",
    ]


def deployment(image: str) -> Obj:
    """One replica on the real node, restricted as the release runs it."""
    probe = {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}}
    container = {
        "name": NAME,
        "image": image,
        # Imported into the node: nothing can be pulled here.
        "imagePullPolicy": "Never",
        "args": args(),
        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {**probe, "periodSeconds": 2, "failureThreshold": 3},
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "allowPrivilegeEscalation": False,
            "seccompProfile": {"type": "RuntimeDefault"},
            "capabilities": {"drop": ["ALL"]},
        },
        # Its certificate is given, so it writes none: a read-only root is all it needs.
        "volumeMounts": [{"name": "tls", "mountPath": CERT_DIR, "readOnly": True}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(NAME),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": NAME,
                    "priorityClassName": "system-cluster-critical",
                    "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
                    "containers": [container],
                    "volumes": [{"name": "tls", "secret": {"secretName": f"{NAME}-tls"}}],
                },
            },
        },
    }


def service() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(NAME),
        "spec": {
            "selector": dict(LABELS),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https",
                       "appProtocol": "https"}],
        },
    }  # fmt: skip


def api_service(ca_pem: bytes) -> Obj:
    return {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": _meta(API_SERVICE, namespaced=False),
        "spec": {
            "service": {"name": NAME, "namespace": NAMESPACE, "port": 443},
            "group": API_GROUP,
            "version": "v1beta1",
            "caBundle": base64.b64encode(ca_pem).decode(),
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
        },
    }
