"""The objects Karpenter runs with here, as API-shaped dicts.

Its own identity: a ServiceAccount with the RBAC of its kwok chart
(``kwok/charts/templates/{clusterrole,clusterrole-kwok,role,rolebinding}.yaml`` in
``sigs.k8s.io/karpenter`` v1.15.0), not an admin certificate. The users'
aggregate role (``aggregate-clusterrole.yaml``) is left out: nobody here needs it.

What it provisions: a KWOKNodeClass and a NodePool for the echo pods, shaped like
the AWS one: arm64, Spot and on-demand, the t4g sizes, consolidation of empty and
underutilised nodes, a disruption budget and a CPU limit. Its nodes carry
``type=kwok`` (the selector the control plane's kwok manages nodes by, which the
real node never carries), so kwok keeps them Ready, and a taint that only echo
pods tolerate.
"""

from __future__ import annotations

import time
from typing import Any, Final

from scripts.controlplane.flags import KWOK_NODE_LABELS

from .instancetypes import CAPACITY_TYPE_LABEL, T4G

Obj = dict[str, Any]

NAMESPACE: Final = "karpenter"
SERVICE_ACCOUNT: Final = "karpenter"
NODE_CLASS: Final = "default"
NODEPOOL_LABEL: Final = "karpenter.sh/nodepool"
NODECLAIMS: Final = "/apis/karpenter.sh/v1/nodeclaims"
NODEPOOLS: Final = "/apis/karpenter.sh/v1/nodepools"
NODE_CLASSES: Final = "/apis/karpenter.kwok.sh/v1alpha1/kwoknodeclasses"
# Karpenter's own lease name, the only one its Role may update.
LEADER_LEASE: Final = "karpenter-leader-election"
ECHO_TAINT: Final = {"key": "pingpod.dev/echo", "value": "true", "effect": "NoSchedule"}

_RBAC = "rbac.authorization.k8s.io/v1"
_CORE_READ = [
    "pods",
    "nodes",
    "persistentvolumes",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "namespaces",
    "podtemplates",
    "services",
]


def _rule(groups: list[str], resources: list[str], verbs: list[str], **extra: Any) -> Obj:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **extra}


# clusterrole.yaml (karpenter-core)
CORE_RULES: Final = [
    _rule(
        ["karpenter.sh"],
        [
            "nodepools",
            "nodepools/status",
            "nodeclaims",
            "nodeclaims/status",
            "nodeoverlays",
            "nodeoverlays/status",
        ],
        ["get", "list", "watch"],
    ),
    _rule(
        ["autoscaling.x-k8s.io"],
        ["capacitybuffers", "capacitybuffers/status"],
        ["get", "list", "watch", "update", "patch"],
    ),
    _rule([""], _CORE_READ, ["get", "list", "watch"]),
    _rule(
        ["storage.k8s.io"],
        ["storageclasses", "csinodes", "volumeattachments"],
        ["get", "watch", "list"],
    ),
    _rule(
        ["apps"],
        ["daemonsets", "deployments", "replicasets", "statefulsets"],
        ["get", "list", "watch"],
    ),
    _rule(["autoscaling.k8s.io"], ["verticalpodautoscalers"], ["get", "list", "watch"]),
    _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], ["watch", "list"]),
    _rule(["policy"], ["poddisruptionbudgets"], ["get", "list", "watch"]),
    _rule(
        ["karpenter.sh"],
        ["nodeclaims", "nodeclaims/status", "nodeclaims/finalizers"],
        ["create", "delete", "update", "patch"],
    ),
    _rule(
        ["karpenter.sh"],
        ["nodepools", "nodepools/status", "nodepools/finalizers", "nodeoverlays/status"],
        ["update", "patch"],
    ),
    _rule([""], ["events"], ["create", "patch"]),
    _rule([""], ["nodes"], ["create", "patch", "delete", "update"]),
    _rule([""], ["nodes/status"], ["patch"]),
    _rule([""], ["pods/eviction"], ["create"]),
    _rule([""], ["pods"], ["delete", "patch", "update"]),
]
# clusterrole-kwok.yaml (karpenter)
KWOK_RULES: Final = [
    _rule(["karpenter.kwok.sh"], ["kwoknodeclasses"], ["get", "list", "watch"]),
    _rule(
        ["karpenter.kwok.sh"], ["kwoknodeclasses", "kwoknodeclasses/status"], ["patch", "update"]
    ),
]
# role.yaml: (namespace, role name, rules)
NAMESPACED_RULES: Final = (
    (
        NAMESPACE,
        "karpenter",
        [
            _rule(["coordination.k8s.io"], ["leases"], ["get", "watch"]),
            _rule(
                ["coordination.k8s.io"],
                ["leases"],
                ["patch", "update"],
                resourceNames=[LEADER_LEASE],
            ),
            _rule(["coordination.k8s.io"], ["leases"], ["create"]),
        ],
    ),
    (
        "kube-system",
        "karpenter-dns",
        [_rule([""], ["services"], ["get"], resourceNames=["kube-dns"])],
    ),
    (
        "kube-node-lease",
        "karpenter-lease",
        [
            _rule(["coordination.k8s.io"], ["leases"], ["get", "list", "watch"]),
            _rule(["coordination.k8s.io"], ["leases"], ["delete"]),
        ],
    ),
)


