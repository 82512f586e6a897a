"""The project's keys: each one's default, the formats values must match, removed keys.

What a ``pingpod:*`` key is, apart from how it is read (``infra.config_reader``)
and which settings it feeds (``infra.config``). ``DEFAULTS`` mirrors the
``config:`` schema in ``Pulumi.yaml`` (a test keeps the two equal): the CLI
applies that schema, the mocks and ``infra.cost`` do not, so the program falls
back on these. Components whose arguments have defaults (``NetworkArgs``,
``EdgeArgs``) take them from here too, through the typed ``default_*``
readers, rather than keeping copies of their own; ``ClusterArgs`` has none and
takes the validated ``AwsSettings``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

# The namespace of every key: pingpod:poolSize, pingpod:domain, ...
PROJECT: Final = "pingpod"

# Defaults, mirrored in Pulumi.yaml's config schema.
DEFAULTS: Final[dict[str, object]] = {
    "mode": "aws",
    "namespace": "pingpod",
    "poolSize": 4,
    "maxSessions": 100,
    "sessionIdleTimeout": 120,
    "sessionMaxLifetime": 900,
    "provisionerReplicas": 2,
    "allowedOrigins": [],
    "echoArm64Only": False,
    "allowGatewayKill": False,
    "nodeSelector": {},
    "nodeLostSeconds": 30,
    "domain": "",
    "hostedZoneId": "",
    "vpcCidr": "10.0.0.0/16",
    "kubernetesVersion": "1.36",
    "allowExtendedSupport": False,
    "nodeInstanceTypes": ["t4g.medium"],
    "nodeMinSize": 1,
    "nodeDesiredSize": 2,
    "nodeMaxSize": 3,
    "nodeDiskSizeGib": 20,
    "clusterAdmins": [],
    "albIdleTimeout": 600,
    "lbcChartVersion": "1.17.1",
    "profile": "standard",
    "monitoring": False,
    "monitoringChartVersion": "88.5.3",
    "echoImage": "",
    "provisionerImage": "",
    "kubeContext": "",
    # Auto-scaling (docs/autoscaling.md): Karpenter's session nodes and metrics-server
    # on AWS, the provisioner's HorizontalPodAutoscaler in both modes.
    "autoscaling": True,
    "provisionerMaxReplicas": 4,
    "sessionNodesMaxCpu": 4,
    "karpenterChartVersion": "1.15.2",
    "metricsServerChartVersion": "3.13.1",
}


def default_string(key: str) -> str:
    """``DEFAULTS[key]``, which must be a string."""
    default = DEFAULTS[key]
    if not isinstance(default, str):
        raise TypeError(f"default of {key} is not a string")
    return default


def default_integer(key: str) -> int:
    """``DEFAULTS[key]``, which must be an integer."""
    default = DEFAULTS[key]
    if not isinstance(default, int):
        raise TypeError(f"default of {key} is not an integer")
    return default


def default_strings(key: str) -> tuple[str, ...]:
    """``DEFAULTS[key]``, which must be a list of strings, as a tuple."""
    default = DEFAULTS[key]
    if not isinstance(default, list):
        raise TypeError(f"default of {key} is not a list")
    strings = tuple(item for item in default if isinstance(item, str))
    if len(strings) != len(default):
        raise TypeError(f"default of {key} is not a list of strings")
    return strings


def default_mapping(key: str) -> dict[str, object]:
    """``DEFAULTS[key]``, which must be a mapping with string keys (a copy)."""
    default = DEFAULTS[key]
    if not isinstance(default, dict):
        raise TypeError(f"default of {key} is not a mapping")
    if not all(isinstance(name, str) for name in default):
        raise TypeError(f"default of {key} has keys that are not strings")
    return {str(name): value for name, value in default.items()}


# Graviton instance types: a family (t, m, c, r, x, im, is, g, hpc, ...), a
# generation digit, then "g" for Graviton and optional attribute letters
# (d = local NVMe, n = network, e = memory, ...): t4g.medium, m7gd.large,
# c7gn.xlarge, x2gd.metal, is4gen.large, g5g.xlarge. x86 families put "i" or "a"
# (or nothing) after the generation: m6i.large, m6a.large, m5.large, g5.xlarge.
GRAVITON_INSTANCE_TYPE: Final = re.compile(
    r"^[a-z]+[0-9]+g[a-z]*\.(?:nano|micro|small|medium|large|[0-9]*xlarge|metal(?:-[0-9]+xl)?)$"
)
DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HOSTNAME: Final = re.compile(r"^(?=.{4,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
HOSTED_ZONE_ID: Final = re.compile(r"^Z[A-Z0-9]{1,31}$")
IAM_PRINCIPAL_ARN: Final = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[\w+=,.@/-]+$")
CHART_VERSION: Final = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
IMAGE_REF: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9._:/]*[a-z0-9])?(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)
ORIGIN: Final = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")
# Kubernetes label keys and values (apimachinery's IsQualifiedName and IsValidLabelValue):
# a name of at most 63 characters, alphanumeric at both ends with '-', '_' and '.'
# between; a key may start with a DNS-subdomain prefix of at most 253 characters and
# '/'; a value may also be empty.
_LABEL_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_SUBDOMAIN = (
    r"(?=[^/]{1,253}/)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
LABEL_KEY: Final = re.compile(rf"(?:{_DNS_SUBDOMAIN}/)?{_LABEL_NAME}")
LABEL_VALUE: Final = re.compile(rf"(?:{_LABEL_NAME})?")

# Keys the program no longer reads, and why: a stack that still sets one
# stops with that reason rather than silently keeping a setting that does nothing.
REMOVED_KEYS: Final[Mapping[str, str]] = {
    "nodeMaxPods": (
        "EKS writes its own kubelet maxPods into every managed node that runs an EKS AMI, "
        "and that value wins over a launch template's; with VPC CNI prefix delegation it is "
        "110 on nodes under 30 vCPUs such as t4g.medium (docs/configuration.md)"
    ),
}
