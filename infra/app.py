"""The application on Kubernetes: namespace, RBAC, provisioner, echo pod template, policies.

Kubernetes only, so the same component deploys onto EKS (``mode: aws``) and onto
any cluster in the current kubeconfig (``mode: app``). The echo pods are not
declared here: the provisioner creates them at run time, one ReplicaSet per pool
member, from the pod template this component publishes in a ConfigMap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.config import AppSettings
from infra.rbac import PROVISIONER_RULES, ROLE_NAME, SERVICE_ACCOUNT_NAME, PolicyRule
from infra.workload import (
    APP_UID,
    ECHO_PORT,
    ECHO_SELECTOR,
    PART_OF,
    PROVISIONER_CPU_LIMIT_M,
    PROVISIONER_CPU_REQUEST_M,
    PROVISIONER_LABELS,
    PROVISIONER_MEMORY_LIMIT_MI,
    PROVISIONER_MEMORY_REQUEST_MI,
    PROVISIONER_NAME,
    PROVISIONER_PORT,
    PROVISIONER_SELECTOR,
    TEMPLATE_DIR,
    TEMPLATE_FILE,
    echo_pod_template,
    quota_hard,
    restricted_container_security,
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


class App(pulumi.ComponentResource):
    """Namespace, provisioner (Deployment, RBAC, Service, PDB) and the echo pod policies."""

    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    echo_template: pulumi.Output[str]

    def __init__(
        self, name: str, args: AppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:app:App", name, None, opts)
        settings = args.settings
        provider = args.provider
        if provider is None and args.kube_context:
            provider = k8s.Provider(
                f"{name}-k8s", context=args.kube_context, opts=pulumi.ResourceOptions(parent=self)
            )
        child = pulumi.ResourceOptions(parent=self, provider=provider)

        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
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
                parent=self, provider=provider, depends_on=list(args.depends_on)
            ),
        )
        namespace = ns.metadata.apply(lambda m: m.name or settings.namespace)

        def meta(obj_name: str, labels: dict[str, str] | None = None) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(
                name=obj_name, namespace=namespace, labels={**PART_OF, **(labels or {})}
            )

        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-provisioner-sa",
            metadata=meta(SERVICE_ACCOUNT_NAME, PROVISIONER_LABELS),
            opts=child,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-provisioner-role",
            metadata=meta(ROLE_NAME, PROVISIONER_LABELS),
            rules=policy_rules(PROVISIONER_RULES),
            opts=child,
        )
        role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-provisioner-rolebinding",
            metadata=meta(ROLE_NAME, PROVISIONER_LABELS),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=ROLE_NAME
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=SERVICE_ACCOUNT_NAME, namespace=namespace
                )
            ],
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[role, service_account]
            ),
        )

        template_json = pulumi.Output.from_input(args.echo_image).apply(
            lambda image: json.dumps(
                echo_pod_template(image, arm64_only=settings.echo_arm64_only),
                indent=2,
                sort_keys=True,
            )
        )
        template = k8s.core.v1.ConfigMap(
            f"{name}-echo-template",
            metadata=meta("echo-pod-template", PROVISIONER_LABELS),
            data={TEMPLATE_FILE: template_json},
            opts=child,
        )

        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta("pingpod-pods"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=quota_hard(settings)),
            opts=child,
        )
        self._network_policies(name, namespace, child)

        deployment = self._deployment(
            name,
            args,
            meta(PROVISIONER_NAME, PROVISIONER_LABELS),
            template_json,
            pulumi.ResourceOptions(
                parent=self,
                provider=provider,
                depends_on=[role_binding, template, service_account],
            ),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-provisioner-pdb",
            metadata=meta(PROVISIONER_NAME, PROVISIONER_LABELS),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
            ),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-provisioner-svc",
            metadata=meta(PROVISIONER_NAME, PROVISIONER_LABELS),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=PROVISIONER_SELECTOR,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=PROVISIONER_PORT, target_port="http", protocol="TCP"
                    )
                ],
            ),
            opts=child,
        )

        if args.target_group_arn is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-provisioner-tgb",
                api_version="elbv2.k8s.aws/v1beta1",
                kind="TargetGroupBinding",
                metadata=meta(PROVISIONER_NAME, PROVISIONER_LABELS),
                spec={
                    "serviceRef": {"name": PROVISIONER_NAME, "port": PROVISIONER_PORT},
                    "targetGroupARN": args.target_group_arn,
                    "targetType": "ip",
                },
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=provider,
                    depends_on=[*args.binding_depends_on, service, deployment],
                ),
            )

        self.namespace = namespace
        self.service_name = service.metadata.apply(lambda m: m.name or PROVISIONER_NAME)
        self.echo_template = template_json
        self.register_outputs(
            {
                "namespace": self.namespace,
                "service_name": self.service_name,
                "echo_template": self.echo_template,
            }
        )

    def _network_policies(
        self, name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> None:
        def np(
            role: str, obj_name: str, spec: k8s.networking.v1.NetworkPolicySpecArgs
        ) -> k8s.networking.v1.NetworkPolicy:
            return k8s.networking.v1.NetworkPolicy(
                f"{name}-netpol-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=obj_name, namespace=namespace, labels=dict(PART_OF)
                ),
                spec=spec,
                opts=opts,
            )

        # Nothing reaches a pod here unless a policy below admits it.
        np(
            "default-deny",
            "default-deny-ingress",
            k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
            ),
        )
        # Echo pods: only the provisioner (the gateway) may connect, on the
        # WebSocket port; and they may connect nowhere (no egress rule at all,
        # not even DNS: an echo server resolves nothing).
        np(
            "echo",
            "echo",
            k8s.networking.v1.NetworkPolicySpecArgs(
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
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(port=ECHO_PORT, protocol="TCP")
                        ],
                    )
                ],
                egress=[],
            ),
        )
        # Provisioner pods: the HTTP port, from wherever the cluster routes it
        # (on AWS only the ALB's security group can reach it).
        np(
            "provisioner",
            "provisioner",
            k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
                policy_types=["Ingress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(
                                port=PROVISIONER_PORT, protocol="TCP"
                            )
                        ]
                    )
                ],
            ),
        )

    def _deployment(
        self,
        name: str,
        args: AppArgs,
        metadata: k8s.meta.v1.ObjectMetaArgs,
        template_json: pulumi.Output[str],
        opts: pulumi.ResourceOptions,
    ) -> k8s.apps.v1.Deployment:
        settings = args.settings
        security = restricted_container_security()
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

        container = k8s.core.v1.ContainerArgs(
            name="provisioner",
            image=args.provisioner_image,
            image_pull_policy="IfNotPresent",
            ports=[
                k8s.core.v1.ContainerPortArgs(
                    name="http", container_port=PROVISIONER_PORT, protocol="TCP"
                )
            ],
            env=provisioner_env(settings),
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/health", port="http"),
                initial_delay_seconds=5,
                period_seconds=10,
                timeout_seconds=2,
                failure_threshold=3,
            ),
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path="/ready", port="http"),
                period_seconds=5,
                timeout_seconds=2,
                failure_threshold=2,
            ),
            # Let the ALB stop sending new connections before the server stops.
            lifecycle=k8s.core.v1.LifecycleArgs(
                pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                    sleep=k8s.core.v1.SleepActionArgs(seconds=10)
                )
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
                allow_privilege_escalation=security["allowPrivilegeEscalation"],
                privileged=security["privileged"],
                read_only_root_filesystem=security["readOnlyRootFilesystem"],
                run_as_non_root=security["runAsNonRoot"],
                run_as_user=APP_UID,
                run_as_group=APP_UID,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
            ),
            volume_mounts=[
                k8s.core.v1.VolumeMountArgs(
                    name="echo-template", mount_path=TEMPLATE_DIR, read_only=True
                ),
                k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),  # noqa: S108 (emptyDir)
            ],
        )

        return k8s.apps.v1.Deployment(
            f"{name}-provisioner",
            metadata=metadata,
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=settings.provisioner_replicas,
                revision_history_limit=3,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_unavailable=0, max_surge=1
                    ),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=dict(PROVISIONER_LABELS),
                        annotations={"pingpod.dev/echo-template-sha256": template_hash},
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=SERVICE_ACCOUNT_NAME,
                        # The one pod here that talks to the Kubernetes API.
                        automount_service_account_token=True,
                        enable_service_links=False,
                        termination_grace_period_seconds=40,
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True,
                            run_as_user=APP_UID,
                            run_as_group=APP_UID,
                            fs_group=APP_UID,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        topology_spread_constraints=[
                            spread("kubernetes.io/hostname"),
                            spread("topology.kubernetes.io/zone"),
                        ],
                        containers=[container],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="echo-template",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                                    name="echo-pod-template"
                                ),
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="tmp",
                                empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                                    medium="Memory", size_limit="16Mi"
                                ),
                            ),
                        ],
                    ),
                ),
            ),
            opts=opts,
        )
