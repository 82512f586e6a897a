"""Monthly cost estimate of a stack: ``python -m infra.cost --stack prod [--profile lean]``.

Reads the stack the way the program does (``Pulumi.yaml``'s defaults, then
``Pulumi.<stack>.yaml``, parsed and checked by ``infra.config.load_config``),
prices what it would create with ``infra/prices.py`` and prints one Markdown
table row per item. With autoscaling off the last line is ``total: $N/month``:
the sum of the items, unrounded, rounded to whole dollars (half up). With
autoscaling on, that sum is the floor (``floor: $N/month``: the system nodes
alone), and a second table prices the session nodes Karpenter may add up to
the NodePool's cpu limit, at Spot and at on-demand prices; the last line is
the ceiling, both ways. Bad input (an unknown stack, profile or region, an
unreadable file, a bad key) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Final

import yaml

from infra.config import load_config
from infra.config_reader import ConfigError
from infra.keys import PROJECT
from infra.prices import (
    ALB_LCU_AVERAGE,
    ECR_GB,
    HOURS_PER_MONTH,
    NAT_GB_MONTH,
    PRICES,
    PRICES_DATE,
    SPOT_SHARE,
    RegionPrices,
)
from infra.session_nodes import SESSION_INSTANCE_TYPES, SESSION_NODE_VCPUS
from infra.settings import AwsSettings, StackConfig
from infra.support import EKS_VERSIONS

REPO: Final = Path(__file__).resolve().parents[1]
_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
EXIT_BAD_INPUT: Final = 2


class CostError(Exception):
    """Input the estimate cannot be made from; the message is the one line shown."""


@dataclass(frozen=True)
class Item:
    what: str
    monthly: float


@dataclass(frozen=True)
class CeilingItem:
    """What the session nodes add at the NodePool's limit, bought on Spot or on demand."""

    what: str
    spot: float
    on_demand: float


@dataclass(frozen=True)
class SessionNodes:
    """Karpenter's session nodes at the NodePool's limit (autoscaling on)."""

    max_cpu: int
    capacity_types: tuple[str, ...]
    items: tuple[CeilingItem, ...]


