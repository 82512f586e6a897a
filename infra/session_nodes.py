"""Karpenter's session nodes as plain data: the NodePool, the EC2NodeClass, the taint.

No Pulumi here: ``infra/karpenter.py`` declares these specs as custom resources
(``karpenter.sh/v1`` NodePool, ``karpenter.k8s.aws/v1`` EC2NodeClass), the
echo pod template (``infra/workload.py``) tolerates the taint, and
``infra/nodes.py`` and ``infra/cost.py`` size and price the instance types.

Session nodes carry a taint that only echo pods tolerate, so nothing else
lands on them: the provisioner, the load balancer controller, CoreDNS,
Karpenter and metrics-server stay on the managed node group (the system
group). Echo pods are not pinned to session nodes: they may use the system
group's spare room too (the warm pool lives there when nobody visits), and
Karpenter adds a node only when an echo pod cannot be scheduled anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

# The NodePool's and the EC2NodeClass's name.
NODE_POOL: Final = "sessions"
NODE_CLASS_GROUP: Final = "karpenter.k8s.aws"
# The taint the test control plane's NodePools carry too
# (scripts/controlplane/karpenter/manifests.py, ECHO_TAINT).
SESSION_TAINT_KEY: Final = "pingpod.dev/echo"
SESSION_TAINT: Final = {"key": SESSION_TAINT_KEY, "value": "true", "effect": "NoSchedule"}
# Echo pods are memory-bound (32 MiB requested, 10m of CPU): a t4g.small holds
# about 44 of them and a t4g.medium about 101 for twice the price, the cheapest
# per pod; a t4g.large would hit the 110-pod limit at twice a medium's price.
# All of them have 2 vCPUs, so the NodePool's cpu limit counts nodes in twos.
SESSION_INSTANCE_TYPES: Final = ("t4g.small", "t4g.medium")
SESSION_NODE_VCPUS: Final = 2
# EKS-optimised Amazon Linux 2023, arm64 picked by the NodePool's arch. "latest"
# follows AMI releases: a new AMI marks the nodes drifted and Karpenter replaces
# them one at a time (the disruption budget), never a node whose pods carry
# karpenter.sh/do-not-disrupt (claimed sessions).
AMI_ALIAS: Final = "al2023@latest"
# What EKS gives managed nodes with VPC CNI prefix delegation under 30 vCPUs
# (infra/nodes.py); Karpenter would otherwise count the ENI-based 11 pods of a
# t4g.small. Its memory reservation stays the ENI-based one on AL2023, as nodeadm's.
KUBELET_MAX_PODS: Final = 110
# IMDSv2 only, one hop: as on the managed nodes (infra/cluster.py), no pod
# reaches the node role.
METADATA_OPTIONS: Final = {
    "httpEndpoint": "enabled",
    "httpProtocolIPv6": "disabled",
    "httpPutResponseHopLimit": 1,
    "httpTokens": "required",
}
# Consolidation waits this long after a node's last pod change: visitors come
# in bursts, and a node removed between two of them is launched again a minute later.
CONSOLIDATE_AFTER: Final = "5m"
# At most one session node disrupted at a time (consolidation, drift, expiry).
DISRUPTION_BUDGET_NODES: Final = "1"
EXPIRE_AFTER: Final = "720h"


def session_toleration() -> dict[str, str]:
    """What an echo pod carries to be allowed on session nodes."""
    return {
        "key": SESSION_TAINT_KEY,
        "operator": "Equal",
        "value": SESSION_TAINT["value"],
        "effect": SESSION_TAINT["effect"],
    }


def node_pool_spec(*, capacity_types: Sequence[str], max_cpu: int) -> dict[str, Any]:
    """The NodePool: arm64 t4g nodes bought as ``capacity_types``, ``max_cpu`` vCPUs at most.

    With Spot and on-demand both allowed, Karpenter launches Spot and falls back on
    on-demand when EC2 has no Spot capacity of these types in the subnets' zones.
    """
    return {
        "template": {
            "spec": {
                "nodeClassRef": {
                    "group": NODE_CLASS_GROUP,
                    "kind": "EC2NodeClass",
                    "name": NODE_POOL,
                },
                "requirements": [
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]},
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    {
                        "key": "karpenter.sh/capacity-type",
                        "operator": "In",
                        "values": list(capacity_types),
                    },
                    {
                        "key": "node.kubernetes.io/instance-type",
                        "operator": "In",
                        "values": list(SESSION_INSTANCE_TYPES),
                    },
                ],
                "taints": [dict(SESSION_TAINT)],
                "expireAfter": EXPIRE_AFTER,
            }
        },
        "limits": {"cpu": str(max_cpu)},
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": CONSOLIDATE_AFTER,
            "budgets": [{"nodes": DISRUPTION_BUDGET_NODES}],
        },
    }


def node_class_spec(
    *,
    role: str,
    subnet_ids: Sequence[str],
    security_group_id: str,
    public: bool,
    disk_size_gib: int,
) -> dict[str, Any]:
    """The EC2NodeClass: where session nodes go and how they boot.

    Subnets and the security group by id (the profile's node subnets and the EKS
    cluster security group, as the managed nodes have), not by discovery tags:
    nothing to tag, and the lean profile's public subnets need no tag of their own.
    ``role`` is the node role's name; Karpenter makes the instance profile.
    """
    return {
        "role": role,
        "amiSelectorTerms": [{"alias": AMI_ALIAS}],
        "subnetSelectorTerms": [{"id": subnet} for subnet in subnet_ids],
        "securityGroupSelectorTerms": [{"id": security_group_id}],
        # The lean profile's nodes sit in public subnets and reach ECR and the
        # EKS API through their own public address (no NAT gateway there).
        "associatePublicIPAddress": public,
        "kubelet": {"maxPods": KUBELET_MAX_PODS},
        "metadataOptions": dict(METADATA_OPTIONS),
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "ebs": {
                    "volumeSize": f"{disk_size_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
    }
