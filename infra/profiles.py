"""Stack profiles: how many nodes of what, bought how, and where they sit in the VPC.

``profile: standard`` (the default) takes the node settings from the stack's
keys and keeps the nodes in private subnets behind one NAT gateway.
``profile: lean`` is the cheapest stack that still runs the whole demo: one
Spot t4g.small in a public subnet, and no NAT gateway (docs/cost.md;
docs/architecture.md, "Profiles").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

CapacityType = Literal["ON_DEMAND", "SPOT"]


@dataclass(frozen=True)
class Profile:
    name: str
    # One NAT gateway for the private subnets, or none at all.
    nat_gateway: bool
    # Nodes in the public subnets (a public IPv4 each, reached only from the
    # ALB and the control plane) or in the private ones.
    public_nodes: bool
    capacity_type: CapacityType
    # None: the stack's nodeInstanceTypes and node group sizes; else exactly
    # these types and this many nodes, whatever the stack sets.
    instance_types: tuple[str, ...] | None = None
    nodes: int | None = None
    # With autoscaling on, the managed node group is the system group: this many
    # SYSTEM_INSTANCE_TYPE nodes (bought and placed as above) whatever the node keys
    # say, and Karpenter adds session nodes beside it (docs/autoscaling.md).
    system_nodes: int = 2
    # How Karpenter may buy session nodes (karpenter.sh/capacity-type values): Spot,
    # and on demand when EC2 has no Spot capacity of the allowed types.
    session_capacity_types: tuple[str, ...] = ("spot", "on-demand")


# One t4g.small holds everything that must run (kube-system, the load balancer
# controller, two provisioners, the warm pool) with room for about 20 sessions
# (python -m infra.nodes); a t4g.medium would double the node's cost.
LEAN_INSTANCE_TYPE: Final = "t4g.small"
# The system group's nodes with autoscaling: the provisioner, the load balancer
# controller, CoreDNS, Karpenter and metrics-server fit on one (python -m infra.nodes),
# with room left for the warm pool and the first sessions.
SYSTEM_INSTANCE_TYPE: Final = "t4g.small"

PROFILES: Final = {
    "standard": Profile(
        "standard", nat_gateway=True, public_nodes=False, capacity_type="ON_DEMAND"
    ),
    "lean": Profile(
        "lean",
        nat_gateway=False,
        public_nodes=True,
        capacity_type="SPOT",
        instance_types=(LEAN_INSTANCE_TYPE,),
        nodes=1,
        system_nodes=1,
        session_capacity_types=("spot",),
    ),
}
