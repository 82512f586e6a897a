"""The validated settings of one stack, as frozen types: no reading, no checking here.

``infra.config.load_config`` builds a :class:`StackConfig` from the stack's keys;
the components take the part they need (``AppSettings`` for the App,
``AwsSettings`` for the network, cluster and edge, ...). Kept apart from the
loader so that modules which only need the types (``infra.workload``,
``infra.app``) do not import the loader and what it imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from infra.keys import default_integer
from infra.profiles import CapacityType

Mode = Literal["aws", "app"]


@dataclass(frozen=True, kw_only=True)
class AppSettings:
    """What the App component needs: the same for the AWS and app-only stacks."""

    namespace: str
    pool_size: int
    max_sessions: int
    session_idle_timeout: int
    session_max_lifetime: int
    provisioner_replicas: int
    allowed_origins: tuple[str, ...]
    echo_arm64_only: bool
    # "Kill my gateway" on the page: the provisioner offers it only with two replicas or more.
    allow_gateway_kill: bool = False
    # Node labels every pod of the app (provisioner and echo) must match, sorted by key:
    # pairs rather than a dict, so the settings stay immutable and hashable.
    node_selector: tuple[tuple[str, str], ...] = ()
    # How long an echo pod stays on a NotReady or unreachable node before it is evicted.
    node_lost_seconds: int = default_integer("nodeLostSeconds")
    # With autoscaling: the HorizontalPodAutoscaler's maximum, provisioner_replicas
    # being its minimum (and the Deployment's count when created). None: a fixed count.
    provisioner_max_replicas: int | None = None
    # Echo pods tolerate the session NodePool's taint (Karpenter on AWS), so they,
    # and only they, may run on session nodes.
    session_nodes: bool = False


@dataclass(frozen=True, kw_only=True)
class AwsSettings:
    """The AWS stack: network, cluster, registry and edge."""

    domain: str
    hosted_zone_id: str
    vpc_cidr: str
    kubernetes_version: str
    node_instance_types: tuple[str, ...]
    node_min_size: int
    node_desired_size: int
    node_max_size: int
    node_disk_size_gib: int
    cluster_admins: tuple[str, ...]
    alb_idle_timeout: int
    lbc_chart_version: str
    # The profile (infra/profiles.py) and what it decides.
    profile: str
    nat_gateway: bool
    public_nodes: bool
    capacity_type: CapacityType


@dataclass(frozen=True, kw_only=True)
class MonitoringSettings:
    """In-cluster Prometheus and Grafana (infra/monitoring.py), or none."""

    enabled: bool
    chart_version: str


@dataclass(frozen=True, kw_only=True)
class AutoscalingSettings:
    """Auto-scaling on AWS: Karpenter's session nodes (infra/karpenter.py) and metrics-server.

    The provisioner's HorizontalPodAutoscaler is the App's (``AppSettings``).
    """

    karpenter_chart_version: str
    metrics_server_chart_version: str
    # The NodePool's cpu limit (sessionNodesMaxCpu): vCPUs of session nodes at most.
    session_nodes_max_cpu: int
    # karpenter.sh/capacity-type values the NodePool may buy (the profile's).
    session_capacity_types: tuple[str, ...]
    # Controller replicas: one per system node, two at most (the chart keeps them
    # on separate nodes).
    controller_replicas: int


@dataclass(frozen=True, kw_only=True)
class LocalSettings:
    """The app-only stack: images built elsewhere, the current kubeconfig."""

    echo_image: str
    provisioner_image: str
    kube_context: str | None


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """The validated configuration of one stack.

    ``aws`` is set exactly when ``mode == "aws"`` and ``local`` exactly when
    ``mode == "app"``.
    """

    mode: Mode
    app: AppSettings
    aws: AwsSettings | None
    local: LocalSettings | None
    monitoring: MonitoringSettings = MonitoringSettings(enabled=False, chart_version="")
    # Set with autoscaling on in mode "aws"; None otherwise.
    autoscaling: AutoscalingSettings | None = None
