"""The application on Kubernetes: the App component, which wires its objects together.

Kubernetes only, so the same component deploys onto EKS (``mode: aws``) and onto
any cluster in the current kubeconfig (``mode: app``). The echo pods are not
declared here: the provisioner creates them at run time, one ReplicaSet per pool
member, from the pod template this component publishes in a ConfigMap.

Declared here: the namespace, the provisioner's RBAC (its Role, and a
read-only ClusterRole on nodes for the page's node strip), the echo template's
ConfigMap, the provisioner's PodDisruptionBudget, Service and TargetGroupBinding.
The provisioner's Deployment is ``infra.provisioner``'s, its
HorizontalPodAutoscaler ``infra.hpa``'s, the quota and the NetworkPolicies
``infra.policies``'s; all of them children of the App.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.app_scope import Scope
from infra.hpa import provisioner_autoscaler
from infra.policies import network_policies, resource_quota
from infra.provisioner import provisioner_deployment
from infra.rbac import (
    NODE_RULES,
    ROLE_NAME,
    SERVICE_ACCOUNT_NAME,
    PolicyRule,
    node_reader_name,
    provisioner_rules,
)
from infra.settings import AppSettings
from infra.workload import (
    PART_OF,
    PROVISIONER_LABELS,
    PROVISIONER_NAME,
    PROVISIONER_PORT,
    PROVISIONER_PORT_NAME,
    PROVISIONER_SELECTOR,
    TEMPLATE_CONFIGMAP,
    TEMPLATE_FILE,
    echo_pod_template,
)


def policy_rules(rules: Sequence[PolicyRule]) -> list[k8s.rbac.v1.PolicyRuleArgs]:
    """The API-shaped rules of ``infra.rbac`` as Pulumi arguments."""
    return [
        k8s.rbac.v1.PolicyRuleArgs(
            api_groups=list(rule["apiGroups"]),
            resources=list(rule["resources"]),
            verbs=list(rule["verbs"]),
        )
        for rule in rules
    ]


@dataclass
class AppArgs:
    settings: AppSettings
    echo_image: pulumi.Input[str]
    provisioner_image: pulumi.Input[str]
    # Where to deploy: an explicit provider (EKS), else a kubeconfig context,
    # else the default provider (the current context).
    provider: k8s.Provider | None = None
    kube_context: str | None = None
    # The Edge's target group; without it no TargetGroupBinding is declared.
    target_group_arn: pulumi.Input[str] | None = None
    # What the binding needs to exist first (the AWS Load Balancer Controller,
    # whose webhook admits it and whose finalizer must run on destroy).
    binding_depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    # What everything here needs first and must outlive: the nodes. Without
    # it the Deployment's rollout wait starts before any node is Ready, and
    # `pulumi destroy` deletes the nodes alongside the namespace, whose pods
    # then never terminate and the namespace never goes. The namespace carries
    # it; every other object is in the namespace and so waits for it too.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class App(pulumi.ComponentResource):
    """Namespace, provisioner (Deployment, RBAC, Service, PDB) and the echo pod policies."""

    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    echo_template: pulumi.Output[str]

    def __init__(
        self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:app:App", name, None, opts)
        provider = args.provider
        if provider is None and args.kube_context:
            provider = k8s.Provider(
                f"{name}-k8s", context=args.kube_context, opts=pulumi.ResourceOptions(parent=self)
            )
        scope = Scope(name, _namespace(name, args, self, provider), self, provider)

        service_account, role_binding = _rbac(scope)
        template_json, template = _echo_template(scope, args)
        resource_quota(scope, args.settings)
        network_policies(scope)
        deployment = provisioner_deployment(
            scope,
            args.settings,
            args.provisioner_image,
            template_json,
            depends_on=[role_binding, template, service_account],
        )
        provisioner_autoscaler(scope, args.settings, deployment)
        _disruption_budget(scope)
        service = _service(scope)
        if args.target_group_arn is not None:
            _target_group_binding(
                scope,
                args.target_group_arn,
                depends_on=[*args.binding_depends_on, service, deployment],
            )

        self.namespace = scope.namespace
        self.service_name = service.metadata.apply(lambda m: m.name or PROVISIONER_NAME)
        self.echo_template = template_json
        self.register_outputs(
            {
                "namespace": self.namespace,
                "service_name": self.service_name,
                "echo_template": self.echo_template,
            }
        )


def _namespace(
    prefix: str, args: AppArgs, parent: pulumi.Resource, provider: k8s.Provider | None
) -> pulumi.Output[str]:
    """The namespace (its name, once created): everything else is in it, so waits for it."""
    settings = args.settings
    ns = k8s.core.v1.Namespace(
        f"{prefix}-ns",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=settings.namespace,
            labels={
                **PART_OF,
                # Every pod here must meet the restricted Pod Security Standard.
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        ),
        opts=pulumi.ResourceOptions(
            parent=parent, provider=provider, depends_on=list(args.depends_on)
        ),
    )
    return ns.metadata.apply(lambda m: m.name or settings.namespace)


def _rbac(scope: Scope) -> tuple[k8s.core.v1.ServiceAccount, k8s.rbac.v1.RoleBinding]:
    """The provisioner's ServiceAccount, bound to its Role (``infra.rbac``)."""
    service_account = k8s.core.v1.ServiceAccount(
        f"{scope.prefix}-provisioner-sa",
        metadata=scope.meta(SERVICE_ACCOUNT_NAME, PROVISIONER_LABELS),
        opts=scope.opts(),
    )
    role = k8s.rbac.v1.Role(
        f"{scope.prefix}-provisioner-role",
        metadata=scope.meta(ROLE_NAME, PROVISIONER_LABELS),
        rules=policy_rules(provisioner_rules()),
        opts=scope.opts(),
    )
    role_binding = k8s.rbac.v1.RoleBinding(
        f"{scope.prefix}-provisioner-rolebinding",
        metadata=scope.meta(ROLE_NAME, PROVISIONER_LABELS),
        role_ref=k8s.rbac.v1.RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="Role", name=ROLE_NAME
        ),
        subjects=[
            k8s.rbac.v1.SubjectArgs(
                kind="ServiceAccount", name=SERVICE_ACCOUNT_NAME, namespace=scope.namespace
            )
        ],
        opts=scope.opts(role, service_account),
    )
    _node_reader(scope, service_account)
    return service_account, role_binding


