"""What fits on the nodes: pods, CPU and memory requests against what EKS leaves allocatable.

Plain data, no Pulumi: the config warns with it when ``maxSessions`` cannot
fit, the lean profile's instance type is chosen by it, and docs/cost.md's node
budget table is what ``python -m infra.nodes`` prints.

How EKS sizes a managed AL2023 node:

- **maxPods** (the kubelet's pod limit): with VPC CNI prefix delegation, EKS
  writes ENIs x (IPv4 addresses per ENI - 1) x 16 + 2, capped at 110 under 30
  vCPUs (docs/configuration.md).
- **kube-reserved memory**: nodeadm reserves 11 MiB x maxPods + 255 MiB, where
  maxPods is its own ENI-based count, ENIs x (addresses - 1) + 2, worked out
  before the node group's maxPods is merged in (amazon-eks-ami,
  nodeadm/internal/kubelet/config.go). **kube-reserved CPU**: 6% of the first
  core, 1% of the second, 0.5% of the third and fourth, 0.25% of the rest.
  Eviction keeps 100 MiB free.
- **Capacity** is what the kernel reports, below the nominal size: an AL2023
  t4g.small is reported with 1,437 MiB allocatable, so 1,913 MiB of capacity
  for its nominal 2,048 (93%); the same share is assumed for other types.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from infra.workload import (
    ECHO_CPU_REQUEST_M,
    ECHO_MEMORY_REQUEST_MI,
    PROVISIONER_CPU_REQUEST_M,
    PROVISIONER_MEMORY_REQUEST_MI,
)

MAX_PODS_CAP: Final = 110
EVICTION_MEMORY_MIB: Final = 100
CAPACITY_SHARE: Final = 1913 / 2048


@dataclass(frozen=True)
class InstanceType:
    """An EC2 instance type as the EC2 instance-type pages list it."""

    vcpus: int
    memory_mib: int
    enis: int
    ipv4_per_eni: int

    @property
    def max_pods(self) -> int:
        """The kubelet's pod limit on a managed node with prefix delegation."""
        return min(self.enis * (self.ipv4_per_eni - 1) * 16 + 2, MAX_PODS_CAP)

    @property
    def eni_max_pods(self) -> int:
        """nodeadm's own count, the one its memory reservation is computed from."""
        return self.enis * (self.ipv4_per_eni - 1) + 2

    @property
    def allocatable_memory_mib(self) -> int:
        capacity = math.floor(self.memory_mib * CAPACITY_SHARE)
        reserved = 11 * self.eni_max_pods + 255
        return capacity - reserved - EVICTION_MEMORY_MIB

    @property
    def allocatable_cpu_m(self) -> int:
        shares = (600, 100, 50, 50)  # per 10,000 of a core, core by core; 25 after
        reserved = sum(
            (shares[core] if core < len(shares) else 25) * 1000 // 10_000
            for core in range(self.vcpus)
        )
        return self.vcpus * 1000 - reserved


# Graviton types the profiles and the default stack use (2 vCPUs each, burstable).
INSTANCE_TYPES: Final = {
    "t4g.small": InstanceType(vcpus=2, memory_mib=2048, enis=3, ipv4_per_eni=4),
    "t4g.medium": InstanceType(vcpus=2, memory_mib=4096, enis=3, ipv4_per_eni=6),
}


@dataclass(frozen=True)
class Pods:
    """Some pods, all with the same requests."""

    name: str
    count: int
    cpu_m: int
    memory_mib: int
    per_node: bool = False  # a DaemonSet: one on every node


# What runs whatever the app does: EKS's add-ons (their manifests' requests)
# and the AWS Load Balancer Controller (its chart's two replicas, with the
# requests infra/edge.py gives them).
SYSTEM_PODS: Final = (
    Pods("aws-node (VPC CNI, network policy agent)", 1, 25, 0, per_node=True),
    Pods("kube-proxy", 1, 100, 0, per_node=True),
    Pods("eks-pod-identity-agent", 1, 0, 0, per_node=True),
    Pods("coredns", 2, 100, 70),
    Pods("aws-load-balancer-controller", 2, 50, 128),
)

