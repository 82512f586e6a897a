"""The namespace's limits: its ResourceQuota and its four NetworkPolicies.

Default deny for ingress; echo pods reachable only from the provisioner and
reaching nothing; the provisioner reachable on its HTTP port, and on its
metrics port from the monitoring namespace only. The quota's figures are
``infra.workload``'s, next to the requests and limits they add up.
"""

from __future__ import annotations

import pulumi_kubernetes as k8s

from infra.app_scope import Scope
from infra.monitoring import NAMESPACE as MONITORING_NAMESPACE
from infra.settings import AppSettings
from infra.workload import (
    ECHO_PORT,
    ECHO_SELECTOR,
    PROVISIONER_METRICS_PORT,
    PROVISIONER_PORT,
    PROVISIONER_SELECTOR,
    QUOTA_NAME,
    quota_hard,
)


def resource_quota(scope: Scope, settings: AppSettings) -> None:
    """The namespace's ResourceQuota (``infra.workload.quota_hard``): the cost backstop."""
    k8s.core.v1.ResourceQuota(
        f"{scope.prefix}-quota",
        metadata=scope.meta(QUOTA_NAME),
        spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=quota_hard(settings)),
        opts=scope.opts(),
    )


def network_policies(scope: Scope) -> None:
    """Ingress denied by default, then what the echo pods and the provisioner each admit."""
    for role, name, spec in (
        ("default-deny", "default-deny-ingress", _deny_all_ingress()),
        ("echo", "echo", _echo_ingress_only_from_provisioner()),
        ("provisioner", "provisioner", _provisioner_ingress()),
        ("provisioner-metrics", "provisioner-metrics", _provisioner_metrics_ingress()),
    ):
        k8s.networking.v1.NetworkPolicy(
            f"{scope.prefix}-netpol-{role}",
            metadata=scope.meta(name),
            spec=spec,
            opts=scope.opts(),
        )


def _deny_all_ingress() -> k8s.networking.v1.NetworkPolicySpecArgs:
    # Nothing reaches a pod here unless another policy admits it.
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
    )


def _echo_ingress_only_from_provisioner() -> k8s.networking.v1.NetworkPolicySpecArgs:
    # Echo pods: only the provisioner (the gateway) may connect, on the
    # WebSocket port; and they may connect nowhere (no egress rule at all,
    # not even DNS: an echo server resolves nothing).
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=ECHO_SELECTOR),
        policy_types=["Ingress", "Egress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(
                            match_labels=PROVISIONER_SELECTOR
                        )
                    )
                ],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=ECHO_PORT, protocol="TCP")],
            )
        ],
        egress=[],
    )


def _provisioner_ingress() -> k8s.networking.v1.NetworkPolicySpecArgs:
    # Provisioner pods: the HTTP port, from wherever the cluster routes it
    # (on AWS only the ALB's security group can reach it). Not the metrics
    # port: policies add up, and this one names its port.
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
        policy_types=["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                ports=[
                    k8s.networking.v1.NetworkPolicyPortArgs(port=PROVISIONER_PORT, protocol="TCP")
                ]
            )
        ],
    )


def _provisioner_metrics_ingress() -> k8s.networking.v1.NetworkPolicySpecArgs:
    # The metrics port: from pods of the monitoring namespace (its Prometheus)
    # only. Whether monitoring is on or not: without that namespace it admits
    # nothing, and turning monitoring on changes no app object.
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
        policy_types=["Ingress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        # The API server sets this label to every namespace's name (1.21+).
                        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                            match_labels={"kubernetes.io/metadata.name": MONITORING_NAMESPACE}
                        )
                    )
                ],
                ports=[
                    k8s.networking.v1.NetworkPolicyPortArgs(
                        port=PROVISIONER_METRICS_PORT, protocol="TCP"
                    )
                ],
            )
        ],
    )
