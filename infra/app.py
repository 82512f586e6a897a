"""The application on Kubernetes: namespace, RBAC, provisioner, echo pod template, policies.

Kubernetes only, so the same component deploys onto EKS (``mode: aws``) and onto
any cluster in the current kubeconfig (``mode: app``). The echo pods are not
declared here: the provisioner creates them at run time, one ReplicaSet per pool
member, from the pod template this component publishes in a ConfigMap.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from infra.rbac import PROVISIONER_RULES, ROLE_NAME, SERVICE_ACCOUNT_NAME, PolicyRule
from infra.settings import AppSettings
from infra.workload import (
    APP_UID,
    ECHO_PORT,
    ECHO_SELECTOR,
    PART_OF,
    PROVISIONER_CPU_LIMIT_M,
    PROVISIONER_CPU_REQUEST_M,
    PROVISIONER_HEALTH_PATH,
    PROVISIONER_LABELS,
    PROVISIONER_MEMORY_LIMIT_MI,
    PROVISIONER_MEMORY_REQUEST_MI,
    PROVISIONER_NAME,
    PROVISIONER_PORT,
    PROVISIONER_PORT_NAME,
    PROVISIONER_READY_PATH,
    PROVISIONER_SELECTOR,
    QUOTA_NAME,
    TEMPLATE_CONFIGMAP,
    TEMPLATE_DIR,
    TEMPLATE_FILE,
    echo_pod_template,
    quota_hard,
    restricted_container_security,
    restricted_pod_security,
)

# The provisioner pod's volumes: the echo template (read-only) and a small /tmp.
TEMPLATE_VOLUME: Final = "echo-template"
TMP_VOLUME: Final = "tmp"
# On the provisioner's pods: a new echo template rolls them (they read it at start).
TEMPLATE_HASH_ANNOTATION: Final = "pingpod.dev/echo-template-sha256"


def pulumi_shaped(value: Any) -> Any:
    """API-shaped data (camelCase keys, as in ``infra.workload``) with the snake_case
    keys of Pulumi's argument types, at every level."""
    if isinstance(value, Mapping):
        return {
            re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): pulumi_shaped(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [pulumi_shaped(v) for v in value]
    return value


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


# The readiness probe: a replica that fails /ready this many times, this often,
# leaves the Service's endpoints, and the load balancer controller deregisters it.
READY_PERIOD_SECONDS = 5
READY_FAILURES = 2
# "Kill my gateway": how long a draining replica keeps its sockets after /ready
# fails, so the ALB has stopped sending it anything new (probe, then the
# controller's deregistration, a few seconds).
GATEWAY_DRAIN_DELAY = READY_PERIOD_SECONDS * READY_FAILURES + 5


def provisioner_env(settings: AppSettings) -> list[k8s.core.v1.EnvVarArgs]:
    """The provisioner's environment: its settings, its identity, the template path."""

    def field_ref(path: str) -> k8s.core.v1.EnvVarSourceArgs:
        return k8s.core.v1.EnvVarSourceArgs(
            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=path)
        )

    plain = {
        "BACKEND": "kubernetes",
        "HOST": "0.0.0.0",
        "PORT": str(PROVISIONER_PORT),
        "POOL_SIZE": str(settings.pool_size),
        "MAX_SESSIONS": str(settings.max_sessions),
        "SESSION_IDLE_TIMEOUT": str(settings.session_idle_timeout),
        "SESSION_MAX_LIFETIME": str(settings.session_max_lifetime),
        "ALLOWED_ORIGINS": ",".join(settings.allowed_origins),
        # Only the ALB (or a port-forward) reaches the pods: trust its
        # X-Forwarded-For so per-IP limits see the visitor's address.
        "FORWARDED_ALLOW_IPS": "*",
        "ECHO_POD_TEMPLATE": f"{TEMPLATE_DIR}/{TEMPLATE_FILE}",
        # "Kill my gateway" needs another replica to carry the sessions meanwhile.
        "ALLOW_GATEWAY_KILL": "true" if settings.allow_gateway_kill else "false",
        "PROVISIONER_REPLICAS": str(settings.provisioner_replicas),
        "DRAIN_DELAY": str(GATEWAY_DRAIN_DELAY),
    }
    return [
        k8s.core.v1.EnvVarArgs(name="NAMESPACE", value_from=field_ref("metadata.namespace")),
        # The Lease holder identity.
        k8s.core.v1.EnvVarArgs(name="POD_NAME", value_from=field_ref("metadata.name")),
        *(k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in plain.items()),
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


@dataclass(frozen=True)
class _Scope:
    """What the App's objects share: a resource-name prefix, the namespace, parent, provider."""

    prefix: str
    namespace: pulumi.Output[str]
    parent: pulumi.Resource
    provider: k8s.Provider | None

    def meta(
        self, name: str, labels: Mapping[str, str] | None = None
    ) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=self.namespace, labels={**PART_OF, **(labels or {})}
        )

    def opts(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self.parent, provider=self.provider, depends_on=list(depends_on) or None
        )


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
        scope = _Scope(name, _namespace(name, args, self, provider), self, provider)

        service_account, role_binding = _rbac(scope)
        template_json, template = _echo_template(scope, args)
        _quota(scope, args.settings)
        _network_policies(scope)
        deployment = _deployment(
            scope, args, template_json, depends_on=[role_binding, template, service_account]
        )
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


