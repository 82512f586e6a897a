"""The VPC's subnets fit every accepted vpcCidr, the way awsx lays them out."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from infra.network import subnet_mask
from tests.infra.harness import run_stack
from tests.infra.render import to_api


def awsx_layout(vpc_cidr: str, zones: int, masks: list[int]) -> list[ipaddress.IPv4Network]:
    """The subnets awsx's "Auto" strategy allocates, or ValueError where it fails.

    Written from awsx's subnetDistributorNew.ts (allocateSubnetCidrBlocks):
    the VPC splits into equal zone blocks (one bit per doubling of the zone
    count), and each zone's subnets are placed one after the other, each
    aligned to its own size, inside its zone block. awsx refuses ("Subnets are
    too large for VPC") when a zone's subnets add up to more than its block.
    """
    vpc = ipaddress.IPv4Network(vpc_cidr)
    zone_prefix = vpc.prefixlen + max(zones - 1, 0).bit_length()
    zone_blocks = list(vpc.subnets(new_prefix=zone_prefix))[:zones]
    if sum(2 ** (32 - m) for m in masks) > zone_blocks[0].num_addresses:
        raise ValueError("Subnets are too large for VPC")
    layout: list[ipaddress.IPv4Network] = []
    for block in zone_blocks:
        start = int(block.network_address)
        for mask in masks:
            size = 2 ** (32 - mask)
            start = -(-start // size) * size  # align up
            subnet = ipaddress.IPv4Network((start, mask))
            assert subnet.subnet_of(block)
            layout.append(subnet)
            start += size
    return layout


def vpc_inputs(vpc_cidr: str) -> dict[str, Any]:
    return to_api(run_stack("prod", {"vpcCidr": vpc_cidr}).one("awsx:ec2:Vpc").inputs)


@pytest.mark.parametrize(
    ("vpc_cidr", "mask"),
    [
        ("10.0.0.0/16", 20),  # the default keeps its /20s (a new CIDR replaces a subnet)
        ("10.0.0.0/18", 20),
        ("10.0.0.0/19", 21),
        ("172.16.0.0/20", 22),  # the smallest VPC accepted
    ],
)
def test_subnets_fit_every_accepted_vpc(vpc_cidr: str, mask: int) -> None:
    vpc = vpc_inputs(vpc_cidr)
    assert vpc["cidrBlock"] == vpc_cidr
    masks = [spec["cidrMask"] for spec in vpc["subnetSpecs"]]
    assert masks == [mask, mask]
    layout = awsx_layout(vpc_cidr, vpc["numberOfAvailabilityZones"], masks)
    assert len(layout) == 4
    assert len(set(layout)) == 4
    for subnet in layout:
        assert subnet.subnet_of(ipaddress.IPv4Network(vpc_cidr))


def test_the_old_fixed_20s_did_not_fit_small_vpcs() -> None:
    """What this layout fixes: /20 subnets in a /19 or /20 VPC fail inside awsx."""
    for vpc_cidr in ("10.0.0.0/19", "10.0.0.0/20"):
        with pytest.raises(ValueError, match="too large"):
            awsx_layout(vpc_cidr, 2, [20, 20])


@pytest.mark.parametrize("vpc_cidr", ["10.0.0.0/16", "10.0.0.0/20"])
@pytest.mark.parametrize("zones", [1, 2, 3, 4])
def test_subnet_mask_fits_any_zone_count(vpc_cidr: str, zones: int) -> None:
    mask = subnet_mask(vpc_cidr, availability_zones=zones)
    assert len(awsx_layout(vpc_cidr, zones, [mask, mask])) == 2 * zones
    if mask > 20:  # no room to spare: one bit larger would not fit
        with pytest.raises(ValueError, match="too large"):
            awsx_layout(vpc_cidr, zones, [mask - 1, mask - 1])
