"""Stack configuration: every key the program reads, parsed and validated once.

``load_config()`` reads the ``pingpod:*`` keys, checks each against what it must
be, and returns one frozen :class:`StackConfig`. It runs before any resource is
declared, so a missing or malformed value stops the program with a
:class:`ConfigError` naming the key and what it expects, and nothing is half
created. The defaults here are the ones in ``Pulumi.yaml``'s ``config:`` schema
(a test keeps the two equal): the CLI applies that schema, the mocks do not.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Protocol

import pulumi

from infra.nodes import INSTANCE_TYPES, budget
from infra.profiles import PROFILES
from infra.settings import (
    AppSettings,
    AwsSettings,
    LocalSettings,
    Mode,
    MonitoringSettings,
    StackConfig,
)
from infra.workload import ARCH_LABEL

PROJECT: Final = "pingpod"

# Graviton instance types: a family (t, m, c, r, x, im, is, g, hpc, ...), a
# generation digit, then "g" for Graviton and optional attribute letters
# (d = local NVMe, n = network, e = memory, ...): t4g.medium, m7gd.large,
# c7gn.xlarge, x2gd.metal, is4gen.large, g5g.xlarge. x86 families put "i" or "a"
# (or nothing) after the generation: m6i.large, m6a.large, m5.large, g5.xlarge.
GRAVITON_INSTANCE_TYPE: Final = re.compile(
    r"^[a-z]+[0-9]+g[a-z]*\.(?:nano|micro|small|medium|large|[0-9]*xlarge|metal(?:-[0-9]+xl)?)$"
)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^(?=.{4,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_IAM_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[\w+=,.@/-]+$")
_CHART_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
_IMAGE_REF = re.compile(
    r"^[a-z0-9]([-a-z0-9._:/]*[a-z0-9])?(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")
# Kubernetes label keys and values (apimachinery's IsQualifiedName and IsValidLabelValue):
# a name of at most 63 characters, alphanumeric at both ends with '-', '_' and '.'
# between; a key may start with a DNS-subdomain prefix of at most 253 characters and
# '/'; a value may also be empty.
_LABEL_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_SUBDOMAIN = (
    r"(?=[^/]{1,253}/)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_LABEL_KEY = re.compile(rf"(?:{_DNS_SUBDOMAIN}/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"(?:{_LABEL_NAME})?")


class ConfigSource(Protocol):
    """Where keys come from: ``pulumi.Config`` in a program, a stack file elsewhere."""

    def get(self, key: str) -> str | None: ...


@dataclass(frozen=True)
class EksVersion:
    """One Kubernetes minor version's support window on EKS (dates in UTC)."""

    released: date
    end_of_standard_support: date
    end_of_extended_support: date


# The Amazon EKS Kubernetes release calendar,
# https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html#kubernetes-release-calendar
# read 2026-11-23. Standard support lasts 14 months from the EKS release and
# extended support 12 more (a test checks each row against that rule); 1.36's
# row is computed from its EKS release on 2026-06-02. Extended support bills
# the control plane from the first day past the end of standard support.
# Add a row when EKS releases a version, and move the default to it.
EKS_VERSIONS: Final[Mapping[str, EksVersion]] = {
    "1.33": EksVersion(date(2025, 5, 29), date(2026, 7, 29), date(2027, 7, 29)),
    "1.34": EksVersion(date(2025, 10, 2), date(2026, 12, 2), date(2027, 12, 2)),
    "1.35": EksVersion(date(2026, 1, 27), date(2027, 3, 27), date(2028, 3, 27)),
    "1.36": EksVersion(date(2026, 6, 2), date(2027, 8, 2), date(2028, 8, 2)),
}
# EKS announces the end of standard support at least 60 days ahead; warn from then on.
SUPPORT_WARNING_DAYS: Final = 60
EXTENDED_SUPPORT_PRICE: Final = "$0.60/h (~$438/month) instead of $0.10/h (~$73/month)"

