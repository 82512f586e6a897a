"""EKS: the control plane, one Graviton managed node group, and a Kubernetes provider."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from infra.identity import CREATOR_TAG, Principal, admins_to_grant
from infra.keys import GRAVITON_INSTANCE_TYPE
from infra.settings import AwsSettings

ARM_AMI_TYPE = "AL2023_ARM_64_STANDARD"
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
NODE_POLICIES = {
    "worker": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    # The VPC CNI (aws-node) runs with the node role's credentials.
    "cni": "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "ecr": "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
}
# IMDSv2 only, and a hop limit of 1: containers (one network hop further away)
# cannot reach the instance metadata service, so no pod can borrow the node
# role. Nothing in a pod needs IMDS: the AWS Load Balancer Controller is given
# its region and VPC id and gets credentials from EKS Pod Identity, and the
# agents that do use IMDS (aws-node, eks-pod-identity-agent) run on the host
# network.
IMDS_HOP_LIMIT = 1


def _entry_key(arn: str) -> str:
    """A stable map key for an access entry: the principal's name, sanitised."""
    return re.sub(r"[^a-zA-Z0-9-]", "-", arn.rsplit("/", 1)[-1]).lower()


@dataclass
class ClusterArgs:
    # The EKS cluster's own name, e.g. "pingpod-prod": readable in the console
    # and for `aws eks update-kubeconfig --name`, and known before the cluster
    # exists. (Changing it replaces the cluster.)
    cluster_name: str
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    # The stack's Kubernetes version, nodes, profile and admins, as
    # infra.config.load_config validated them: no defaults of its own here.
    # The lean profile puts Spot nodes in the public subnets (a public IPv4
    # each, from the subnet; the node security group admits only the ALB and
    # the cluster itself); otherwise they are on demand, in the private subnets.
    settings: AwsSettings
    # Who created the cluster (infra.identity.cluster_creator): EKS made them
    # admin then, so no entry is declared for them, and the cluster is tagged
    # with them. None: every admin gets an entry and no tag is set.
    creator: Principal | None = None


class Cluster(pulumi.ComponentResource):
    """An EKS cluster with API authentication and an arm64 managed node group.

    No default node group: ``skip_default_node_group`` drops pulumi-eks's
    self-managed x86 group. Nodes live in the private subnets (the public ones
    in the lean profile, see ``AwsSettings.public_nodes``), pods get VPC IPs
    through the VPC CNI with prefix delegation (so a small node holds ~100 session
    pods: EKS sets each managed node's maxPods itself, 110 under 30 vCPUs) and
    its network policy agent (so NetworkPolicies are enforced).
    Callers use ``provider`` for every Kubernetes object and make anything that
    needs nodes to run depend on ``node_group``.
    """

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider
    node_group: eks.ManagedNodeGroup
    node_security_group_id: pulumi.Output[str]
    pod_identity_agent: aws.eks.Addon

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        settings = args.settings
        for instance_type in settings.node_instance_types:
            if not GRAVITON_INSTANCE_TYPE.match(instance_type):
                raise ValueError(
                    f"{instance_type!r} is not a Graviton instance type; "
                    f"the nodes run {ARM_AMI_TYPE} and the images are linux/arm64"
                )

        cluster = eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=settings.kubernetes_version,
            vpc_id=args.vpc_id,
            public_subnet_ids=args.public_subnet_ids,
            private_subnet_ids=args.private_subnet_ids,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=self._access_entries(args),
            # Read back on later runs: whom EKS made admin when it created the cluster.
            cluster_tags={CREATOR_TAG: args.creator.arn} if args.creator else None,
            skip_default_node_group=True,
            # Nodes of a managed node group get the EKS-created cluster security
            # group; pulumi-eks's extra node/cluster groups would go unused.
            skip_default_security_groups=True,
            # Workload identity is EKS Pod Identity; no IRSA OIDC provider.
            create_oidc_provider=False,
            endpoint_public_access=True,
            endpoint_private_access=True,
            vpc_cni_options=eks.VpcCniOptionsArgs(
                enable_prefix_delegation=True,
                warm_prefix_target=1,
                enable_network_policy=True,
            ),
            opts=child,
        )

        node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{role}",
                role=node_role.name,
                policy_arn=arn,
                opts=child,
            )
            for role, arn in NODE_POLICIES.items()
        ]

        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-node-lt",
            description="pingpod EKS nodes: IMDSv2 only, encrypted gp3 root",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=IMDS_HOP_LIMIT,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=settings.node_disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type="instance", tags={"Name": f"{name}-node"}
                )
            ],
            update_default_version=True,
            opts=child,
        )

        node_group = eks.ManagedNodeGroup(
            f"{name}-nodes",
            cluster=cluster,
            node_role=node_role,
            ami_type=ARM_AMI_TYPE,
            instance_types=list(settings.node_instance_types),
            capacity_type=settings.capacity_type,
            subnet_ids=args.public_subnet_ids if settings.public_nodes else args.private_subnet_ids,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=settings.node_min_size,
                desired_size=settings.node_desired_size,
                max_size=settings.node_max_size,
            ),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=launch_template.id,
                version=launch_template.latest_version.apply(str),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )

        # The name is fixed, but consumers must still wait for the cluster:
        # derive it from the cluster's URN so the dependency travels with it.
        cluster_name = cluster.urn.apply(lambda _: args.cluster_name)
        # The agent is a DaemonSet: EKS reports the addon healthy only once it
        # runs on a node, so it waits for the node group.
        pod_identity_agent = aws.eks.Addon(
            f"{name}-pod-identity-agent",
            cluster_name=cluster_name,
            addon_name="eks-pod-identity-agent",
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_group]),
        )

        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=cluster.kubeconfig_json,
            enable_server_side_apply=True,
            opts=child,
        )

        self.cluster_name = cluster_name
        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig_json)
        self.provider = provider
        self.node_group = node_group
        self.pod_identity_agent = pod_identity_agent
        self.node_security_group_id = cluster.cluster_security_group_id
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "node_security_group_id": self.node_security_group_id,
            }
        )

    def _access_entries(self, args: ClusterArgs) -> dict[str, eks.AccessEntryArgs]:
        """An admin access entry for every clusterAdmins principal but the creator."""
        granted = admins_to_grant(args.settings.cluster_admins, args.creator)
        for arn in args.settings.cluster_admins:
            if arn not in granted:
                pulumi.log.info(
                    f"clusterAdmins: no access entry for {arn}: it created the cluster, "
                    "and EKS made it admin then",
                    resource=self,
                )
        return {
            _entry_key(arn): eks.AccessEntryArgs(
                principal_arn=arn,
                access_policies={
                    "cluster-admin": eks.AccessPolicyAssociationArgs(
                        policy_arn=CLUSTER_ADMIN_POLICY,
                        access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    )
                },
            )
            for arn in granted
        }
