"""metrics-server: the resource metrics API that the provisioner's HorizontalPodAutoscaler reads.

EKS does not run it. Installed from its chart rather than as the EKS add-on:
the chart's values (requests, replicas) are documented with the chart and
checked here, the same way as the load balancer controller's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from infra.nodes import AUTOSCALING_REQUESTS

CHART: Final = "metrics-server"
CHART_REPO: Final = "https://kubernetes-sigs.github.io/metrics-server/"
NAMESPACE: Final = "kube-system"
# The API it serves, as the HorizontalPodAutoscaler controller looks it up.
API_SERVICE: Final = "v1beta1.metrics.k8s.io"
MEMORY_LIMIT: Final = "128Mi"


def chart_values() -> dict[str, Any]:
    """One replica with small requests: it holds the last scrape of a few nodes."""
    cpu, memory = AUTOSCALING_REQUESTS["metrics-server"]
    return {
        # A restart loses a minute of figures: the HorizontalPodAutoscaler holds
        # its replica count meanwhile.
        "replicas": 1,
        "resources": {
            "requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
            "limits": {"memory": MEMORY_LIMIT},
        },
    }


@dataclass
class MetricsServerArgs:
    chart_version: str
    provider: k8s.Provider | None = None
    # What it needs first and must outlive: the nodes.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class MetricsServer(pulumi.ComponentResource):
    """metrics-server in ``kube-system``, serving ``metrics.k8s.io``."""

    api_service: pulumi.Output[str]

    def __init__(
        self, name: str, args: MetricsServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:metrics_server:MetricsServer", name, None, opts)
        release = k8s.helm.v3.Release(
            f"{name}-metrics-server",
            name=CHART,
            chart=CHART,
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO),
            namespace=NAMESPACE,
            values=chart_values(),
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(args.depends_on)
            ),
        )
        self.api_service = release.status.apply(lambda _: API_SERVICE)
        self.register_outputs({"api_service": self.api_service})