# Keys the program no longer reads, and why: a stack that still sets one
# stops with that reason rather than silently keeping a setting that does nothing.
REMOVED_KEYS: Final[Mapping[str, str]] = {
    "nodeMaxPods": (
        "EKS writes its own kubelet maxPods into every managed node that runs an EKS AMI, "
        "and that value wins over a launch template's; with VPC CNI prefix delegation it is "
        '110 on nodes under 30 vCPUs such as t4g.medium (README, "Deploy to AWS")'
    ),
}


class ConfigError(pulumi.RunError):
    """A configuration value is missing or malformed.

    A ``RunError`` so the CLI prints the message alone, without a traceback.
    """


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
}

LOCAL_ORIGINS: Final = ("http://localhost:8000", "http://127.0.0.1:8000")


class _Reader:
    """Reads one key at a time and raises a ConfigError that names it."""

    def __init__(self, config: ConfigSource) -> None:
        self._config = config

    def _raw(self, key: str) -> str | None:
        value = self._config.get(key)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def refuse_removed(self, removed: Mapping[str, str]) -> None:
        for key, reason in removed.items():
            if self._config.get(key) is not None:
                raise ConfigError(
                    f"{PROJECT}:{key} was removed: {reason}. "
                    f"Delete it from the stack (pulumi config rm {key})."
                )

    def _fail(self, key: str, expected: str, got: object) -> ConfigError:
        return ConfigError(f"{PROJECT}:{key}: expected {expected}, got {got!r}")

    def string(
        self,
        key: str,
        *,
        expected: str,
        pattern: re.Pattern[str] | None = None,
        required: str | None = None,
        check: Callable[[str], bool] | None = None,
    ) -> str:
        """A string; ``required`` names the condition that makes it mandatory."""
        raw = self._raw(key)
        if raw is None:
            if required is not None:
                raise ConfigError(
                    f"{PROJECT}:{key} is required {required}: expected {expected} "
                    f"(pulumi config set {key} <value>)"
                )
            default = DEFAULTS[key]
            if not isinstance(default, str):
                raise TypeError(f"default of {key} is not a string")
            return default
        if pattern is not None and not pattern.match(raw):
            raise self._fail(key, expected, raw)
        if check is not None and not check(raw):
            raise self._fail(key, expected, raw)
        return raw

    def integer(self, key: str, *, minimum: int, maximum: int, unit: str = "") -> int:
        expected = f"an integer from {minimum} to {maximum}{unit}"
        raw = self._raw(key)
        if raw is None:
            default = DEFAULTS[key]
            if not isinstance(default, int):
                raise TypeError(f"default of {key} is not an integer")
            return default
        try:
            value = int(raw, 10)
        except ValueError:
            raise self._fail(key, expected, raw) from None
        if not minimum <= value <= maximum:
            raise self._fail(key, expected, value)
        return value

    def boolean(self, key: str) -> bool:
        raw = self._raw(key)
        if raw is None:
            return bool(DEFAULTS[key])
        lowered = raw.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise self._fail(key, "true or false", raw)

    def string_list(
        self,
        key: str,
        *,
        expected: str,
        pattern: re.Pattern[str],
        min_items: int = 0,
    ) -> tuple[str, ...]:
        """A list of strings: a YAML list in the stack file, JSON on the wire."""
        list_expected = f"a list of {expected}"
        if min_items:
            list_expected += f" (at least {min_items})"
        raw = self._raw(key)
        if raw is None:
            default = DEFAULTS[key]
            if not isinstance(default, list):
                raise TypeError(f"default of {key} is not a list")
            items: object = default
        else:
            try:
                items = json.loads(raw)
            except json.JSONDecodeError:
                raise self._fail(key, list_expected, raw) from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise self._fail(key, list_expected, raw)
        strings: list[str] = [i for i in items if isinstance(i, str)]
        if len(strings) < min_items:
            raise self._fail(key, list_expected, strings)
        for item in strings:
            if not pattern.match(item):
                raise ConfigError(f"{PROJECT}:{key}: expected {list_expected}; {item!r} is not one")
        return tuple(strings)

    def string_map(
        self,
        key: str,
        *,
        expected: str,
        keys: tuple[str, re.Pattern[str]],
        values: tuple[str, re.Pattern[str]],
    ) -> tuple[tuple[str, str], ...]:
        """A map of strings: a YAML mapping in the stack file, a JSON object on the wire.

        ``keys`` and ``values`` are what each must be and the pattern it must match
        in full. ``pulumi config set --path`` stores a value that reads as a
        boolean or a whole number typed (``true``, ``42``); those come back as the
        strings they were typed as. Returns the pairs sorted by key.
        """
        map_expected = f"an object of {expected}"
        raw = self._raw(key)
        if raw is None:
            default = DEFAULTS[key]
            if not isinstance(default, dict):
                raise TypeError(f"default of {key} is not a mapping")
            entries: object = default
        else:
            try:
                entries = json.loads(raw)
            except json.JSONDecodeError:
                raise self._fail(key, map_expected, raw) from None
        if not isinstance(entries, dict):
            raise self._fail(key, map_expected, raw)
        key_expected, key_pattern = keys
        value_expected, value_pattern = values
        pairs: list[tuple[str, str]] = []
        for name, value in entries.items():
            if not key_pattern.fullmatch(name):
                raise self._fail(key, key_expected, name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | str):
                text = str(value)
            else:
                raise self._fail(key, f"{value_expected} for {name!r}", value)
            if not value_pattern.fullmatch(text):
                raise self._fail(key, f"{value_expected} for {name!r}", text)
            pairs.append((name, text))
        return tuple(sorted(pairs))


