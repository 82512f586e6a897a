"""The provisioner's HorizontalPodAutoscaler: provisionerReplicas to provisionerMaxReplicas, on CPU.

CPU, not open WebSockets per replica: every frame a visitor sends crosses a
provisioner (the gateway relays it), so CPU follows the sockets, and it needs
nothing beyond metrics-server; a custom metric would need Prometheus and an
adapter running whenever the HPA does, which ``monitoring`` leaves optional.

The Deployment it scales is created with the minimum and then left to it:
``infra/provisioner.py`` has Pulumi ignore ``spec.replicas`` while the HPA is
on, so an ``up`` never resets what the HPA chose.
"""

from __future__ import annotations

from typing import Final

import pulumi
import pulumi_kubernetes as k8s

from infra.app_scope import Scope
from infra.settings import AppSettings
from infra.workload import PROVISIONER_CPU_LIMIT_M, PROVISIONER_LABELS, PROVISIONER_NAME

# Scale out when replicas use half a core on average. The request (100m) is
# what an idle replica needs, for placement; the limit is one core, all one
# Python process can use, so the target is an absolute figure between the two
# rather than a percentage of the request.
SCALE_OUT_CPU_M: Final = PROVISIONER_CPU_LIMIT_M // 2
# A replica that goes closes its WebSockets with 1001 and the page reconnects
# to another one: scale in slowly, one replica every two minutes, and only
# after ten minutes below the target (a demo's visitors come in bursts).
SCALE_DOWN_WINDOW_SECONDS: Final = 600
SCALE_DOWN_PERIOD_SECONDS: Final = 120
# On the Deployment: who sets spec.replicas (replicas_owner).
REPLICAS_ANNOTATION: Final = "pingpod.dev/replicas-set-by"


def provisioner_autoscaler(
    scope: Scope, settings: AppSettings, deployment: k8s.apps.v1.Deployment
) -> k8s.autoscaling.v2.HorizontalPodAutoscaler | None:
    """The HPA on the provisioner's Deployment, or None with autoscaling off."""
    if settings.provisioner_max_replicas is None:
        return None
    return k8s.autoscaling.v2.HorizontalPodAutoscaler(
        f"{scope.prefix}-provisioner-hpa",
        metadata=scope.meta(PROVISIONER_NAME, PROVISIONER_LABELS),
        spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
            scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                api_version="apps/v1", kind="Deployment", name=PROVISIONER_NAME
            ),
            min_replicas=settings.provisioner_replicas,
            max_replicas=settings.provisioner_max_replicas,
            metrics=[
                k8s.autoscaling.v2.MetricSpecArgs(
                    type="Resource",
                    resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                        name="cpu",
                        target=k8s.autoscaling.v2.MetricTargetArgs(
                            type="AverageValue", average_value=f"{SCALE_OUT_CPU_M}m"
                        ),
                    ),
                )
            ],
            behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                    stabilization_window_seconds=SCALE_DOWN_WINDOW_SECONDS,
                    policies=[
                        k8s.autoscaling.v2.HPAScalingPolicyArgs(
                            type="Pods", value=1, period_seconds=SCALE_DOWN_PERIOD_SECONDS
                        )
                    ],
                )
            ),
        ),
        opts=scope.opts(deployment),
    )


def replicas_owner(settings: AppSettings) -> str:
    """Who sets the Deployment's replica count, for its ``REPLICAS_ANNOTATION``.

    The annotation also makes switching autoscaling an update of the Deployment:
    Pulumi diffs inputs, not the live object, and without a changed input the
    count the HPA left would stay after the switch to a fixed one.
    """
    return "horizontal-pod-autoscaler" if settings.provisioner_max_replicas else "pulumi"


def replicas_options(settings: AppSettings) -> pulumi.ResourceOptions:
    """The Deployment's options: with the HPA on, its replica count is the HPA's.

    ``ignore_changes`` rather than leaving ``replicas`` out: without it the
    Deployment would start at one replica and, on a stack that turns autoscaling
    on, server-side apply would drop the count it owned back to one until the
    HPA caught up. With it, the Deployment is created with the minimum, and
    pulumi-kubernetes leaves the field out of later applies once another field
    manager (the HPA's kube-controller-manager) owns it, so there is no conflict
    and no reset (pulumi/pulumi-kubernetes#2566).
    """
    if settings.provisioner_max_replicas is None:
        return pulumi.ResourceOptions()
    return pulumi.ResourceOptions(ignore_changes=["spec.replicas"])
