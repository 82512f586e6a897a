"""Karpenter on EKS: session nodes launched on demand beside the managed node group.

Declared here: the session nodes' IAM role and its EKS access entry (type
``EC2_LINUX``, so they join the cluster), the interruption queue with its
EventBridge rules and policy, the controller's IAM role granted through EKS
Pod Identity to ``kube-system/karpenter``, the Karpenter charts (CRDs, then
the controller), and the session nodes themselves: one EC2NodeClass and one
NodePool (``infra/session_nodes.py``). The controller runs on the managed node
group, the system group (the chart keeps it off the nodes it launches).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.cluster import NODE_POLICIES
from infra.karpenter_policy import (
    INTERRUPTION_EVENTS,
    QUEUE_RETENTION_SECONDS,
    controller_policy,
    queue_policy,
)
from infra.lbc_policy import POD_IDENTITY_TRUST
from infra.nodes import AUTOSCALING_REQUESTS
from infra.session_nodes import NODE_CLASS_GROUP, NODE_POOL, node_class_spec, node_pool_spec
from infra.settings import AutoscalingSettings
from infra.workload import PART_OF

CHART: Final = "oci://public.ecr.aws/karpenter/karpenter"
# The CRDs as a chart of their own: Helm installs a chart's crds/ once and
# never upgrades them; this chart's are templates, upgraded with the version.
CRD_CHART: Final = "oci://public.ecr.aws/karpenter/karpenter-crd"
NAMESPACE: Final = "kube-system"
SERVICE_ACCOUNT: Final = "karpenter"
# The controller's memory limit (its request is infra/nodes.py's): room for a
# burst while it reloads instance types, above what it holds at rest.
CONTROLLER_MEMORY_LIMIT: Final = "1Gi"
EC2_TRUST: Final = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass
class KarpenterArgs:
    cluster_name: pulumi.Input[str]
    # Where session nodes go: the profile's node subnets (private, or public in
    # the lean profile) and the nodes' security group, the EKS cluster's.
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    public_nodes: bool
    disk_size_gib: int
    settings: AutoscalingSettings
    k8s_provider: k8s.Provider
    # What the controller needs first and must outlive: the system nodes it
    # runs on and the Pod Identity agent that gives it its role.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class Karpenter(pulumi.ComponentResource):
    """Karpenter with its AWS side, one EC2NodeClass and one NodePool of session nodes.

    On ``pulumi destroy`` the NodePool goes first: Karpenter drains and
    terminates its nodes before the controller, its role and the node role go.
    """

    node_pool: pulumi.Output[str]
    interruption_queue: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    controller: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:karpenter:Karpenter", name, None, opts)
        node_role, node_access = self._node_identity(name, args)
        queue, queue_ready = self._interruption_queue(name)
        identity = self._controller_identity(name, args, node_role, queue)
        self.controller = self._controller(name, args, queue, [*identity, *queue_ready])
        node_pool = self._session_nodes(name, args, node_role, node_access)

        # The name is fixed; derived from the URN so a consumer waits for the NodePool.
        self.node_pool = node_pool.urn.apply(lambda _: NODE_POOL)
        self.interruption_queue = queue.name
        self.node_role_name = node_role.name
        self.register_outputs(
            {
                "node_pool": self.node_pool,
                "interruption_queue": self.interruption_queue,
                "node_role_name": self.node_role_name,
            }
        )

    def _node_identity(
        self, name: str, args: KarpenterArgs
    ) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
        """The session nodes' role (the managed nodes' policies) and its access entry.

        A role of their own: EKS already made an access entry for the managed
        node group's role, and a second entry for it would be refused.
        """
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-session-node-role",
            assume_role_policy=json.dumps(EC2_TRUST),
            description="pingpod session nodes (launched by Karpenter)",
            opts=child,
        )
        attachments: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-session-node-{role_name}", role=role.name, policy_arn=arn, opts=child
            )
            for role_name, arn in NODE_POLICIES.items()
        ]
        entry = aws.eks.AccessEntry(
            f"{name}-session-node-access",
            cluster_name=args.cluster_name,
            principal_arn=role.arn,
            type="EC2_LINUX",
            opts=child,
        )
        return role, [entry, *attachments]

    def _interruption_queue(self, name: str) -> tuple[aws.sqs.Queue, list[pulumi.Resource]]:
        """The SQS queue Karpenter reads interruption events from, and what feeds it."""
        child = pulumi.ResourceOptions(parent=self)
        queue = aws.sqs.Queue(
            f"{name}-karpenter-queue",
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        policy = aws.sqs.QueuePolicy(
            f"{name}-karpenter-queue-policy",
            queue_url=queue.url,
            policy=queue.arn.apply(lambda arn: json.dumps(queue_policy(arn))),
            opts=child,
        )
        ready: list[pulumi.Resource] = [policy]
        for event, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-karpenter-{event}",
                description=f"Karpenter interruption handling: {pattern['detail-type'][0]}",
                event_pattern=json.dumps(pattern),
                opts=child,
            )
            ready.append(
                aws.cloudwatch.EventTarget(
                    f"{name}-karpenter-{event}",
                    rule=rule.name,
                    arn=queue.arn,
                    target_id="karpenter-interruption-queue",
                    opts=child,
                )
            )
        return queue, ready

    def _controller_identity(
        self, name: str, args: KarpenterArgs, node_role: aws.iam.Role, queue: aws.sqs.Queue
    ) -> list[pulumi.Resource]:
        """The controller's role, its policy, and the Pod Identity association that grants it."""
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        region = aws.get_region_output(opts=invoke).region
        account = aws.get_caller_identity_output(opts=invoke).account_id

        def document(values: list[Any]) -> str:
            cluster, region_name, account_id, node_role_arn, queue_arn = values
            return json.dumps(
                controller_policy(
                    cluster=cluster,
                    region=region_name,
                    account=account_id,
                    node_role_arn=node_role_arn,
                    queue_arn=queue_arn,
                )
            )

        role = aws.iam.Role(
            f"{name}-karpenter-role",
            assume_role_policy=json.dumps(POD_IDENTITY_TRUST),
            description="Karpenter controller (EKS Pod Identity)",
            opts=child,
        )
        policy = aws.iam.Policy(
            f"{name}-karpenter-policy",
            policy=pulumi.Output.all(
                args.cluster_name, region, account, node_role.arn, queue.arn
            ).apply(document),
            description="Karpenter controller, as documented upstream",
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-karpenter-policy", role=role.name, policy_arn=policy.arn, opts=child
        )
        association = aws.eks.PodIdentityAssociation(
            f"{name}-karpenter-identity",
            cluster_name=args.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=role.arn,
            opts=child,
        )
        return [attachment, association]

    def _controller(
        self,
        name: str,
        args: KarpenterArgs,
        queue: aws.sqs.Queue,
        needs: Sequence[pulumi.Resource],
    ) -> k8s.helm.v3.Release:
        """The CRD chart, then the controller's, sized for the system group."""
        cpu, memory = AUTOSCALING_REQUESTS["karpenter"]
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        crds = k8s.helm.v3.Release(
            f"{name}-karpenter-crd",
            name="karpenter-crd",
            chart=CRD_CHART,
            version=args.settings.karpenter_chart_version,
            namespace=NAMESPACE,
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.k8s_provider, depends_on=list(args.depends_on)
            ),
        )
        return k8s.helm.v3.Release(
            f"{name}-karpenter",
            name="karpenter",
            chart=CHART,
            version=args.settings.karpenter_chart_version,
            namespace=NAMESPACE,
            skip_crds=True,
            values={
                "settings": {"clusterName": args.cluster_name, "interruptionQueue": queue.name},
                # The chart's affinity keeps replicas on separate nodes and off the
                # nodes Karpenter launches: one per system node.
                "replicas": args.settings.controller_replicas,
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "controller": {
                    # Given explicitly: the nodes' IMDS hop limit of 1 keeps pods
                    # from looking the region up.
                    "env": [{"name": "AWS_REGION", "value": region}],
                    "resources": {
                        "requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
                        "limits": {"memory": CONTROLLER_MEMORY_LIMIT},
                    },
                },
            },
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.k8s_provider,
                # Destroy order: the controller goes before the nodes it runs on,
                # the identity it runs with and the queue it reads.
                depends_on=[*args.depends_on, crds, *needs],
            ),
        )

    def _session_nodes(
        self,
        name: str,
        args: KarpenterArgs,
        node_role: aws.iam.Role,
        node_access: Sequence[pulumi.Resource],
    ) -> k8s.apiextensions.CustomResource:
        """The EC2NodeClass and the NodePool, after the controller that handles them."""
        settings = args.settings

        def class_spec(values: list[Any]) -> dict[str, Any]:
            role, subnets, security_group = values
            return node_class_spec(
                role=role,
                subnet_ids=subnets,
                security_group_id=security_group,
                public=args.public_nodes,
                disk_size_gib=args.disk_size_gib,
            )

        def opts(*depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=args.k8s_provider, depends_on=list(depends_on)
            )

        node_class = k8s.apiextensions.CustomResource(
            f"{name}-session-node-class",
            api_version=f"{NODE_CLASS_GROUP}/v1",
            kind="EC2NodeClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NODE_POOL, labels=dict(PART_OF)),
            spec=pulumi.Output.all(node_role.name, args.subnet_ids, args.security_group_id).apply(
                class_spec
            ),
            # Its nodes must be able to join while it exists: the access entry and
            # the role's policies outlive it.
            opts=opts(self.controller, *node_access),
        )
        return k8s.apiextensions.CustomResource(
            f"{name}-session-node-pool",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NODE_POOL, labels=dict(PART_OF)),
            spec=node_pool_spec(
                capacity_types=settings.session_capacity_types,
                max_cpu=settings.session_nodes_max_cpu,
            ),
            opts=opts(self.controller, node_class),
        )