# The in-cluster monitoring's containers (infra/monitoring.py sets these
# requests): (CPU millicores, memory MiB).
MONITORING_REQUESTS: Final = {
    "operator": (50, 64),
    "prometheus": (100, 256),
    "config-reloader": (10, 32),
    "grafana": (50, 128),
    "grafana-sidecar": (10, 32),  # two of them: dashboards and datasources
}


def _pod(name: str, *containers: str) -> Pods:
    cpu = sum(MONITORING_REQUESTS[c][0] for c in containers)
    memory = sum(MONITORING_REQUESTS[c][1] for c in containers)
    return Pods(name, 1, cpu, memory)


MONITORING_PODS: Final = (
    _pod("prometheus-operator", "operator"),
    _pod("prometheus", "prometheus", "config-reloader"),
    _pod("grafana", "grafana", "grafana-sidecar", "grafana-sidecar"),
)


@dataclass(frozen=True)
class Budget:
    """How many echo pods fit beside everything else, and what limits it."""

    instance_type: str
    nodes: int
    fixed: tuple[Pods, ...]
    echo_pods: int
    limit: str  # "pods", "cpu" or "memory"

    def sessions(self, pool_size: int) -> int:
        """Sessions that can hold a pod while the warm pool is full."""
        return max(self.echo_pods - pool_size, 0)


def app_pods(provisioner_replicas: int) -> tuple[Pods, ...]:
    return (
        Pods(
            "provisioner",
            provisioner_replicas,
            PROVISIONER_CPU_REQUEST_M,
            PROVISIONER_MEMORY_REQUEST_MI,
        ),
    )


def budget(
    instance_type: str, nodes: int, provisioner_replicas: int, *, monitoring: bool
) -> Budget:
    """Echo pods that fit on ``nodes`` x ``instance_type``, requests counted over all nodes.

    Summing over nodes is optimistic by at most one echo pod per node (pods
    do not split); the scheduler spreads them.
    """
    node = INSTANCE_TYPES[instance_type]
    fixed = (*SYSTEM_PODS, *app_pods(provisioner_replicas))
    if monitoring:
        fixed = (*fixed, *MONITORING_PODS)

    def total(field: str) -> int:
        return sum((p.count * nodes if p.per_node else p.count) * getattr(p, field) for p in fixed)

    room = {
        "pods": node.max_pods * nodes
        - sum(p.count * nodes if p.per_node else p.count for p in fixed),
        "cpu": (node.allocatable_cpu_m * nodes - total("cpu_m")) // ECHO_CPU_REQUEST_M,
        "memory": (node.allocatable_memory_mib * nodes - total("memory_mib"))
        // ECHO_MEMORY_REQUEST_MI,
    }
    limit = min(room, key=lambda k: room[k])
    return Budget(instance_type, nodes, fixed, max(room[limit], 0), limit)


def table(budgets: Sequence[Budget], pool_size: int) -> list[str]:
    """docs/cost.md's node budget table, one Markdown row per budget."""
    lines = [
        "| nodes | max pods | allocatable CPU / memory | fixed pods | echo pods that fit "
        f"| sessions (pool of {pool_size}) |",
        "|---|---|---|---|---|---|",
    ]
    for b in budgets:
        node = INSTANCE_TYPES[b.instance_type]
        fixed = sum(p.count * b.nodes if p.per_node else p.count for p in b.fixed)
        fixed_mem = sum(
            (p.count * b.nodes if p.per_node else p.count) * p.memory_mib for p in b.fixed
        )
        lines.append(
            f"| {b.nodes} x {b.instance_type} | {node.max_pods} "
            f"| {node.allocatable_cpu_m}m / {node.allocatable_memory_mib} MiB each "
            f"| {fixed} ({fixed_mem} MiB requested) | {b.echo_pods} (by {b.limit}) "
            f"| {b.sessions(pool_size)} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m infra.nodes", description="What fits on the nodes, as a Markdown table."
    )
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args(argv)
    rows = [
        budget(t, n, args.replicas, monitoring=m)
        for t, n, m in (
            ("t4g.medium", 2, False),
            ("t4g.medium", 2, True),
            ("t4g.small", 1, False),
            ("t4g.small", 1, True),
            ("t4g.medium", 1, False),
        )
    ]
    print("\n".join(table(rows, args.pool)))


if __name__ == "__main__":
    main()