def dollars(amount: float) -> int:
    """Whole dollars, half up."""
    return int(Decimal(str(amount)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Estimate:
    stack: str
    profile: str
    region: str
    items: tuple[Item, ...]
    session_nodes: SessionNodes | None = None

    @property
    def total(self) -> float:
        """The items: everything, or with autoscaling on the floor (no session node)."""
        return sum(item.monthly for item in self.items)

    @property
    def rounded_total(self) -> int:
        return dollars(self.total)

    def ceiling(self, bought: str) -> float:
        """The floor plus every session node the limit allows, all ``spot`` or all ``on_demand``."""
        extra = self.session_nodes.items if self.session_nodes else ()
        return self.total + sum(getattr(item, bought) for item in extra)

    def lines(self) -> list[str]:
        lines = [
            f"stack {self.stack}, profile {self.profile}, region {self.region}: prices of "
            f"{PRICES_DATE} (infra/prices.py), {HOURS_PER_MONTH} hours a month, Spot at "
            f"{SPOT_SHARE:.0%} of on-demand",
            "",
            "| item | monthly |",
            "|---|---:|",
            *(f"| {item.what} | ${item.monthly:,.2f} |" for item in self.items),
            "",
        ]
        nodes = self.session_nodes
        if nodes is None:
            return [*lines, f"total: ${self.rounded_total}/month"]
        on_demand = "on-demand" in nodes.capacity_types
        bought = "Spot, on demand when EC2 has no Spot" if on_demand else "Spot only"
        return [
            *lines,
            f"floor: ${self.rounded_total}/month (the system nodes alone, no session node)",
            "",
            f"Session nodes at the NodePool's limit, {nodes.max_cpu} vCPUs (sessionNodesMaxCpu), "
            f"each priced as the largest type it allows; it buys {bought}:",
            "",
            "| item | monthly on Spot | monthly on demand |",
            "|---|---:|---:|",
            *(
                f"| {item.what} | ${item.spot:,.2f} | ${item.on_demand:,.2f} |"
                for item in nodes.items
            ),
            "",
            f"ceiling: ${dollars(self.ceiling('spot'))}/month on Spot, "
            f"${dollars(self.ceiling('on_demand'))}/month on demand",
        ]


class StackFile:
    """A stack's configuration as the CLI would hand it over: defaults, then the stack file."""

    def __init__(
        self, stack: str, repo: Path = REPO, overrides: Mapping[str, str] | None = None
    ) -> None:
        if not _STACK_NAME.match(stack):
            raise CostError(f"unknown stack {stack!r}: not a stack name")
        path = repo / f"Pulumi.{stack}.yaml"
        if not path.is_file():
            known = sorted(p.name.split(".")[1] for p in repo.glob("Pulumi.*.yaml"))
            raise CostError(f"unknown stack {stack!r}: no {path.name} (stacks: {', '.join(known)})")
        project = _read_yaml(repo / "Pulumi.yaml")
        values: dict[str, Any] = {}
        for key, spec in (project.get("config") or {}).items():
            if isinstance(spec, dict) and "default" in spec:
                values[key if ":" in key else f"{PROJECT}:{key}"] = spec["default"]
        stack_config = _read_yaml(path).get("config") or {}
        if not isinstance(stack_config, dict):
            raise CostError(f"{path.name}: 'config' is not a mapping")
        values |= stack_config
        values |= {f"{PROJECT}:{k}": v for k, v in (overrides or {}).items()}
        self.path = path
        # An empty value in YAML is null: the key is unset.
        self.values = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in values.items()
            if value is not None
        }

    def get(self, key: str) -> str | None:
        """A ``pingpod:`` key (what ``pulumi.Config("pingpod").get`` answers)."""
        return self.values.get(f"{PROJECT}:{key}")

    def region(self) -> str:
        region = self.values.get("aws:region")
        if not region:
            raise CostError(f"{self.path.name}: aws:region is not set")
        return region


def usd(price: float) -> str:
    """A unit price as the pricing pages write it: $0.10, $0.088, $0.0252."""
    text = f"{price:.4f}".rstrip("0")
    decimals = len(text.split(".")[1])
    return f"${text}{'0' * max(2 - decimals, 0)}"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise CostError(f"{path.name}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise CostError(f"{path.name}: not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CostError(f"{path.name}: expected a mapping at the top")
    return data


def estimate(
    stack: str,
    *,
    profile: str | None = None,
    on: date | None = None,
    repo: Path = REPO,
    warn: Callable[[str], None] | None = None,
) -> Estimate:
    """Price what the stack would create, on date ``on`` (today by default)."""
    source = StackFile(stack, repo, {"profile": profile} if profile is not None else {})
    on = on or date.today()
    config: StackConfig = load_config(source, today=on, warn=warn or (lambda _: None))
    if config.aws is None:
        raise CostError(f"stack {stack!r} is mode 'app': it creates nothing on AWS to price")
    region = source.region()
    prices = PRICES.get(region)
    if prices is None:
        raise CostError(
            f"aws:region {region!r}: no prices for it in infra/prices.py "
            f"(regions: {', '.join(sorted(PRICES))})"
        )
    return Estimate(
        stack,
        config.aws.profile,
        region,
        _items(config, config.aws, prices, on, region),
        _session_nodes(config, config.aws, prices, region),
    )


def _session_nodes(
    config: StackConfig, aws: AwsSettings, p: RegionPrices, region: str
) -> SessionNodes | None:
    """The NodePool's limit as nodes, each the priciest type it allows: the most it can add."""
    scaling = config.autoscaling
    if scaling is None:
        return None
    missing = [t for t in SESSION_INSTANCE_TYPES if t not in p.instance_hour]
    if missing:
        raise CostError(f"no price for {', '.join(missing)} in {region} in infra/prices.py")
    hours = HOURS_PER_MONTH
    nodes = scaling.session_nodes_max_cpu // SESSION_NODE_VCPUS
    priciest = max(SESSION_INSTANCE_TYPES, key=lambda t: p.instance_hour[t])
    on_demand = p.instance_hour[priciest]
    spot = on_demand * SPOT_SHARE
    volumes = nodes * aws.node_disk_size_gib * p.gp3_gb_month
    items = [
        CeilingItem(
            f"{nodes} x {priciest} ({usd(spot)}/h Spot, {usd(on_demand)}/h on demand)",
            nodes * spot * hours,
            nodes * on_demand * hours,
        ),
        CeilingItem(
            f"node volumes, {nodes} x {aws.node_disk_size_gib} GiB gp3 "
            f"({usd(p.gp3_gb_month)}/GB-month)",
            volumes,
            volumes,
        ),
    ]
    if aws.public_nodes:
        addresses = nodes * p.public_ipv4_hour * hours
        items.append(
            CeilingItem(
                f"public IPv4 addresses, {nodes} ({usd(p.public_ipv4_hour)}/h each)",
                addresses,
                addresses,
            )
        )
    return SessionNodes(scaling.session_nodes_max_cpu, scaling.session_capacity_types, tuple(items))


def _items(
    config: StackConfig, aws: AwsSettings, p: RegionPrices, on: date, region: str
) -> tuple[Item, ...]:
    hours = HOURS_PER_MONTH
    nodes = aws.node_desired_size
    instance_type = aws.node_instance_types[0]
    on_demand = p.instance_hour.get(instance_type)
    if on_demand is None:
        raise CostError(
            f"{PROJECT}:nodeInstanceTypes: no price for {instance_type} in {region} in "
            f"infra/prices.py (types: {', '.join(sorted(p.instance_hour))})"
        )
    extended = on >= EKS_VERSIONS[aws.kubernetes_version].end_of_standard_support
    eks_hour, support = (p.eks_extended_hour, "extended") if extended else (p.eks_hour, "standard")
    if aws.capacity_type == "SPOT":
        node_hour = on_demand * SPOT_SHARE
        bought = f"Spot (assumed {usd(node_hour)}/h)"
    else:
        node_hour, bought = on_demand, f"on demand ({usd(on_demand)}/h)"
    disk = aws.node_disk_size_gib
    # With autoscaling the node group is the system group (infra/profiles.py).
    group = "system nodes, " if config.autoscaling is not None else ""
    items = [
        Item(f"EKS control plane ({support} support, {usd(eks_hour)}/h)", eks_hour * hours),
        Item(f"{group}{nodes} x {instance_type} {bought}", nodes * node_hour * hours),
        Item(
            f"node volumes, {nodes} x {disk} GiB gp3 ({usd(p.gp3_gb_month)}/GB-month)",
            nodes * disk * p.gp3_gb_month,
        ),
    ]
    addresses = {"ALB": 2}
    if aws.nat_gateway:
        items.append(
            Item(
                f"NAT gateway ({usd(p.nat_gateway_hour)}/h) + {NAT_GB_MONTH:g} GB processed "
                f"({usd(p.nat_gateway_gb)}/GB)",
                p.nat_gateway_hour * hours + NAT_GB_MONTH * p.nat_gateway_gb,
            )
        )
        addresses["NAT"] = 1
    if aws.public_nodes:
        addresses["nodes"] = nodes
    count = sum(addresses.values())
    listed = ", ".join(f"{who} {n}" for who, n in addresses.items())
    items += [
        Item(
            f"public IPv4 addresses, {count} ({listed}; {usd(p.public_ipv4_hour)}/h each)",
            count * p.public_ipv4_hour * hours,
        ),
        Item(
            f"ALB ({usd(p.alb_hour)}/h) + {ALB_LCU_AVERAGE} LCU on average "
            f"({usd(p.alb_lcu_hour)}/LCU-h)",
            (p.alb_hour + ALB_LCU_AVERAGE * p.alb_lcu_hour) * hours,
        ),
        Item("Route53 hosted zone (queries to the ALB alias are free)", p.route53_zone_month),
        Item(
            f"ECR storage, {ECR_GB:g} GB ({usd(p.ecr_gb_month)}/GB-month)",
            ECR_GB * p.ecr_gb_month,
        ),
    ]
    if config.monitoring.enabled:
        items.append(Item("monitoring (Prometheus and Grafana on the nodes)", 0.0))
    return tuple(items)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.cost", description="Monthly cost estimate of a stack."
    )
    parser.add_argument("--stack", required=True, help="reads Pulumi.<stack>.yaml")
    parser.add_argument("--profile", help="instead of the stack's profile (standard, lean)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=REPO,
        help="the directory with Pulumi.yaml and the stack files (default: this repository)",
    )
    parser.add_argument(
        "--on",
        type=date.fromisoformat,
        help="judge the Kubernetes version's support window on this date (YYYY-MM-DD)",
    )
    args = parser.parse_args(argv)
    warnings: list[str] = []
    try:
        result = estimate(
            args.stack, profile=args.profile, on=args.on, repo=args.dir, warn=warnings.append
        )
    except (CostError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
