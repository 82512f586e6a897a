"""Stack configuration: the keys each mode reads, checked together, as one StackConfig.

``load_config()`` reads the ``pingpod:*`` keys (one at a time, through
``infra.config_reader``), checks each against what it must be and the keys
against each other, and returns one frozen :class:`~infra.settings.StackConfig`.
It runs before any resource is declared, so a missing or malformed value stops
the program with a :class:`~infra.config_reader.ConfigError` naming the key and
what it expects, and nothing is half created. Defaults and formats are in
``infra.keys``, the EKS support calendar in ``infra.support``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from typing import Final

import pulumi

from infra.config_reader import ConfigError, ConfigSource, Reader
from infra.keys import (
    CHART_VERSION,
    DNS_LABEL,
    GRAVITON_INSTANCE_TYPE,
    HOSTED_ZONE_ID,
    HOSTNAME,
    IAM_PRINCIPAL_ARN,
    IMAGE_REF,
    LABEL_KEY,
    LABEL_VALUE,
    ORIGIN,
    PROJECT,
    REMOVED_KEYS,
)
from infra.profiles import PROFILES
from infra.scaling import check_fit, scale_app, scale_aws
from infra.settings import (
    AppSettings,
    AwsSettings,
    LocalSettings,
    Mode,
    MonitoringSettings,
    StackConfig,
)
from infra.support import EKS_VERSIONS, support_warning
from infra.workload import ARCH_LABEL

# allowedOrigins when an app-only stack names none: the page through a port-forward.
LOCAL_ORIGINS: Final = ("http://localhost:8000", "http://127.0.0.1:8000")


def _is_private_cidr(value: str) -> bool:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return network.version == 4 and network.is_private and 16 <= network.prefixlen <= 20


def load_config(
    config: ConfigSource | None = None,
    *,
    today: date | None = None,
    warn: Callable[[str], None] | None = None,
) -> StackConfig:
    """Read and validate the stack's configuration; raise ConfigError on the first problem.

    ``today`` is the date the Kubernetes version's support window is judged
    against (the real date unless a test fixes one); ``warn`` gets what is
    allowed but unwise (the engine's log by default).
    """
    read = Reader(config if config is not None else pulumi.Config(PROJECT))
    read.refuse_removed(REMOVED_KEYS)

    def engine_log(message: str) -> None:
        # Looked up now, not at import: the engine's log (or a test's stand-in).
        pulumi.log.warn(message)

    warn = warn or engine_log

    mode_raw = read.string("mode", expected="'aws' or 'app'")
    if mode_raw not in ("aws", "app"):
        raise ConfigError(f"{PROJECT}:mode: expected 'aws' or 'app', got {mode_raw!r}")
    mode: Mode = "aws" if mode_raw == "aws" else "app"

    aws = _load_aws(read, today or date.today(), warn) if mode == "aws" else None
    local = _load_local(read) if mode == "app" else None
    app = _load_app(read, aws)
    # Auto-scaling (infra/scaling.py): the provisioner's range in both modes;
    # on AWS the system group and Karpenter's settings.
    scaled = read.boolean("autoscaling")
    app = scale_app(read, app, autoscaling=scaled)
    autoscaling = None
    if aws is not None:
        aws, autoscaling = scale_aws(read, aws, autoscaling=scaled)
        app = replace(app, session_nodes=autoscaling is not None)
    monitoring = MonitoringSettings(
        enabled=read.boolean("monitoring"),
        chart_version=read.string(
            "monitoringChartVersion",
            expected="a kube-prometheus-stack chart version like 88.5.3",
            pattern=CHART_VERSION,
        ),
    )
    if monitoring.enabled and aws is None:
        raise ConfigError(
            f"{PROJECT}:monitoring: only mode 'aws' deploys monitoring; on a cluster of your "
            "own install kube-prometheus-stack and import monitoring/grafana/pingpod.json"
        )
    if aws is not None:
        check_fit(aws, app, monitoring, autoscaling, warn)
    return StackConfig(
        mode=mode, app=app, aws=aws, local=local, monitoring=monitoring, autoscaling=autoscaling
    )


def _load_app(read: Reader, aws: AwsSettings | None) -> AppSettings:
    namespace = read.string(
        "namespace", expected="a DNS label (lowercase letters, digits, '-')", pattern=DNS_LABEL
    )
    pool_size = read.integer("poolSize", minimum=0, maximum=50)
    max_sessions = read.integer("maxSessions", minimum=1, maximum=1000)
    idle = read.integer("sessionIdleTimeout", minimum=10, maximum=3600, unit=" seconds")
    lifetime = read.integer("sessionMaxLifetime", minimum=60, maximum=86400, unit=" seconds")
    if idle > lifetime:
        raise ConfigError(
            f"{PROJECT}:sessionIdleTimeout: expected at most sessionMaxLifetime ({lifetime}), "
            f"got {idle}"
        )
    replicas = read.integer("provisionerReplicas", minimum=1, maximum=10)
    extra_origins = read.string_list(
        "allowedOrigins", expected="origins like https://demo.example.com", pattern=ORIGIN
    )
    if aws is not None:
        origins: Sequence[str] = (f"https://{aws.domain}", *extra_origins)
    else:
        origins = extra_origins or LOCAL_ORIGINS
    arm64_only = read.boolean("echoArm64Only")
    node_selector = read.string_map(
        "nodeSelector",
        expected="node label keys to label values",
        keys=(
            "node label keys (an optional DNS-subdomain prefix and '/', then a name of at most "
            "63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit)",
            LABEL_KEY,
        ),
        values=(
            "a label value (empty, or at most 63 letters, digits, '-', '_' or '.', "
            "beginning and ending with a letter or digit)",
            LABEL_VALUE,
        ),
    )
    arch = dict(node_selector).get(ARCH_LABEL)
    if arm64_only and arch not in (None, "arm64"):
        raise ConfigError(
            f"{PROJECT}:nodeSelector: expected no {ARCH_LABEL} other than arm64 while "
            f"echoArm64Only is true, got {arch!r}"
        )
    return AppSettings(
        namespace=namespace,
        pool_size=pool_size,
        max_sessions=max_sessions,
        session_idle_timeout=idle,
        session_max_lifetime=lifetime,
        provisioner_replicas=replicas,
        allowed_origins=tuple(dict.fromkeys(origins)),
        echo_arm64_only=arm64_only,
        allow_gateway_kill=read.boolean("allowGatewayKill"),
        node_selector=node_selector,
        node_lost_seconds=read.integer("nodeLostSeconds", minimum=5, maximum=300, unit=" seconds"),
    )


def _load_aws(read: Reader, today: date, warn: Callable[[str], None]) -> AwsSettings:
    required = "when mode is 'aws'"
    domain = read.string(
        "domain",
        expected="the demo's public hostname in the hosted zone, e.g. pingpod.example.com",
        pattern=HOSTNAME,
        required=required,
    )
    zone = read.string(
        "hostedZoneId",
        expected="the Route53 hosted zone id that serves the domain, e.g. Z0123456789ABCDEFGHIJ",
        pattern=HOSTED_ZONE_ID,
        required=required,
    )
    vpc_cidr = read.string(
        "vpcCidr",
        expected="a private IPv4 CIDR from /16 to /20, e.g. 10.0.0.0/16",
        check=_is_private_cidr,
    )
    version = read.string(
        "kubernetesVersion",
        expected=f"an EKS Kubernetes version this program knows ({', '.join(EKS_VERSIONS)})",
        check=lambda v: v in EKS_VERSIONS,
    )
    warning = support_warning(
        version, today=today, allow_extended=read.boolean("allowExtendedSupport")
    )
    if warning is not None:
        warn(warning)
    instance_types = read.string_list(
        "nodeInstanceTypes",
        expected="Graviton (arm64) EC2 instance types such as t4g.medium or m7g.large",
        pattern=GRAVITON_INSTANCE_TYPE,
        min_items=1,
    )
    min_size = read.integer("nodeMinSize", minimum=1, maximum=20)
    desired = read.integer("nodeDesiredSize", minimum=1, maximum=20)
    max_size = read.integer("nodeMaxSize", minimum=1, maximum=20)
    if not min_size <= desired <= max_size:
        raise ConfigError(
            f"{PROJECT}:nodeDesiredSize: expected nodeMinSize <= nodeDesiredSize <= nodeMaxSize, "
            f"got {min_size} <= {desired} <= {max_size}"
        )
    admins = read.string_list(
        "clusterAdmins",
        expected="IAM role or user ARNs (arn:aws:iam::<account>:role/<name>)",
        pattern=IAM_PRINCIPAL_ARN,
    )
    profile_name = read.string(
        "profile",
        expected=f"a profile ({' or '.join(repr(p) for p in PROFILES)})",
        check=lambda v: v in PROFILES,
    )
    profile = PROFILES[profile_name]
    # A profile that fixes the nodes wins over the stack's node keys (still
    # checked above, so switching back finds them valid).
    if profile.instance_types is not None:
        instance_types = profile.instance_types
    if profile.nodes is not None:
        min_size = desired = max_size = profile.nodes
    return AwsSettings(
        domain=domain,
        hosted_zone_id=zone,
        vpc_cidr=vpc_cidr,
        kubernetes_version=version,
        node_instance_types=instance_types,
        node_min_size=min_size,
        node_desired_size=desired,
        node_max_size=max_size,
        node_disk_size_gib=read.integer("nodeDiskSizeGib", minimum=20, maximum=200, unit=" GiB"),
        cluster_admins=admins,
        alb_idle_timeout=read.integer("albIdleTimeout", minimum=60, maximum=4000, unit=" seconds"),
        lbc_chart_version=read.string(
            "lbcChartVersion", expected="a chart version like 1.17.1", pattern=CHART_VERSION
        ),
        profile=profile.name,
        nat_gateway=profile.nat_gateway,
        public_nodes=profile.public_nodes,
        capacity_type=profile.capacity_type,
    )


def _load_local(read: Reader) -> LocalSettings:
    required = "when mode is 'app' (no registry is built)"
    expected = "an image reference, ideally digest-pinned (repo/name@sha256:...)"
    echo = read.string("echoImage", expected=expected, pattern=IMAGE_REF, required=required)
    provisioner = read.string(
        "provisionerImage", expected=expected, pattern=IMAGE_REF, required=required
    )
    context = read.string("kubeContext", expected="a kubeconfig context name")
    return LocalSettings(
        echo_image=echo, provisioner_image=provisioner, kube_context=context or None
    )