def _is_private_cidr(value: str) -> bool:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return network.version == 4 and network.is_private and 16 <= network.prefixlen <= 20


def _upgrade_hint(today: date) -> str:
    """Which versions to move to: those still in standard support for a while."""
    current = [
        v
        for v, window in EKS_VERSIONS.items()
        if (window.end_of_standard_support - today).days > SUPPORT_WARNING_DAYS
    ]
    if not current:
        return (
            "every version in infra/config.py's EKS_VERSIONS is near or past its end; "
            "add the newer ones EKS serves and choose one"
        )
    return f"choose {' or '.join(current)}"


def support_warning(version: str, *, today: date, allow_extended: bool) -> str | None:
    """A warning about ``version``'s EKS support window, or None when it is far off.

    Raises ConfigError once the version is in extended support (EKS bills the
    control plane six times the standard rate from the end date on) unless
    ``allow_extended``, and always once extended support is over (EKS then
    creates no such cluster and upgrades existing ones on its own).
    """
    window = EKS_VERSIONS[version]
    key = f"{PROJECT}:kubernetesVersion"
    standard_end = window.end_of_standard_support.isoformat()
    if today >= window.end_of_extended_support:
        raise ConfigError(
            f"{key}: {version} left EKS extended support on "
            f"{window.end_of_extended_support.isoformat()}; {_upgrade_hint(today)}"
        )
    if today >= window.end_of_standard_support:
        if not allow_extended:
            raise ConfigError(
                f"{key}: {version} left EKS standard support on {standard_end}; in extended "
                f"support its control plane costs {EXTENDED_SUPPORT_PRICE}: "
                f"{_upgrade_hint(today)}, or set {PROJECT}:allowExtendedSupport to true "
                "to pay for it"
            )
        return (
            f"{key}: {version} is in EKS extended support since {standard_end}: the control "
            f"plane costs {EXTENDED_SUPPORT_PRICE}; {_upgrade_hint(today)}"
        )
    days_left = (window.end_of_standard_support - today).days
    if days_left <= SUPPORT_WARNING_DAYS:
        days = f"{days_left} day{'' if days_left == 1 else 's'}"
        return (
            f"{key}: {version} leaves EKS standard support on {standard_end} (in {days}); "
            f"from then on the control plane costs {EXTENDED_SUPPORT_PRICE}: "
            f"{_upgrade_hint(today)} before then"
        )
    return None


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
    read = _Reader(config if config is not None else pulumi.Config(PROJECT))
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
    monitoring = MonitoringSettings(
        enabled=read.boolean("monitoring"),
        chart_version=read.string(
            "monitoringChartVersion",
            expected="a kube-prometheus-stack chart version like 88.5.3",
            pattern=_CHART_VERSION,
        ),
    )
    if monitoring.enabled and aws is None:
        raise ConfigError(
            f"{PROJECT}:monitoring: only mode 'aws' deploys monitoring; on a cluster of your "
            "own install kube-prometheus-stack and import monitoring/grafana/pingpod.json"
        )
    if aws is not None:
        _warn_if_sessions_do_not_fit(aws, app, monitoring, warn)
    return StackConfig(mode=mode, app=app, aws=aws, local=local, monitoring=monitoring)