def _subject() -> list[Obj]:
    return [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}]


def identity() -> list[Obj]:
    """Namespace, ServiceAccount, ClusterRoles, Roles and their bindings."""
    objects: list[Obj] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
        },
    ]
    for name, rules in (("karpenter-core", CORE_RULES), ("karpenter", KWOK_RULES)):
        objects += [
            {
                "apiVersion": _RBAC,
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": rules,
            },
            {
                "apiVersion": _RBAC,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": _subject(),
            },
        ]
    for namespace, name, rules in NAMESPACED_RULES:
        meta = {"name": name, "namespace": namespace}
        objects += [
            {"apiVersion": _RBAC, "kind": "Role", "metadata": meta, "rules": rules},
            {
                "apiVersion": _RBAC,
                "kind": "RoleBinding",
                "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": _subject(),
            },
        ]
    return objects


def node_class(name: str = NODE_CLASS) -> Obj:
    return {
        "apiVersion": "karpenter.kwok.sh/v1alpha1",
        "kind": "KWOKNodeClass",
        "metadata": {"name": name},
        "spec": {},
    }


def node_class_ready() -> Obj:
    """The status a KWOKNodeClass needs before NodePools on it provision (nothing in the
    kwok provider sets it; Karpenter's own tests write it the same way)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "",
        "lastTransitionTime": now,
        "observedGeneration": 1,
    }
    return {"status": {"conditions": [ready]}}


def node_pool(
    name: str,
    *,
    cpu_limit: int,
    consolidate_after: str = "30s",
    budget: str = "50%",
    sizes: tuple[str, ...] = tuple(size.name for size in T4G),
    capacity_types: tuple[str, ...] = ("spot", "on-demand"),
    labels: dict[str, str] | None = None,
) -> Obj:
    """A NodePool for echo pods; ``labels`` are added to its nodes' (a change is drift)."""
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {**KWOK_NODE_LABELS, **(labels or {})}},
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.kwok.sh",
                        "kind": "KWOKNodeClass",
                        "name": NODE_CLASS,
                    },
                    "requirements": [
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                        {
                            "key": CAPACITY_TYPE_LABEL,
                            "operator": "In",
                            "values": list(capacity_types),
                        },
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": list(sizes),
                        },
                    ],
                    "taints": [ECHO_TAINT],
                    # Sessions are short; a node is replaced when empty, not by age.
                    "expireAfter": "Never",
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": consolidate_after,
                "budgets": [{"nodes": budget}],
            },
            "limits": {"cpu": str(cpu_limit)},
        },
    }


def echo_scheduling(pool: str) -> Obj:
    """What an echo pod spec needs to run on ``pool``'s nodes, and only there."""
    return {
        "nodeSelector": {NODEPOOL_LABEL: pool, "kubernetes.io/arch": "arm64"},
        "tolerations": [{**ECHO_TAINT, "operator": "Equal"}],
    }