def _rbac(scope: _Scope) -> tuple[k8s.core.v1.ServiceAccount, k8s.rbac.v1.RoleBinding]:
    """The provisioner's ServiceAccount, bound to its Role (``infra.rbac``)."""
    service_account = k8s.core.v1.ServiceAccount(
        f"{scope.prefix}-provisioner-sa",
        metadata=scope.meta(SERVICE_ACCOUNT_NAME, PROVISIONER_LABELS),
        opts=scope.opts(),
    )
    role = k8s.rbac.v1.Role(
        f"{scope.prefix}-provisioner-role",
        metadata=scope.meta(ROLE_NAME, PROVISIONER_LABELS),
        rules=policy_rules(PROVISIONER_RULES),
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
    return service_account, role_binding


def _echo_template(
    scope: _Scope, args: AppArgs
) -> tuple[pulumi.Output[str], k8s.core.v1.ConfigMap]:
    """The echo pod template as JSON, and the ConfigMap that publishes it."""
    template_json = pulumi.Output.from_input(args.echo_image).apply(
        lambda image: json.dumps(
            echo_pod_template(
                image,
                arm64_only=args.settings.echo_arm64_only,
                node_selector=args.settings.node_selector,
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


def _quota(scope: _Scope, settings: AppSettings) -> None:
    k8s.core.v1.ResourceQuota(
        f"{scope.prefix}-quota",
        metadata=scope.meta(QUOTA_NAME),
        spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=quota_hard(settings)),
        opts=scope.opts(),
    )


def _network_policies(scope: _Scope) -> None:
    for role, name, spec in (
        ("default-deny", "default-deny-ingress", _deny_all_ingress()),
        ("echo", "echo", _echo_ingress_only_from_provisioner()),
        ("provisioner", "provisioner", _provisioner_ingress()),
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
    # (on AWS only the ALB's security group can reach it).
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


def _deployment(
    scope: _Scope,
    args: AppArgs,
    template_json: pulumi.Output[str],
    depends_on: Sequence[pulumi.Resource],
) -> k8s.apps.v1.Deployment:
    """The provisioner: rolled one surge pod at a time, never below the replica count."""
    return k8s.apps.v1.Deployment(
        f"{scope.prefix}-provisioner",
        metadata=scope.meta(PROVISIONER_NAME, PROVISIONER_LABELS),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=args.settings.provisioner_replicas,
            revision_history_limit=3,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                    max_unavailable=0, max_surge=1
                ),
            ),
            template=_provisioner_pod(args, template_json),
        ),
        opts=scope.opts(*depends_on),
    )


def _provisioner_pod(
    args: AppArgs, template_json: pulumi.Output[str]
) -> k8s.core.v1.PodTemplateSpecArgs:
    # A new echo template (say, a new echo image) rolls the provisioner,
    # which reads the template at start.
    template_hash = template_json.apply(lambda t: hashlib.sha256(t.encode()).hexdigest()[:16])

    def spread(key: str) -> k8s.core.v1.TopologySpreadConstraintArgs:
        # ScheduleAnyway: a one-node or one-zone cluster still runs every replica.
        return k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
        )

    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(
            labels=dict(PROVISIONER_LABELS),
            annotations={TEMPLATE_HASH_ANNOTATION: template_hash},
        ),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=SERVICE_ACCOUNT_NAME,
            # The one pod here that talks to the Kubernetes API.
            automount_service_account_token=True,
            enable_service_links=False,
            termination_grace_period_seconds=40,
            security_context=k8s.core.v1.PodSecurityContextArgs(
                **pulumi_shaped({**restricted_pod_security(), "fsGroup": APP_UID})
            ),
            topology_spread_constraints=[
                spread("kubernetes.io/hostname"),
                spread("topology.kubernetes.io/zone"),
            ],
            # The stack's nodeSelector alone (echoArm64Only is the echo pods'); none when empty.
            node_selector=dict(args.settings.node_selector) or None,
            containers=[_provisioner_container(args)],
            volumes=_provisioner_volumes(),
        ),
    )


