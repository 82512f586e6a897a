"""Configuration: the schema in Pulumi.yaml, the stack files, and every bad value."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.config import DEFAULTS, ConfigError
from tests.infra.harness import REPO, StackMocks, run_program, stack_config

SCHEMA: dict[str, Any] = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]
YAML_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


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
    ("prod", "namespace", "Ping_Pod", "pingpod:namespace: expected a DNS label"),
    ("prod", "echoArm64Only", "yes", "pingpod:echoArm64Only: expected true or false, got 'yes'"),
    (
        "prod",
        "allowGatewayKill",
        "sometimes",
        "pingpod:allowGatewayKill: expected true or false, got 'sometimes'",
    ),
    ("prod", "allowedOrigins", ["ftp://x"], "pingpod:allowedOrigins: expected a list of origins"),
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
