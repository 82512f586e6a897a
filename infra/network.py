"""The VPC: two availability zones, public and private subnets, one NAT gateway."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_awsx as awsx

# Subnet tags the AWS Load Balancer Controller (and EKS) use to discover where
# internet-facing and internal load balancers may go. The ALB itself is a
# Pulumi resource with explicit subnets; the tags keep the VPC usable for
# controller-managed load balancers too.
PUBLIC_SUBNET_TAGS = {"kubernetes.io/role/elb": "1"}
PRIVATE_SUBNET_TAGS = {"kubernetes.io/role/internal-elb": "1"}


@dataclass
class NetworkArgs:
    cidr_block: str = "10.0.0.0/16"
    availability_zones: int = 2


class Network(pulumi.ComponentResource):
    """A VPC with public subnets (ALB, NAT) and private subnets (nodes, pods).

    A single NAT gateway, not one per zone: this is a demo, and a second NAT
    gateway would cost as much as a node. Losing the NAT's zone stops the
    nodes' outbound traffic (image pulls come from ECR through it), not the
    ALB. Subnets are /20s carved by awsx: with VPC CNI prefix delegation each
    node takes /28 prefixes, so the private subnets must leave room for them.
    """

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        vpc = awsx.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr_block,
            number_of_availability_zones=args.availability_zones,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(
                strategy=awsx.ec2.NatGatewayStrategy.SINGLE
            ),
            subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
            subnet_specs=[
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PUBLIC, cidr_mask=20, tags=PUBLIC_SUBNET_TAGS
                ),
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PRIVATE, cidr_mask=20, tags=PRIVATE_SUBNET_TAGS
                ),
            ],
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )

        self.vpc_id = vpc.vpc_id
        self.public_subnet_ids = vpc.public_subnet_ids.apply(list)
        self.private_subnet_ids = vpc.private_subnet_ids.apply(list)
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
            }
        )
