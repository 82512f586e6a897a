"""Optional monitoring (``monitoring: true``): Prometheus and Grafana in the cluster.

The kube-prometheus-stack chart, cut down to what the demo needs: the
Prometheus operator, one Prometheus and Grafana. A PodMonitor next to the
provisioner has every replica scraped, and the pingpod dashboard
(``monitoring/grafana/pingpod.json``) reaches Grafana through its dashboard
sidecar (a ConfigMap labelled ``grafana_dashboard: "1"``). Why in-cluster and
not Amazon Managed Prometheus, and what it costs: docs/monitoring.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from infra.nodes import MONITORING_REQUESTS
from infra.workload import PART_OF, PROVISIONER_METRICS_PORT_NAME, PROVISIONER_SELECTOR

CHART: Final = "kube-prometheus-stack"
CHART_REPO: Final = "https://prometheus-community.github.io/helm-charts"
NAMESPACE: Final = "monitoring"
RELEASE: Final = "monitoring"
# What the chart names Grafana's Service and admin Secret after the release.
GRAFANA_SERVICE: Final = f"{RELEASE}-grafana"
DASHBOARD_FILE: Final = Path(__file__).resolve().parents[1] / "monitoring/grafana/pingpod.json"
DASHBOARD_LABEL: Final = {"grafana_dashboard": "1"}
SCRAPE_INTERVAL: Final = "15s"
# Prometheus keeps its data on the pod's own disk (the cluster has no EBS CSI
# driver, and a demo's history is worth no volume): a restart starts afresh.
RETENTION: Final = "3d"
RETENTION_SIZE: Final = "2GB"


def _resources(container: str, memory_limit_mi: int) -> dict[str, Any]:
    cpu, memory = MONITORING_REQUESTS[container]
    return {
        "requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
        "limits": {"memory": f"{memory_limit_mi}Mi"},
    }


def chart_values() -> dict[str, Any]:
    """The chart's values: the operator, Prometheus and Grafana, nothing else."""
    off = {"enabled": False}
    return {
        # Rules, Alertmanager and the cluster exporters serve a cluster's
        # operators, not this demo; each would cost memory on small nodes.
        "defaultRules": {"create": False},
        "alertmanager": off,
        "kubeStateMetrics": off,
        "nodeExporter": off,
        **{
            component: off
            for component in (
                "kubeApiServer",
                "kubelet",
                "kubeControllerManager",
                "coreDns",
                "kubeEtcd",
                "kubeScheduler",
                "kubeProxy",
            )
        },
        "prometheusOperator": {
            # The webhooks only validate rules, and there are none; without
            # them the operator needs no certificate Job and serves no TLS.
            "admissionWebhooks": off,
            "tls": off,
            "resources": _resources("operator", 256),
            "prometheusConfigReloader": {"resources": _resources("config-reloader", 64)},
        },
        "prometheus": {
            "prometheusSpec": {
                "retention": RETENTION,
                "retentionSize": RETENTION_SIZE,
                "resources": _resources("prometheus", 1024),
                # Every PodMonitor and ServiceMonitor in the cluster, not only
                # those labelled for this release.
                "podMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
            }
        },
        "grafana": {
            "defaultDashboardsEnabled": False,
            # No adminPassword: the chart generates one and keeps it in its
            # Secret (docs/monitoring.md says how to read it).
            "resources": _resources("grafana", 256),
            "sidecar": {"resources": _resources("grafana-sidecar", 96)},
        },
    }


def pod_monitor_spec() -> dict[str, Any]:
    """Scrape every provisioner pod's /metrics on its named metrics port (not the public one)."""
    return {
        "selector": {"matchLabels": dict(PROVISIONER_SELECTOR)},
        "podMetricsEndpoints": [
            {
                "port": PROVISIONER_METRICS_PORT_NAME,
                "path": "/metrics",
                "interval": SCRAPE_INTERVAL,
            }
        ],
    }


@dataclass
class MonitoringArgs:
    chart_version: str
    # The App's namespace: the PodMonitor sits beside the provisioner.
    app_namespace: pulumi.Input[str]
    provider: k8s.Provider | None = None
    # What the pods need first (the nodes) and what must outlive them.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack in ``monitoring``, a PodMonitor and the dashboard."""

    grafana_port_forward: pulumi.Output[str]
    grafana_password_command: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:monitoring:Monitoring", name, None, opts)

        def opts_(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(depends_on) or None
            )

        namespace = k8s.core.v1.Namespace(
            f"{name}-monitoring-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=NAMESPACE,
                labels={
                    **PART_OF,
                    # The chart's pods meet baseline, not all of them restricted.
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            ),
            opts=opts_(*args.depends_on),
        )
        namespace_name = namespace.metadata.apply(lambda m: m.name or NAMESPACE)

        release = k8s.helm.v3.Release(
            f"{name}-monitoring",
            name=RELEASE,
            chart=CHART,
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=namespace_name,
            values=chart_values(),
            cleanup_on_fail=True,
            opts=opts_(namespace),
        )
        k8s.core.v1.ConfigMap(
            f"{name}-grafana-dashboard",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="pingpod-dashboard",
                namespace=namespace_name,
                labels={**PART_OF, **DASHBOARD_LABEL},
            ),
            data={DASHBOARD_FILE.name: DASHBOARD_FILE.read_text()},
            opts=opts_(namespace),
        )
        # A custom resource of the chart's CRDs: created after the release.
        k8s.apiextensions.CustomResource(
            f"{name}-provisioner-podmonitor",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="provisioner", namespace=args.app_namespace, labels=dict(PART_OF)
            ),
            spec=pod_monitor_spec(),
            opts=opts_(release),
        )

        self.grafana_port_forward = pulumi.Output.from_input(
            f"kubectl -n {NAMESPACE} port-forward svc/{GRAFANA_SERVICE} 3000:80"
        )
        self.grafana_password_command = pulumi.Output.from_input(
            f"kubectl -n {NAMESPACE} get secret {GRAFANA_SERVICE} "
            "-o jsonpath='{.data.admin-password}' | base64 -d"
        )
        self.register_outputs(
            {
                "grafana_port_forward": self.grafana_port_forward,
                "grafana_password_command": self.grafana_password_command,
            }
        )
