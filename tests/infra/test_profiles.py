"""The lean profile under mocks: one Spot node in a public subnet, no NAT, nothing else changed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.config import load_config
from infra.config_reader import ConfigError
from infra.nodes import INSTANCE_TYPES, SYSTEM_PODS, budget, session_nodes_echo_pods
from infra.nodes import main as nodes_main
from infra.profiles import LEAN_INSTANCE_TYPE, PROFILES, SYSTEM_INSTANCE_TYPE
from tests.infra.harness import REPO, StackRun, run_stack, stack_config
from tests.infra.render import to_api

CLUSTER_SG = "sg-0eksclustersg0000"  # the mocks' EKS cluster security group
ALB_SG = "pingpod-alb-sg-id"  # the mocks' id of the ALB's security group


@pytest.fixture(scope="module")
def lean() -> StackRun:
    return run_stack("prod", {"profile": "lean"})


@pytest.fixture(scope="module")
def standard() -> StackRun:
    return run_stack("prod", {"profile": "standard"})


def inputs_by_resource(run: StackRun) -> dict[tuple[str, str], Any]:
    return {(r.type, r.name): to_api(r.inputs) for r in run.resources}


def test_lean_has_no_nat_gateway(lean: StackRun) -> None:
    vpc = to_api(lean.one("awsx:ec2:Vpc").inputs)
    assert vpc["natGateways"] == {"strategy": "None"}
    # The subnets keep their layout (a switch of profile replaces none of them).
    assert [s["type"] for s in vpc["subnetSpecs"]] == ["Public", "Private"]
    assert not lean.of_type("aws:ec2/natGateway:NatGateway")
    assert not lean.of_type("aws:ec2/eip:Eip")


def test_lean_has_one_spot_node_of_the_chosen_type_in_public_subnets(lean: StackRun) -> None:
    groups = lean.of_type("eks:index:ManagedNodeGroup")
    assert len(groups) == 1
    group = to_api(groups[0].inputs)
    assert group["capacityType"] == "SPOT"
    assert group["instanceTypes"] == [LEAN_INSTANCE_TYPE] == ["t4g.small"]
    assert group["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 1}
    assert group["subnetIds"] == ["subnet-pub-a", "subnet-pub-b"]
    assert group["amiType"] == "AL2023_ARM_64_STANDARD"


def test_lean_nodes_admit_only_the_alb_and_the_cluster(lean: StackRun) -> None:
    """Public nodes: no inbound rule from any address range, only from security groups."""
    rules = [
        to_api(r.inputs)
        for r in lean.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs.get("securityGroupId") == CLUSTER_SG
    ]
    assert rules, "the ALB's rule into the node security group is missing"
    for rule in rules:
        assert "cidrIpv4" not in rule and "cidrIpv6" not in rule and "prefixListId" not in rule
        assert rule["referencedSecurityGroupId"] in (ALB_SG, CLUSTER_SG), rule
    # No other way in: no security group rule of the older kind, no other group on the nodes.
    assert not lean.of_type("aws:ec2/securityGroupRule:SecurityGroupRule")
    template = to_api(lean.one("aws:ec2/launchTemplate:LaunchTemplate").inputs)
    assert "vpcSecurityGroupIds" not in template and "networkInterfaces" not in template
    # Containers cannot borrow the node's role through IMDS, public IP or not.
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert template["metadataOptions"]["httpTokens"] == "required"


def test_lean_changes_only_the_network_and_the_node_group(
    lean: StackRun, standard: StackRun
) -> None:
    lean_inputs, standard_inputs = inputs_by_resource(lean), inputs_by_resource(standard)
    assert set(lean_inputs) == set(standard_inputs)
    changed = {key for key in lean_inputs if lean_inputs[key] != standard_inputs[key]}
    assert changed == {
        ("awsx:ec2:Vpc", "pingpod-vpc"),
        ("eks:index:ManagedNodeGroup", "pingpod-nodes"),
        # Autoscaling: one Karpenter replica on the one system node, session nodes
        # Spot only, in the public subnets.
        ("kubernetes:helm.sh/v3:Release", "pingpod-karpenter"),
        ("kubernetes:karpenter.sh/v1:NodePool", "pingpod-session-node-pool"),
        ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "pingpod-session-node-class"),
    }


def test_lean_without_autoscaling_changes_only_the_network_and_the_node_group() -> None:
    fixed_lean = inputs_by_resource(run_stack("prod", {"profile": "lean", "autoscaling": False}))
    fixed = inputs_by_resource(run_stack("prod", {"profile": "standard", "autoscaling": False}))
    assert set(fixed_lean) == set(fixed)
    changed = {key for key in fixed if fixed_lean[key] != fixed[key]}
    assert changed == {
        ("awsx:ec2:Vpc", "pingpod-vpc"),
        ("eks:index:ManagedNodeGroup", "pingpod-nodes"),
    }


def test_default_profile_is_standard_and_unchanged(prod: StackRun, standard: StackRun) -> None:
    assert inputs_by_resource(prod) == inputs_by_resource(standard)
    vpc = to_api(prod.one("awsx:ec2:Vpc").inputs)
    assert vpc["natGateways"] == {"strategy": "Single"}
    group = to_api(prod.one("eks:index:ManagedNodeGroup").inputs)
    assert group["capacityType"] == "ON_DEMAND"
    assert group["subnetIds"] == ["subnet-priv-a", "subnet-priv-b"]
    # The system group (autoscaling is on by default): two, one per zone.
    assert group["instanceTypes"] == [SYSTEM_INSTANCE_TYPE]
    assert group["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 2}


def test_unknown_profile_is_a_config_error_naming_the_key() -> None:
    values = stack_config("prod", {"profile": "tiny"})
    source = {k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("pingpod:")}
    with pytest.raises(ConfigError, match=r"pingpod:profile: expected a profile .*got 'tiny'"):
        load_config(_Source(source), warn=lambda _: None)


class _Source:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def _prod_source(**overrides: Any) -> _Source:
    values = stack_config("prod", overrides)
    return _Source({k.split(":", 1)[1]: v for k, v in values.items() if k.startswith("pingpod:")})


def test_lean_warns_when_max_sessions_cannot_fit() -> None:
    warnings: list[str] = []
    config = load_config(_prod_source(profile="lean", autoscaling=False), warn=warnings.append)
    fit = budget(LEAN_INSTANCE_TYPE, 1, 2, monitoring=False).sessions(4)
    assert config.aws is not None and config.aws.node_desired_size == 1
    (warning,) = [w for w in warnings if "maxSessions" in w]
    assert warning.startswith("pingpod:maxSessions: 100 sessions do not fit on 1 x t4g.small (")
    assert warning.endswith(f"Set maxSessions to {fit} or less")
    # Within what fits: no warning.
    quiet: list[str] = []
    load_config(_prod_source(profile="lean", autoscaling=False, maxSessions=fit), warn=quiet.append)
    assert quiet == []
    # The standard stack holds its 100 sessions, scaling or not.
    load_config(_prod_source(), warn=quiet.append)
    load_config(_prod_source(autoscaling=False), warn=quiet.append)
    assert quiet == []


def test_lean_with_session_nodes_counts_them() -> None:
    """The system node (provisioners at their most) and the session nodes at the limit."""
    warnings: list[str] = []
    load_config(_prod_source(profile="lean"), warn=warnings.append)
    system = budget(LEAN_INSTANCE_TYPE, 1, 4, monitoring=False, karpenter_replicas=1)
    fit = system.echo_pods + session_nodes_echo_pods(4) - 4
    (warning,) = warnings
    assert warning.startswith(
        "pingpod:maxSessions: 100 sessions do not fit on 1 x t4g.small and session nodes "
        "of 4 vCPUs ("
    )
    assert warning.endswith(f"Set maxSessions to {fit} or less (or sessionNodesMaxCpu higher)")
    # A higher limit holds them.
    quiet: list[str] = []
    load_config(_prod_source(profile="lean", sessionNodesMaxCpu=6), warn=quiet.append)
    assert quiet == []


def test_the_lean_node_holds_everything_that_must_run() -> None:
    """kube-system, the load balancer controller, two provisioners, the pool, and sessions."""
    node = INSTANCE_TYPES[LEAN_INSTANCE_TYPE]
    lean = budget(LEAN_INSTANCE_TYPE, 1, provisioner_replicas=2, monitoring=False)
    must_run = sum(p.count for p in lean.fixed)
    assert (
        must_run == 9
    )  # aws-node, kube-proxy, pod identity agent, 2 CoreDNS, 2 LBC, 2 provisioners
    assert node.max_pods == 110 and node.eni_max_pods == 11
    # The figure reported for an AL2023 t4g.small: 1,437 MiB allocatable.
    assert node.allocatable_memory_mib == 1437
    assert lean.sessions(pool_size=4) >= 15
    assert lean.limit == "memory"
    # A t4g.medium would hold four times the sessions, at twice the price.
    assert budget("t4g.medium", 1, 2, monitoring=False).sessions(4) > 3 * lean.sessions(4)
    # Monitoring on the lean node leaves room for a handful of sessions only.
    assert budget(LEAN_INSTANCE_TYPE, 1, 2, monitoring=True).sessions(4) < 5


def test_profiles_differ_only_where_the_docs_say() -> None:
    standard, lean = PROFILES["standard"], PROFILES["lean"]
    assert (standard.nat_gateway, standard.public_nodes, standard.capacity_type) == (
        True,
        False,
        "ON_DEMAND",
    )
    assert standard.instance_types is None and standard.nodes is None
    assert (lean.nat_gateway, lean.public_nodes, lean.capacity_type) == (False, True, "SPOT")
    # With autoscaling: the system group, and how session nodes are bought.
    assert (standard.system_nodes, standard.session_capacity_types) == (2, ("spot", "on-demand"))
    assert (lean.system_nodes, lean.session_capacity_types) == (1, ("spot",))


def test_node_budget_uses_the_requests_the_program_sets(prod: StackRun) -> None:
    values = to_api(prod.named("pingpod-lbc").inputs)["values"]
    controller = next(p for p in SYSTEM_PODS if p.name == "aws-load-balancer-controller")
    requests = values["resources"]["requests"]
    assert requests == {"cpu": f"{controller.cpu_m}m", "memory": f"{controller.memory_mib}Mi"}


def test_cost_md_node_budget_is_what_the_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    nodes_main([])
    printed = capsys.readouterr().out
    cost_md = (REPO / "docs" / "cost.md").read_text()
    block = re.search(r"<!-- nodes:begin -->\n(.*?)<!-- nodes:end -->", cost_md, re.S)
    assert block and block.group(1) == printed
