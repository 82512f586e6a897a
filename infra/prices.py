"""AWS prices for the monthly estimate (``python -m infra.cost``), by region.

On-demand, Linux, USD, before tax, as the AWS public pricing pages list them
on ``PRICES_DATE``: EKS (https://aws.amazon.com/eks/pricing/), EC2 on-demand
(https://aws.amazon.com/ec2/pricing/on-demand/), EBS
(https://aws.amazon.com/ebs/pricing/), VPC for NAT gateways and public IPv4
addresses (https://aws.amazon.com/vpc/pricing/), Elastic Load Balancing
(https://aws.amazon.com/elasticloadbalancing/pricing/), Route 53
(https://aws.amazon.com/route53/pricing/) and ECR
(https://aws.amazon.com/ecr/pricing/). Add a region by copying its figures
from those pages; a region missing here is an error, never a guess.

Spot has no list price: it moves with demand, per zone. The estimate assumes
``SPOT_SHARE`` of the on-demand price, the upper end of what t4g Spot has
cost in these regions (check the console's Spot price history, or
https://aws.amazon.com/ec2/spot/pricing/, for today's figure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

PRICES_DATE: Final = "2026-11-23"
HOURS_PER_MONTH: Final = 730
SPOT_SHARE: Final = 0.35


@dataclass(frozen=True)
class RegionPrices:
    eks_hour: float  # control plane, standard support
    eks_extended_hour: float  # control plane, extended support
    instance_hour: Mapping[str, float]  # on demand, Linux
    gp3_gb_month: float
    nat_gateway_hour: float
    nat_gateway_gb: float  # data processed
    public_ipv4_hour: float  # every public IPv4 address, in use or not
    alb_hour: float
    alb_lcu_hour: float
    route53_zone_month: float  # the first 25 hosted zones
    ecr_gb_month: float


PRICES: Final[Mapping[str, RegionPrices]] = {
    "eu-west-1": RegionPrices(
        eks_hour=0.10,
        eks_extended_hour=0.60,
        instance_hour={"t4g.small": 0.0184, "t4g.medium": 0.0368, "t4g.large": 0.0736},
        gp3_gb_month=0.088,
        nat_gateway_hour=0.048,
        nat_gateway_gb=0.048,
        public_ipv4_hour=0.005,
        alb_hour=0.0252,
        alb_lcu_hour=0.008,
        route53_zone_month=0.50,
        ecr_gb_month=0.10,
    ),
    "us-east-1": RegionPrices(
        eks_hour=0.10,
        eks_extended_hour=0.60,
        instance_hour={"t4g.small": 0.0168, "t4g.medium": 0.0336, "t4g.large": 0.0672},
        gp3_gb_month=0.08,
        nat_gateway_hour=0.045,
        nat_gateway_gb=0.045,
        public_ipv4_hour=0.005,
        alb_hour=0.0225,
        alb_lcu_hour=0.008,
        route53_zone_month=0.50,
        ecr_gb_month=0.10,
    ),
}

# Usage the estimate assumes where the bill depends on traffic.
# ALB capacity units: a WebSocket ping a second from ten open pages is a few
# kB/s, a few hundredths of an LCU; 0.02 LCU on average.
ALB_LCU_AVERAGE: Final = 0.02
# NAT data: image pulls when nodes start, OS updates; 5 GB a month.
NAT_GB_MONTH: Final = 5.0
# ECR: both images' recent versions and the build cache.
ECR_GB: Final = 1.5
