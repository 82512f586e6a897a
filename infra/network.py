"""The VPC: two availability zones, public and private subnets, one NAT gateway or none."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_awsx as awsx

from infra.keys import default_string
from infra.profiles import PROFILES

# Subnet tags the AWS Load Balancer Controller (and EKS) use to discover where
# internet-facing and internal load balancers may go. The ALB itself is a
# Pulumi resource with explicit subnets; the tags keep the VPC usable for
# controller-managed load balancers too.
PUBLIC_SUBNET_TAGS = {"kubernetes.io/role/elb": "1"}
PRIVATE_SUBNET_TAGS = {"kubernetes.io/role/internal-elb": "1"}
# One public and one private subnet in each zone.
SUBNETS_PER_ZONE: Final = 2
# The subnet size of a /16 VPC, kept for every VPC with room for it: a subnet
# whose CIDR changes is replaced, with every node and load balancer in it.
LARGEST_SUBNET_MASK: Final = 20


def _bits_for(count: int) -> int:
    """Address bits needed to give each of ``count`` equal parts its own block."""
    return math.ceil(math.log2(count)) if count > 1 else 0


def subnet_mask(cidr_block: str, availability_zones: int = 2) -> int:
    """The prefix length of every subnet: /20, or as large as the VPC allows.

    awsx's "Auto" strategy gives each zone an equal, aligned block of the VPC
    (one bit per doubling of the zone count) and carves that zone's subnets
    out of it, failing with "Subnets are too large for VPC" when they do not
    fit. Two subnets in each of two zones therefore need the VPC's prefix
    length plus two: a /19 VPC gets /21 subnets and a /20 VPC /22s (1,024
    addresses; a node takes a /28 prefix per 16 pods, so even three full nodes
    use well under half of a private subnet).
    """
    vpc_prefix = ipaddress.ip_network(cidr_block).prefixlen
    smallest_fit = vpc_prefix + _bits_for(availability_zones) + _bits_for(SUBNETS_PER_ZONE)
    return max(LARGEST_SUBNET_MASK, smallest_fit)


@dataclass
class NetworkArgs:
    # Unset: the vpcCidr key's default (infra.keys, as in Pulumi.yaml).
    cidr_block: str = default_string("vpcCidr")
    availability_zones: int = 2
    # False (the lean profile): no NAT gateway, and the private subnets get no
    # route out at all; only the nodes' public subnets reach the internet.
    # Unset: the default profile's.
    nat_gateway: bool = PROFILES[default_string("profile")].nat_gateway


class Network(pulumi.ComponentResource):
    """A VPC with public subnets (ALB, NAT) and private subnets (nodes, pods).

    A single NAT gateway, not one per zone: this is a demo, and a second NAT
    gateway would cost as much as a node. Losing the NAT's zone stops the
    nodes' outbound traffic (image pulls come from ECR through it), not the
    ALB. Without a NAT gateway (the lean profile) the private subnets keep
    their place in the layout, so a stack can switch profiles without
    replacing them, and hold only the EKS control plane's network interfaces.
    Subnets are carved by awsx, /20s when the VPC has room for them
    (``subnet_mask``): with VPC CNI prefix delegation each node takes /28
    prefixes, so the private subnets must leave room for them.
    """

    vpc_id: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        mask = subnet_mask(args.cidr_block, args.availability_zones)

        vpc = awsx.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr_block,
            number_of_availability_zones=args.availability_zones,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(
                strategy=awsx.ec2.NatGatewayStrategy.SINGLE
                if args.nat_gateway
                else awsx.ec2.NatGatewayStrategy.NONE
            ),
            subnet_strategy=awsx.ec2.SubnetAllocationStrategy.AUTO,
            subnet_specs=[
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PUBLIC, cidr_mask=mask, tags=PUBLIC_SUBNET_TAGS
                ),
                awsx.ec2.SubnetSpecArgs(
                    type=awsx.ec2.SubnetType.PRIVATE, cidr_mask=mask, tags=PRIVATE_SUBNET_TAGS
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
