"""The instance types Karpenter's kwok provider offers here: AWS's t4g sizes.

Karpenter's built-in kwok list is generic (c/s/m families); this one mirrors what
the AWS NodePool chooses from, so the packing and the prices it weighs are those
of the real thing: vCPUs and memory as the EC2 instance-type pages list them,
arm64, Linux, 110 pods (the ``kubelet.maxPods`` the EC2NodeClass sets, with
prefix delegation), Spot and on-demand in two zones. The file format is the one
``sigs.k8s.io/karpenter/kwok/cloudprovider`` reads from ``INSTANCE_TYPES_FILE_PATH``
(its ``examples/aws_instance_types.json`` has the same shape).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from infra.prices import SPOT_SHARE

MAX_PODS: Final = 110
ZONES: Final = ("us-east-1a", "us-east-1b")
CAPACITY_TYPE_LABEL: Final = "karpenter.sh/capacity-type"
ZONE_LABEL: Final = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class Size:
    name: str
    vcpus: int
    memory_gib: int
    on_demand_hour: float  # USD, us-east-1, Linux (infra/prices.py lists the same)

    @property
    def spot_hour(self) -> float:
        # Spot has no list price; the cost estimate's assumption (infra/prices.py).
        return round(self.on_demand_hour * SPOT_SHARE, 5)


T4G: Final = (
    Size("t4g.small", 2, 2, 0.0168),
    Size("t4g.medium", 2, 4, 0.0336),
    Size("t4g.large", 2, 8, 0.0672),
    Size("t4g.xlarge", 4, 16, 0.1344),
)


def _offering(price: float, capacity_type: str, zone: str) -> dict[str, Any]:
    return {
        "Price": price,
        "Available": True,
        "Requirements": [
            {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": [capacity_type]},
            {"key": ZONE_LABEL, "operator": "In", "values": [zone]},
        ],
    }


def instance_types(sizes: tuple[Size, ...] = T4G) -> list[dict[str, Any]]:
    """The list in the provider's JSON shape."""
    return [
        {
            "name": size.name,
            "offerings": [
                _offering(price, capacity_type, zone)
                for zone in ZONES
                for capacity_type, price in (
                    ("spot", size.spot_hour),
                    ("on-demand", size.on_demand_hour),
                )
            ],
            "architecture": "arm64",
            "operatingSystems": ["linux"],
            "resources": {
                "cpu": str(size.vcpus),
                "memory": f"{size.memory_gib}Gi",
                "pods": str(MAX_PODS),
                "ephemeral-storage": "20Gi",
            },
        }
        for size in sizes
    ]


def write(path: Path, sizes: tuple[Size, ...] = T4G) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(instance_types(sizes), indent=1) + "\n")
    return path