def _node_reader(scope: Scope, service_account: k8s.core.v1.ServiceAccount) -> None:
    """Read-only access to nodes, cluster-scoped, for the page's node strip (``infra.rbac``)."""
    name = scope.namespace.apply(node_reader_name)
    role = k8s.rbac.v1.ClusterRole(
        f"{scope.prefix}-provisioner-nodes",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels={**PART_OF, **PROVISIONER_LABELS}),
        rules=policy_rules(NODE_RULES),
        opts=scope.opts(),
    )
    k8s.rbac.v1.ClusterRoleBinding(
        f"{scope.prefix}-provisioner-nodes-binding",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, labels={**PART_OF, **PROVISIONER_LABELS}),
        role_ref=k8s.rbac.v1.RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name
        ),
        subjects=[
            k8s.rbac.v1.SubjectArgs(
                kind="ServiceAccount", name=SERVICE_ACCOUNT_NAME, namespace=scope.namespace
            )
        ],
        opts=scope.opts(role, service_account),
    )


def _echo_template(scope: Scope, args: AppArgs) -> tuple[pulumi.Output[str], k8s.core.v1.ConfigMap]:
    """The echo pod template as JSON, and the ConfigMap that publishes it."""
    template_json = pulumi.Output.from_input(args.echo_image).apply(
        lambda image: json.dumps(
            echo_pod_template(
                image,
                arm64_only=args.settings.echo_arm64_only,
                node_selector=args.settings.node_selector,
                session_nodes=args.settings.session_nodes,
                node_lost_seconds=args.settings.node_lost_seconds,
            ),
            indent=2,
            sort_keys=True,
        )
    )
    template = k8s.core.v1.ConfigMap(
        f"{scope.prefix}-echo-template",
        metadata=scope.meta(TEMPLATE_CONFIGMAP, PROVISIONER_LABELS),
        data={TEMPLATE_FILE: template_json},
        opts=scope.opts(),
    )
    return template_json, template


def _disruption_budget(scope: Scope) -> None:
    k8s.policy.v1.PodDisruptionBudget(
        f"{scope.prefix}-provisioner-pdb",
        metadata=scope.meta(PROVISIONER_NAME, PROVISIONER_LABELS),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
        ),
        opts=scope.opts(),
    )


def _service(scope: Scope) -> k8s.core.v1.Service:
    return k8s.core.v1.Service(
        f"{scope.prefix}-provisioner-svc",
        metadata=scope.meta(PROVISIONER_NAME, PROVISIONER_LABELS),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="ClusterIP",
            selector=PROVISIONER_SELECTOR,
            ports=[
                k8s.core.v1.ServicePortArgs(
                    name=PROVISIONER_PORT_NAME,
                    port=PROVISIONER_PORT,
                    target_port=PROVISIONER_PORT_NAME,
                    protocol="TCP",
                )
            ],
        ),
        opts=scope.opts(),
    )


def _target_group_binding(
    scope: Scope, target_group_arn: pulumi.Input[str], depends_on: Sequence[pulumi.Resource]
) -> None:
    """The Edge's target group gets the provisioner's pod IPs (AWS Load Balancer Controller)."""
    k8s.apiextensions.CustomResource(
        f"{scope.prefix}-provisioner-tgb",
        api_version="elbv2.k8s.aws/v1beta1",
        kind="TargetGroupBinding",
        metadata=scope.meta(PROVISIONER_NAME, PROVISIONER_LABELS),
        spec={
            "serviceRef": {"name": PROVISIONER_NAME, "port": PROVISIONER_PORT},
            "targetGroupARN": target_group_arn,
            "targetType": "ip",
        },
        opts=scope.opts(*depends_on),
    )
