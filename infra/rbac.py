"""The provisioner's Kubernetes permissions, defined once as plain data.

This module deliberately imports nothing from Pulumi: the Pulumi program turns
these rules into the provisioner's namespaced Role (see ``infra/app.py``), the
Kubernetes-backend tests create the same Role on a real API server, and the
provisioner itself may import the list to check its own access.

Each rule is exactly what the Kubernetes backend does with the resource:

- ``apps/replicasets``: a pool member is a ReplicaSet with ``replicas: 1``;
  the backend keeps a watch cache of them (list + watch; a cache miss is a
  list by label, never a get), creates warm members, claims one with a PATCH guarded by
  ``resourceVersion``, and deletes a session's ReplicaSet when it ends.
- ``""/pods``: the backend watches pods to see readiness and node placement,
  "kill my pod" is a DELETE of the session's pod (the ReplicaSet
  controller creates the replacement), and a warm claim PATCHes the claimed
  pod's ``karpenter.sh/do-not-disrupt`` annotation (node autoscaling leaves
  its node alone). It never creates pods itself, unless ``POOL_MEMBERS=pods``:
  then the Lease holder creates the warm pods (``BARE_POD_RULES``, granted only
  for that mode), a claim PATCHes one, and a trim deletes one.
- ``coordination.k8s.io/leases``: leader election of the replica that
  replenishes and reaps: a Lease holder reads its Lease (get), creates it the
  first time (create) and renews or takes it over (update). And the roster of
  live replicas: each replica creates a Lease of its own, renews it (patch),
  lists the roster's Leases to count them (list), and deletes its own at
  shutdown or a crashed peer's long expired one (delete). Nothing watches Leases.

Nothing in the Role is cluster-scoped, nothing uses a wildcard, and there is no
access to Secrets, ConfigMaps, Services, Jobs or the ReplicaSet ``scale``
subresource.

One thing is cluster-scoped, and read-only: ``""/nodes``, list and watch, in a
ClusterRole of its own (``NODE_RULES``) bound to the same ServiceAccount. The
page's node strip shows the nodes (name, instance type and capacity-type labels,
Ready, deleting); the provisioner keeps a watch cache of them, never gets,
writes or deletes one. Its name carries the namespace, so two deployments in
one cluster each have their own.
"""

from __future__ import annotations

from typing import Any, Final, TypedDict


class PolicyRule(TypedDict):
    """One RBAC rule in the Kubernetes API's own shape (camelCase keys)."""

    apiGroups: list[str]
    resources: list[str]
    verbs: list[str]


ROLE_NAME: Final = "provisioner"
SERVICE_ACCOUNT_NAME: Final = "provisioner"

PROVISIONER_RULES: Final[list[PolicyRule]] = [
    {
        "apiGroups": ["apps"],
        "resources": ["replicasets"],
        "verbs": ["list", "watch", "create", "patch", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["list", "watch", "patch", "delete"],
    },
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "list", "create", "update", "patch", "delete"],
    },
]

# POOL_MEMBERS=pods only: the Lease holder creates the warm pods itself.
BARE_POD_RULES: Final[list[PolicyRule]] = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
]


# What the stack's provisioner runs (its POOL_MEMBERS; docs/architecture.md, "Bare pods
# as warm members"), so the Role it gets and the setting it reads never differ.
POOL_MEMBERS: Final = "pods"


def provisioner_rules(pool_members: str = POOL_MEMBERS) -> list[PolicyRule]:
    """The Role's rules for a provisioner whose warm members are `pool_members`."""
    return PROVISIONER_RULES + (BARE_POD_RULES if pool_members == "pods" else [])


NODE_RULES: Final[list[PolicyRule]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]},
]


def node_reader_name(namespace: str) -> str:
    """The ClusterRole (and its binding) that lets ``namespace``'s provisioner read nodes."""
    return f"{namespace}-provisioner-nodes"


def _rules(rules: list[PolicyRule]) -> list[dict[str, list[str]]]:
    return [
        {
            "apiGroups": list(r["apiGroups"]),
            "resources": list(r["resources"]),
            "verbs": list(r["verbs"]),
        }
        for r in rules
    ]


def node_reader(namespace: str) -> list[dict[str, Any]]:
    """The ClusterRole and ClusterRoleBinding for the node strip, API-shaped (tests, tools)."""
    name = node_reader_name(namespace)
    group = "rbac.authorization.k8s.io"
    return [
        {
            "apiVersion": f"{group}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": _rules(NODE_RULES),
        },
        {
            "apiVersion": f"{group}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": group, "kind": "ClusterRole", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT_NAME, "namespace": namespace}
            ],
        },
    ]


def provisioner_role(namespace: str, *, pool_members: str = POOL_MEMBERS) -> dict[str, object]:
    """The provisioner's Role as an API-shaped object (for tests and tools)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": ROLE_NAME, "namespace": namespace},
        "rules": _rules(provisioner_rules(pool_members)),
    }


def provisioner_role_binding(namespace: str) -> dict[str, object]:
    """The binding of that Role to the provisioner's ServiceAccount, API-shaped."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": ROLE_NAME, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME},
        "subjects": [
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT_NAME, "namespace": namespace}
        ],
    }
