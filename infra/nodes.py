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

from infra.profiles import SYSTEM_INSTANCE_TYPE
from infra.session_nodes import SESSION_INSTANCE_TYPES, SESSION_NODE_VCPUS
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


# Auto-scaling's pods on the system group (infra/karpenter.py and
# infra/metrics_server.py set these requests): (CPU millicores, memory MiB).
# Karpenter's chart asks for 1 CPU and 1 GiB, sized for large clusters; here it
# watches a dozen nodes at most and one NodePool of two instance types, and idles
# between batches, so 100m. Memory holds the region's instance types and prices
# it caches, hence 256 MiB rather than less (a limit of 1 GiB leaves it room).
# metrics-server's chart asks for 100m and 200 MiB, sized for 100 nodes.
AUTOSCALING_REQUESTS: Final = {
    "karpenter": (100, 256),
    "metrics-server": (50, 64),
}


def autoscaling_pods(karpenter_replicas: int) -> tuple[Pods, ...]:
    """Karpenter's controllers and metrics-server, or nothing with autoscaling off (0)."""
    if karpenter_replicas == 0:
        return ()
    return tuple(
        Pods(name, karpenter_replicas if name == "karpenter" else 1, cpu, memory)
        for name, (cpu, memory) in AUTOSCALING_REQUESTS.items()
    )


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
    # The fixed pods alone ask for more than the nodes have.
    overcommitted: bool = False

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
    instance_type: str,
    nodes: int,
    provisioner_replicas: int,
    *,
    monitoring: bool,
    karpenter_replicas: int = 0,
) -> Budget:
    """Echo pods that fit on ``nodes`` x ``instance_type``, requests counted over all nodes.

    ``provisioner_replicas`` is the most that can run (the HorizontalPodAutoscaler's
    maximum when it is on); ``karpenter_replicas`` adds auto-scaling's pods
    (Karpenter's controllers and metrics-server), 0 for none. Summing over nodes
    is optimistic by at most one echo pod per node (pods do not split); the
    scheduler spreads them.
    """
    fixed = (*SYSTEM_PODS, *app_pods(provisioner_replicas), *autoscaling_pods(karpenter_replicas))
    if monitoring:
        fixed = (*fixed, *MONITORING_PODS)
    return _fit(instance_type, nodes, fixed)


def session_node_budget(instance_type: str) -> Budget:
    """Echo pods one Karpenter session node holds: only the DaemonSets run beside them."""
    return _fit(instance_type, 1, tuple(p for p in SYSTEM_PODS if p.per_node))


def session_nodes_echo_pods(max_cpu: int) -> int:
    """Echo pods the session nodes hold at the NodePool's cpu limit, at the least.

    The limit buys ``max_cpu`` / 2 nodes (every allowed type has 2 vCPUs), each
    at least a t4g.small; Karpenter picks a t4g.medium when more pods wait.
    """
    smallest = min(session_node_budget(t).echo_pods for t in SESSION_INSTANCE_TYPES)
    return max_cpu // SESSION_NODE_VCPUS * smallest


def _fit(instance_type: str, nodes: int, fixed: tuple[Pods, ...]) -> Budget:
    node = INSTANCE_TYPES[instance_type]

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
    return Budget(instance_type, nodes, fixed, max(room[limit], 0), limit, room[limit] < 0)


def _count(pods: Pods, nodes: int) -> int:
    return pods.count * nodes if pods.per_node else pods.count


def table(rows: Sequence[tuple[str, Budget]], pool_size: int) -> list[str]:
    """docs/cost.md's node budget table, one Markdown row per (stack, budget)."""
    lines = [
        "| stack | nodes | provisioners | allocatable CPU / memory | fixed pods "
        f"| echo pods that fit | sessions (pool of {pool_size}) |",
        "|---|---|---|---|---|---|---|",
    ]
    for stack, b in rows:
        node = INSTANCE_TYPES[b.instance_type]
        fixed = sum(_count(p, b.nodes) for p in b.fixed)
        fixed_mem = sum(_count(p, b.nodes) * p.memory_mib for p in b.fixed)
        provisioners = sum(p.count for p in b.fixed if p.name == "provisioner")
        lines.append(
            f"| {stack} | {b.nodes} x {b.instance_type} | {provisioners} "
            f"| {node.allocatable_cpu_m}m / {node.allocatable_memory_mib} MiB each "
            f"| {fixed} ({fixed_mem} MiB requested) | {b.echo_pods} (by {b.limit}) "
            f"| {b.sessions(pool_size)} |"
        )
    return lines


def session_table() -> list[str]:
    """What one session node holds, per instance type the NodePool allows."""
    lines = [
        "| session node | max pods | allocatable CPU / memory | DaemonSet pods "
        "| echo pods that fit |",
        "|---|---|---|---|---|",
    ]
    for instance_type in SESSION_INSTANCE_TYPES:
        node, b = INSTANCE_TYPES[instance_type], session_node_budget(instance_type)
        lines.append(
            f"| {instance_type} | {node.max_pods} "
            f"| {node.allocatable_cpu_m}m / {node.allocatable_memory_mib} MiB "
            f"| {sum(p.count for p in b.fixed)} | {b.echo_pods} (by {b.limit}) |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m infra.nodes", description="What fits on the nodes, as Markdown tables."
    )
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=2, help="fixed provisioners, or the least")
    parser.add_argument(
        "--max-replicas", type=int, default=4, help="the most provisioners (autoscaling, standard)"
    )
    args = parser.parse_args(argv)
    # (stack, instance type, nodes, monitoring, Karpenter replicas, provisioners)
    scenarios = [
        ("standard, autoscaling", SYSTEM_INSTANCE_TYPE, 2, False, 2, args.max_replicas),
        ("standard, autoscaling, monitoring", SYSTEM_INSTANCE_TYPE, 2, True, 2, args.max_replicas),
        # Lean with monitoring and autoscaling is refused: its pods alone do not fit.
        ("lean, autoscaling", SYSTEM_INSTANCE_TYPE, 1, False, 1, args.replicas),
        ("standard, fixed", "t4g.medium", 2, False, 0, args.replicas),
        ("standard, fixed, monitoring", "t4g.medium", 2, True, 0, args.replicas),
        ("lean, fixed", "t4g.small", 1, False, 0, args.replicas),
        ("lean, fixed, monitoring", "t4g.small", 1, True, 0, args.replicas),
        ("a t4g.medium, fixed", "t4g.medium", 1, False, 0, args.replicas),
    ]
    rows = [
        (stack, budget(t, n, prov, monitoring=m, karpenter_replicas=k))
        for stack, t, n, m, k, prov in scenarios
    ]
    print("\n".join([*table(rows, args.pool), "", *session_table()]))


if __name__ == "__main__":
    main()