def _warn_if_sessions_do_not_fit(
    aws: AwsSettings, app: AppSettings, monitoring: MonitoringSettings, warn: Callable[[str], None]
) -> None:
    """maxSessions beyond what the nodes hold is allowed (claims past it are shed), not wise."""
    instance_type = aws.node_instance_types[0]
    if instance_type not in INSTANCE_TYPES:
        return  # no figures for it (infra/nodes.py)
    fit = budget(
        instance_type,
        aws.node_desired_size,
        app.provisioner_replicas,
        monitoring=monitoring.enabled,
    ).sessions(app.pool_size)
    if app.max_sessions > fit:
        nodes = f"{aws.node_desired_size} x {instance_type}"
        extra = " with monitoring" if monitoring.enabled else ""
        warn(
            f"{PROJECT}:maxSessions: {app.max_sessions} sessions do not fit on {nodes}{extra} "
            f"(about {fit} do beside a warm pool of {app.pool_size}; python -m infra.nodes); "
            "claims past that are refused while their pods cannot be scheduled. "
            f"Set maxSessions to {fit} or less"
        )


def _load_app(read: _Reader, aws: AwsSettings | None) -> AppSettings:
    namespace = read.string(
        "namespace", expected="a DNS label (lowercase letters, digits, '-')", pattern=_DNS_LABEL
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
        "allowedOrigins", expected="origins like https://demo.example.com", pattern=_ORIGIN
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
            _LABEL_KEY,
        ),
        values=(
            "a label value (empty, or at most 63 letters, digits, '-', '_' or '.', "
            "beginning and ending with a letter or digit)",
            _LABEL_VALUE,
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
    )


def _load_aws(read: _Reader, today: date, warn: Callable[[str], None]) -> AwsSettings:
    required = "when mode is 'aws'"
    domain = read.string(
        "domain",
        expected="the demo's public hostname in the hosted zone, e.g. pingpod.example.com",
        pattern=_HOSTNAME,
        required=required,
    )
    zone = read.string(
        "hostedZoneId",
        expected="the Route53 hosted zone id that serves the domain, e.g. Z0123456789ABCDEFGHIJ",
        pattern=_HOSTED_ZONE_ID,
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
        pattern=_IAM_PRINCIPAL_ARN,
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
            "lbcChartVersion", expected="a chart version like 1.17.1", pattern=_CHART_VERSION
        ),
        profile=profile.name,
        nat_gateway=profile.nat_gateway,
        public_nodes=profile.public_nodes,
        capacity_type=profile.capacity_type,
    )


def _load_local(read: _Reader) -> LocalSettings:
    required = "when mode is 'app' (no registry is built)"
    expected = "an image reference, ideally digest-pinned (repo/name@sha256:...)"
    echo = read.string("echoImage", expected=expected, pattern=_IMAGE_REF, required=required)
    provisioner = read.string(
        "provisionerImage", expected=expected, pattern=_IMAGE_REF, required=required
    )
    context = read.string("kubeContext", expected="a kubeconfig context name")
    return LocalSettings(
        echo_image=echo, provisioner_image=provisioner, kube_context=context or None
    )
