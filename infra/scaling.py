"""The auto-scaling keys, checked together: the switch, the provisioner's range, Karpenter's limit.

``load_config`` (``infra/config.py``) reads the app and AWS keys first and hands
them here. With ``autoscaling: true`` the App gets a replica range (the
HorizontalPodAutoscaler's), the managed node group becomes the profile's
system group (``infra/profiles.py``), and the AWS stack gets Karpenter and
metrics-server settings; with ``false`` everything stays fixed. The keys
that only apply to one setting are checked either way, so switching finds
them valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from infra.config_reader import ConfigError, Reader
from infra.keys import CHART_VERSION, PROJECT
from infra.nodes import INSTANCE_TYPES, budget, session_nodes_echo_pods
from infra.profiles import PROFILES, SYSTEM_INSTANCE_TYPE
from infra.settings import AppSettings, AutoscalingSettings, AwsSettings, MonitoringSettings

# Replicas "Kill my gateway" needs: the one that restarts, and one to take its sockets.
GATEWAY_KILL_REPLICAS = 2
# The chart keeps Karpenter's replicas on separate nodes; two are enough for a leader and a spare.
MAX_CONTROLLER_REPLICAS = 2


def scale_app(read: Reader, app: AppSettings, *, autoscaling: bool) -> AppSettings:
    """The App's replica range: the HorizontalPodAutoscaler's bounds, or a fixed count."""
    max_replicas = read.integer("provisionerMaxReplicas", minimum=1, maximum=20)
    if app.allow_gateway_kill and app.provisioner_replicas < GATEWAY_KILL_REPLICAS:
        raise ConfigError(
            f"{PROJECT}:provisionerReplicas: expected at least {GATEWAY_KILL_REPLICAS} while "
            "allowGatewayKill is true ('Kill my gateway' restarts the replica holding the "
            f"visitor's WebSocket, and another must take it), got {app.provisioner_replicas}"
        )
    if not autoscaling:
        return app
    if max_replicas < app.provisioner_replicas:
        raise ConfigError(
            f"{PROJECT}:provisionerMaxReplicas: expected at least provisionerReplicas "
            f"({app.provisioner_replicas}), the HorizontalPodAutoscaler's minimum, "
            f"got {max_replicas}"
        )
    return replace(app, provisioner_max_replicas=max_replicas)


def scale_aws(
    read: Reader, aws: AwsSettings, *, autoscaling: bool
) -> tuple[AwsSettings, AutoscalingSettings | None]:
    """With autoscaling, the system group in place of the node keys, and Karpenter's settings."""
    karpenter_version = read.string(
        "karpenterChartVersion",
        expected="a Karpenter chart version like 1.15.2",
        pattern=CHART_VERSION,
    )
    metrics_version = read.string(
        "metricsServerChartVersion",
        expected="a metrics-server chart version like 3.13.1",
        pattern=CHART_VERSION,
    )
    max_cpu = read.integer("sessionNodesMaxCpu", minimum=2, maximum=64, unit=" vCPUs")
    if not autoscaling:
        return aws, None
    profile = PROFILES[aws.profile]
    nodes = profile.system_nodes
    system = replace(
        aws,
        node_instance_types=(SYSTEM_INSTANCE_TYPE,),
        node_min_size=nodes,
        node_desired_size=nodes,
        node_max_size=nodes,
    )
    return system, AutoscalingSettings(
        karpenter_chart_version=karpenter_version,
        metrics_server_chart_version=metrics_version,
        session_nodes_max_cpu=max_cpu,
        session_capacity_types=profile.session_capacity_types,
        controller_replicas=min(nodes, MAX_CONTROLLER_REPLICAS),
    )


def check_fit(
    aws: AwsSettings,
    app: AppSettings,
    monitoring: MonitoringSettings,
    autoscaling: AutoscalingSettings | None,
    warn: Callable[[str], None],
) -> None:
    """Warn when maxSessions is beyond what the nodes hold; refuse monitoring that cannot run.

    maxSessions beyond the nodes is allowed (claims past it are shed), not wise.
    The system group holds the fixed pods with the provisioners at their most,
    and the session nodes, at the NodePool's limit, at least t4g.smalls.
    """
    instance_type = aws.node_instance_types[0]
    if instance_type not in INSTANCE_TYPES:
        return  # no figures for it (infra/nodes.py)
    nodes = f"{aws.node_desired_size} x {instance_type}"
    system = budget(
        instance_type,
        aws.node_desired_size,
        app.provisioner_max_replicas or app.provisioner_replicas,
        monitoring=monitoring.enabled,
        karpenter_replicas=autoscaling.controller_replicas if autoscaling else 0,
    )
    if system.overcommitted and monitoring.enabled:
        raise ConfigError(
            f"{PROJECT}:monitoring: Prometheus and Grafana do not fit on {nodes} beside the "
            "pods that must run there (python -m infra.nodes); use the standard profile, "
            "or autoscaling false"
        )
    echo = system.echo_pods
    if autoscaling is not None:
        echo += session_nodes_echo_pods(autoscaling.session_nodes_max_cpu)
        nodes += f" and session nodes of {autoscaling.session_nodes_max_cpu} vCPUs"
    fit = max(echo - app.pool_size, 0)
    if app.max_sessions > fit:
        extra = " with monitoring" if monitoring.enabled else ""
        warn(
            f"{PROJECT}:maxSessions: {app.max_sessions} sessions do not fit on {nodes}{extra} "
            f"(about {fit} do beside a warm pool of {app.pool_size}; python -m infra.nodes); "
            "claims past that are refused while their pods cannot be scheduled. "
            f"Set maxSessions to {fit} or less"
            + (" (or sessionNodesMaxCpu higher)" if autoscaling is not None else "")
        )