def _provisioner_container(args: AppArgs) -> k8s.core.v1.ContainerArgs:
    return k8s.core.v1.ContainerArgs(
        name=PROVISIONER_NAME,
        image=args.provisioner_image,
        image_pull_policy="IfNotPresent",
        ports=[
            k8s.core.v1.ContainerPortArgs(
                name=PROVISIONER_PORT_NAME, container_port=PROVISIONER_PORT, protocol="TCP"
            )
        ],
        env=provisioner_env(args.settings),
        liveness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(
                path=PROVISIONER_HEALTH_PATH, port=PROVISIONER_PORT_NAME
            ),
            initial_delay_seconds=5,
            period_seconds=10,
            timeout_seconds=2,
            failure_threshold=3,
        ),
        readiness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(
                path=PROVISIONER_READY_PATH, port=PROVISIONER_PORT_NAME
            ),
            period_seconds=READY_PERIOD_SECONDS,
            timeout_seconds=2,
            failure_threshold=READY_FAILURES,
        ),
        # Let the ALB stop sending new connections before the server stops.
        lifecycle=k8s.core.v1.LifecycleArgs(
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(sleep=k8s.core.v1.SleepActionArgs(seconds=10))
        ),
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={
                "cpu": f"{PROVISIONER_CPU_REQUEST_M}m",
                "memory": f"{PROVISIONER_MEMORY_REQUEST_MI}Mi",
            },
            limits={
                "cpu": f"{PROVISIONER_CPU_LIMIT_M}m",
                "memory": f"{PROVISIONER_MEMORY_LIMIT_MI}Mi",
            },
        ),
        security_context=k8s.core.v1.SecurityContextArgs(
            **pulumi_shaped(restricted_container_security())
        ),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(
                name=TEMPLATE_VOLUME, mount_path=TEMPLATE_DIR, read_only=True
            ),
            k8s.core.v1.VolumeMountArgs(name=TMP_VOLUME, mount_path="/tmp"),  # noqa: S108 (emptyDir)
        ],
    )


def _provisioner_volumes() -> list[k8s.core.v1.VolumeArgs]:
    return [
        k8s.core.v1.VolumeArgs(
            name=TEMPLATE_VOLUME,
            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=TEMPLATE_CONFIGMAP),
        ),
        k8s.core.v1.VolumeArgs(
            name=TMP_VOLUME,
            empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="16Mi"),
        ),
    ]


def _disruption_budget(scope: _Scope) -> None:
    k8s.policy.v1.PodDisruptionBudget(
        f"{scope.prefix}-provisioner-pdb",
        metadata=scope.meta(PROVISIONER_NAME, PROVISIONER_LABELS),
        spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
            max_unavailable=1,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
        ),
        opts=scope.opts(),
    )


def _service(scope: _Scope) -> k8s.core.v1.Service:
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
    scope: _Scope, target_group_arn: pulumi.Input[str], depends_on: Sequence[pulumi.Resource]
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
