"""Configuration: the schema in Pulumi.yaml, the stack files, and every bad value."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.config import load_config
from infra.config_reader import ConfigError
from infra.keys import DEFAULTS
from tests.infra.harness import REPO, StackMocks, run_program, stack_config

SCHEMA: dict[str, Any] = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]
YAML_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}


def test_project_runtime() -> None:
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    assert project["name"] == "pingpod"
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": ".venv"},
    }


def test_schema_and_code_defaults_agree() -> None:
    assert set(SCHEMA) == set(DEFAULTS)
    for key, spec in SCHEMA.items():
        assert spec["description"], key
        assert isinstance(spec["default"], YAML_TYPES[spec["type"]]), key
        assert spec["default"] == DEFAULTS[key], key


@pytest.mark.parametrize("stack", ["prod", "local"])
def test_stack_files_use_only_schema_keys(stack: str) -> None:
    values = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    for key, value in values.items():
        namespace, name = key.split(":", 1)
        assert namespace in ("pingpod", "aws"), key
        if namespace == "pingpod":
            assert name in SCHEMA, key
            assert isinstance(value, YAML_TYPES[SCHEMA[name]["type"]]), key
    assert "aws:region" not in values or stack == "prod"


def test_local_stack_has_no_aws_config() -> None:
    values = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]
    assert values["pingpod:mode"] == "app"
    assert not [k for k in values if k.startswith("aws:")]


ARM_ONLY = "Graviton (arm64) EC2 instance types"

# (stack, key, value or None to unset, what the message must say)
BAD_CONFIG: list[tuple[str, str, Any, str]] = [
    ("prod", "mode", "kubernetes", "pingpod:mode: expected 'aws' or 'app', got 'kubernetes'"),
    ("prod", "domain", None, "pingpod:domain is required when mode is 'aws'"),
    ("prod", "domain", "not a domain", "pingpod:domain: expected the demo's public hostname"),
    ("prod", "hostedZoneId", None, "pingpod:hostedZoneId is required when mode is 'aws'"),
    ("prod", "hostedZoneId", "zone-1", "pingpod:hostedZoneId: expected the Route53 hosted zone id"),
    ("prod", "nodeInstanceTypes", ["m6i.large"], "'m6i.large' is not one"),
    ("prod", "nodeInstanceTypes", ["t3.medium", "t4g.medium"], "'t3.medium' is not one"),
    ("prod", "nodeInstanceTypes", [], "at least 1"),
    (
        "prod",
        "nodeInstanceTypes",
        "t4g.medium",
        f"pingpod:nodeInstanceTypes: expected a list of {ARM_ONLY}",
    ),
    ("prod", "nodeDesiredSize", 5, "expected nodeMinSize <= nodeDesiredSize <= nodeMaxSize"),
    (
        "prod",
        "nodeMaxPods",
        110,
        "pingpod:nodeMaxPods was removed: EKS writes its own kubelet maxPods into every "
        "managed node",
    ),
    ("local", "nodeMaxPods", 110, "pingpod:nodeMaxPods was removed"),
    (
        "prod",
        "clusterAdmins",
        ["bob"],
        "pingpod:clusterAdmins: expected a list of IAM role or user ARNs",
    ),
    ("prod", "clusterAdmins", "{not json", "pingpod:clusterAdmins: expected a list of"),
    ("prod", "vpcCidr", "8.8.0.0/16", "pingpod:vpcCidr: expected a private IPv4 CIDR"),
    # One past each edge of /16-/20.
    ("prod", "vpcCidr", "10.0.0.0/15", "pingpod:vpcCidr: expected a private IPv4 CIDR from /16 to"),
    ("prod", "vpcCidr", "10.0.0.0/21", "pingpod:vpcCidr: expected a private IPv4 CIDR from /16 to"),
    (
        "prod",
        "albIdleTimeout",
        5,
        "pingpod:albIdleTimeout: expected an integer from 60 to 4000 seconds, got 5",
    ),
    (
        "prod",
        "kubernetesVersion",
        "latest",
        "pingpod:kubernetesVersion: expected an EKS Kubernetes version this program knows "
        "(1.33, 1.34, 1.35, 1.36), got 'latest'",
    ),
    (
        "prod",
        "kubernetesVersion",
        "1.32",
        "this program knows (1.33, 1.34, 1.35, 1.36), got '1.32'",
    ),
    (
        "prod",
        "kubernetesVersion",
        "1.37",
        "this program knows (1.33, 1.34, 1.35, 1.36), got '1.37'",
    ),
    # On the harness's date, 2026-11-23, 1.33 is past its end of standard support.
    (
        "prod",
        "kubernetesVersion",
        "1.33",
        "pingpod:kubernetesVersion: 1.33 left EKS standard support on 2026-07-29; in extended "
        "support its control plane costs $0.60/h (~$438/month) instead of $0.10/h",
    ),
    ("prod", "allowExtendedSupport", "sometimes", "pingpod:allowExtendedSupport: expected true"),
    ("prod", "lbcChartVersion", "v1", "pingpod:lbcChartVersion: expected a chart version"),
    ("prod", "poolSize", "four", "pingpod:poolSize: expected an integer from 0 to 50, got 'four'"),
    ("prod", "maxSessions", 0, "pingpod:maxSessions: expected an integer from 1 to 1000, got 0"),
    (
        "prod",
        "sessionIdleTimeout",
        1000,
        "pingpod:sessionIdleTimeout: expected at most sessionMaxLifetime",
    ),
    (
        "prod",
        "provisionerReplicas",
        0,
        "pingpod:provisionerReplicas: expected an integer from 1 to 10",
    ),
    ("prod", "autoscaling", "maybe", "pingpod:autoscaling: expected true or false, got 'maybe'"),
    # Pulumi.local.yaml has one provisioner: "Kill my gateway" needs another.
    (
        "local",
        "allowGatewayKill",
        True,
        "pingpod:provisionerReplicas: expected at least 2 while allowGatewayKill is true",
    ),
    (
        "prod",
        "provisionerMaxReplicas",
        1,
        "pingpod:provisionerMaxReplicas: expected at least provisionerReplicas (2), the "
        "HorizontalPodAutoscaler's minimum, got 1",
    ),
    (
        "prod",
        "provisionerMaxReplicas",
        21,
        "pingpod:provisionerMaxReplicas: expected an integer from 1 to 20, got 21",
    ),
    # Checked with autoscaling off too, so switching it on finds it valid.
    ("local", "provisionerMaxReplicas", "many", "pingpod:provisionerMaxReplicas: expected an"),
    (
        "prod",
        "sessionNodesMaxCpu",
        1,
        "pingpod:sessionNodesMaxCpu: expected an integer from 2 to 64 vCPUs, got 1",
    ),
    ("prod", "sessionNodesMaxCpu", 65, "pingpod:sessionNodesMaxCpu: expected an integer from 2"),
    (
        "prod",
        "karpenterChartVersion",
        "v1.15",
        "pingpod:karpenterChartVersion: expected a Karpenter chart version like 1.15.2",
    ),
    (
        "prod",
        "metricsServerChartVersion",
        "latest",
        "pingpod:metricsServerChartVersion: expected a metrics-server chart version",
    ),
    ("prod", "namespace", "Ping_Pod", "pingpod:namespace: expected a DNS label"),
    (
        "prod",
        "nodeLostSeconds",
        4,
        "pingpod:nodeLostSeconds: expected an integer from 5 to 300 seconds, got 4",
    ),
    ("local", "nodeLostSeconds", 301, "pingpod:nodeLostSeconds: expected an integer from 5 to 300"),
    ("local", "nodeLostSeconds", "soon", "expected an integer from 5 to 300 seconds, got 'soon'"),
    ("prod", "echoArm64Only", "yes", "pingpod:echoArm64Only: expected true or false, got 'yes'"),
    (
        "prod",
        "allowGatewayKill",
        "sometimes",
        "pingpod:allowGatewayKill: expected true or false, got 'sometimes'",
    ),
    ("prod", "allowedOrigins", ["ftp://x"], "pingpod:allowedOrigins: expected a list of origins"),
    (
        "local",
        "nodeSelector",
        "real",
        "pingpod:nodeSelector: expected an object of node label keys to label values, got 'real'",
    ),
    ("local", "nodeSelector", ["pingpod.dev/node=real"], "pingpod:nodeSelector: expected an"),
    ("local", "nodeSelector", "{not json", "pingpod:nodeSelector: expected an object of node"),
    (
        "local",
        "nodeSelector",
        {"pingpod dev/node": "real"},
        "pingpod:nodeSelector: expected node label keys (an optional DNS-subdomain prefix and '/', "
        "then a name of at most 63 letters, digits, '-', '_' or '.', beginning and ending with a "
        "letter or digit), got 'pingpod dev/node'",
    ),
    # The prefix is a lowercase DNS subdomain; one '/' at most; the name at most 63 characters.
    ("local", "nodeSelector", {"Pingpod.dev/node": "real"}, "got 'Pingpod.dev/node'"),
    ("local", "nodeSelector", {"a/b/c": "real"}, "expected node label keys"),
    ("local", "nodeSelector", {"/node": "real"}, "expected node label keys"),
    ("local", "nodeSelector", {"pingpod.dev/": "real"}, "expected node label keys"),
    ("local", "nodeSelector", {"-node": "real"}, "expected node label keys"),
    ("local", "nodeSelector", {"n" * 64: "real"}, "expected node label keys"),
    ("local", "nodeSelector", {f"{'p' * 254}/node": "real"}, "expected node label keys"),
    ("local", "nodeSelector", {"": "real"}, "expected node label keys"),
    (
        "local",
        "nodeSelector",
        {"pingpod.dev/node": "real node"},
        "pingpod:nodeSelector: expected a label value (empty, or at most 63 letters, digits, '-', "
        "'_' or '.', beginning and ending with a letter or digit) for 'pingpod.dev/node', "
        "got 'real node'",
    ),
    ("local", "nodeSelector", {"pingpod.dev/node": "v" * 64}, "for 'pingpod.dev/node', got 'vvv"),
    ("local", "nodeSelector", {"pingpod.dev/node": "real-"}, "got 'real-'"),
    ("local", "nodeSelector", {"rack": -1}, "expected a label value"),
    ("local", "nodeSelector", {"rack": 1.5}, "for 'rack', got 1.5"),
    ("local", "nodeSelector", {"rack": None}, "for 'rack', got None"),
    ("local", "nodeSelector", {"rack": {"row": "a"}}, "for 'rack', got {'row': 'a'}"),
    # prod pins echo pods to arm64 (echoArm64Only: true).
    (
        "prod",
        "nodeSelector",
        {"kubernetes.io/arch": "amd64"},
        "pingpod:nodeSelector: expected no kubernetes.io/arch other than arm64 while "
        "echoArm64Only is true, got 'amd64'",
    ),
    ("prod", "profile", "tiny", "pingpod:profile: expected a profile ('standard' or 'lean')"),
    ("prod", "profile", "Lean", "got 'Lean'"),
    ("prod", "monitoring", "yes", "pingpod:monitoring: expected true or false, got 'yes'"),
    (
        "prod",
        "monitoringChartVersion",
        "latest",
        "pingpod:monitoringChartVersion: expected a kube-prometheus-stack chart version",
    ),
    ("local", "monitoring", True, "pingpod:monitoring: only mode 'aws' deploys monitoring"),
    ("local", "echoImage", None, "pingpod:echoImage is required when mode is 'app'"),
    ("local", "provisionerImage", None, "pingpod:provisionerImage is required when mode is 'app'"),
    (
        "local",
        "provisionerImage",
        "Not An Image",
        "pingpod:provisionerImage: expected an image reference",
    ),
]


@pytest.mark.parametrize(
    ("stack", "key", "value", "message"),
    BAD_CONFIG,
    ids=[f"{s}-{k}-{json.dumps(v)}" for s, k, v, _ in BAD_CONFIG],
)
def test_bad_config_fails_before_any_resource(
    stack: str, key: str, value: Any, message: str
) -> None:
    config = stack_config(stack, {key: value})
    mocks = StackMocks(stack)
    with pytest.raises(ConfigError) as caught:
        run_program(stack, config, mocks=mocks)
    assert message in str(caught.value)
    assert mocks.resources == [], "resources were declared before the config was checked"


def test_cli_defaults_alone_are_enough_for_local_mode() -> None:
    # What `pulumi config set mode app` plus the two images gives, nothing else.
    config = {
        "pingpod:mode": "app",
        "pingpod:echoImage": "registry.local/echo@sha256:" + "a" * 64,
        "pingpod:provisionerImage": "registry.local/provisioner:1.0",
    }
    run = run_program("dev", config)
    assert {r.type.split(":")[0] for r in run.resources} == {"pingpod", "kubernetes"}


def _node_selector(stack: str, value: Any) -> tuple[tuple[str, str], ...]:
    """What the program reads from ``nodeSelector`` set to ``value`` (None: unset)."""
    values = stack_config(stack, {"nodeSelector": value})
    source = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("pingpod:")}
    return load_config(_Source(source), warn=lambda _: None).app.node_selector


class _Source:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str) -> str | None:
        return self.values.get(key)


# (value as the engine passes it, what the program reads)
GOOD_NODE_SELECTORS: list[tuple[Any, tuple[tuple[str, str], ...]]] = [
    (None, ()),
    ({}, ()),
    ("", ()),
    ({"pingpod.dev/node": "real"}, (("pingpod.dev/node", "real"),)),
    # Sorted by key.
    (
        {"kubernetes.io/hostname": "node-1", "disktype": "ssd"},
        (("disktype", "ssd"), ("kubernetes.io/hostname", "node-1")),
    ),
    ({"example.com/empty": ""}, (("example.com/empty", ""),)),
    ({"Zone_A.b-C": "Eu_1.x-Y"}, (("Zone_A.b-C", "Eu_1.x-Y"),)),
    ({"n" * 63: "v" * 63}, (("n" * 63, "v" * 63),)),
    ({f"{'p' * 253}/node": "x"}, ((f"{'p' * 253}/node", "x"),)),
    # `pulumi config set --path` stores true/false and whole numbers typed.
    ({"node-role.kubernetes.io/worker": True}, (("node-role.kubernetes.io/worker", "true"),)),
    ({"spot": False, "rack": 7}, (("rack", "7"), ("spot", "false"))),
]


@pytest.mark.parametrize(
    ("value", "expected"), GOOD_NODE_SELECTORS, ids=[json.dumps(v) for v, _ in GOOD_NODE_SELECTORS]
)
def test_node_selector_reads_label_pairs(value: Any, expected: tuple[tuple[str, str], ...]) -> None:
    assert _node_selector("local", value) == expected


def test_node_selector_may_name_arm64_beside_echo_arm64_only() -> None:
    selected = _node_selector("prod", {"kubernetes.io/arch": "arm64"})
    assert selected == (("kubernetes.io/arch", "arm64"),)
