"""Karpenter under mocks: its AWS side, linked together, and the session nodes it may launch."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.karpenter import CHART, CRD_CHART, NAMESPACE, SERVICE_ACCOUNT, Karpenter, KarpenterArgs
from infra.karpenter_policy import INTERRUPTION_EVENTS, controller_policy, queue_policy
from infra.keys import DEFAULTS
from infra.lbc_policy import POD_IDENTITY_TRUST
from infra.metrics_server import CHART_REPO as METRICS_CHART_REPO
from infra.metrics_server import chart_values as metrics_values
from infra.nodes import AUTOSCALING_REQUESTS
from infra.session_nodes import SESSION_INSTANCE_TYPES, SESSION_TAINT
from infra.settings import AutoscalingSettings
from tests.infra.harness import ACCOUNT, REGION, Recorded, StackRun, run_function, run_stack
from tests.infra.render import to_api

CLUSTER = "pingpod-prod"
CLUSTER_SG = "sg-0eksclustersg0000"  # the mocks' EKS cluster security group
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"


@pytest.fixture(scope="module")
def lean() -> StackRun:
    return run_stack("prod", {"profile": "lean"})


def api(run: StackRun, name: str) -> dict[str, Any]:
    return to_api(run.named(name).inputs)


def mock_arn(service: str, name: str) -> str:
    """The ARN the mocks give an auto-named resource."""
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}/{name}-1234567"


def spec(run: StackRun, type_: str) -> dict[str, Any]:
    return to_api(run.one(type_).inputs)["spec"]


def test_interruption_queue_is_fed_by_the_four_rules(prod: StackRun) -> None:
    queue = prod.named("pingpod-karpenter-queue")
    assert to_api(queue.inputs)["sqsManagedSseEnabled"] is True
    rules = {r.name: r for r in prod.of_type(RULE)}
    assert set(rules) == {f"pingpod-karpenter-{event}" for event in INTERRUPTION_EVENTS}
    for event, pattern in INTERRUPTION_EVENTS.items():
        rule = rules[f"pingpod-karpenter-{event}"]
        assert json.loads(rule.inputs["eventPattern"]) == pattern
        (target,) = [t for t in prod.of_type(TARGET) if t.name == rule.name]
        assert target.depends_on(rule, "rule")
        assert target.depends_on(queue, "arn")
    assert {json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules.values()} == {
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "AWS Health Event",
    }
    policy = prod.named("pingpod-karpenter-queue-policy")
    assert policy.depends_on(queue, "queueUrl")
    queue_arn = mock_arn("sqs", "pingpod-karpenter-queue")
    assert json.loads(policy.inputs["policy"]) == queue_policy(queue_arn)


def test_chart_reads_the_queue_and_the_cluster(prod: StackRun) -> None:
    release = prod.named("pingpod-karpenter")
    args = to_api(release.inputs)
    assert args["chart"] == CHART == "oci://public.ecr.aws/karpenter/karpenter"
    assert args["version"] == DEFAULTS["karpenterChartVersion"]
    assert args["namespace"] == NAMESPACE == "kube-system"
    settings = args["values"]["settings"]
    assert settings["clusterName"] == CLUSTER
    assert settings["interruptionQueue"] == "pingpod-karpenter-queue-1234567"
    assert release.depends_on(prod.named("pingpod-karpenter-queue"), "values")
    # Interruption handling is live before the controller starts.
    for target in prod.of_type(TARGET):
        assert release.depends_on(target), target.name
    assert release.depends_on(prod.named("pingpod-karpenter-queue-policy"))
    # The CRDs come from their own chart, of the same version, first.
    crds = prod.named("pingpod-karpenter-crd")
    assert to_api(crds.inputs)["chart"] == CRD_CHART
    assert to_api(crds.inputs)["version"] == args["version"]
    assert args["skipCrds"] is True
    assert release.depends_on(crds)


def test_controller_identity_through_pod_identity(prod: StackRun) -> None:
    association = api(prod, "pingpod-karpenter-identity")
    values = api(prod, "pingpod-karpenter")["values"]
    assert (association["namespace"], association["serviceAccount"]) == (
        "kube-system",
        SERVICE_ACCOUNT,
    )
    assert values["serviceAccount"] == {"create": True, "name": "karpenter"}
    assert association["clusterName"] == CLUSTER
    trust = json.loads(prod.named("pingpod-karpenter-role").inputs["assumeRolePolicy"])
    assert trust == POD_IDENTITY_TRUST
    release = prod.named("pingpod-karpenter")
    assert release.depends_on(prod.named("pingpod-karpenter-identity"))
    assert release.depends_on(prod.one("aws:eks/addon:Addon"))  # the Pod Identity agent
    assert release.depends_on(prod.one("eks:index:ManagedNodeGroup"))
    policy = json.loads(prod.named("pingpod-karpenter-policy").inputs["policy"])
    assert policy == controller_policy(
        cluster=CLUSTER,
        region=REGION,
        account=ACCOUNT,
        node_role_arn=mock_arn("iam", "pingpod-session-node-role"),
        queue_arn=mock_arn("sqs", "pingpod-karpenter-queue"),
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    # Launching, tagging and terminating only what carries this cluster's tag.
    for sid in ("AllowScopedDeletion", "AllowScopedEC2LaunchTemplateAccessActions"):
        condition = statements[sid]["Condition"]["StringEquals"]
        assert condition == {f"aws:ResourceTag/kubernetes.io/cluster/{CLUSTER}": "owned"}
    # The controller may pass the session nodes' role to EC2, and no other.
    passed = statements["AllowPassingInstanceRole"]["Resource"]
    assert passed == mock_arn("iam", "pingpod-session-node-role")
    assert not [s for s in policy["Statement"] if s["Action"] == "*" or s["Action"] == ["*"]]


def test_session_nodes_join_with_their_own_role(prod: StackRun) -> None:
    entry = prod.named("pingpod-session-node-access")
    assert to_api(entry.inputs)["type"] == "EC2_LINUX"
    assert to_api(entry.inputs)["clusterName"] == CLUSTER
    assert entry.depends_on(prod.named("pingpod-session-node-role"), "principalArn")
    trust = json.loads(prod.named("pingpod-session-node-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    managed = {
        to_api(r.inputs)["policyArn"]
        for r in prod.resources
        if r.name.startswith("pingpod-session-node-") and r.type.endswith("RolePolicyAttachment")
    }
    node_group = {
        to_api(r.inputs)["policyArn"]
        for r in prod.resources
        if r.name in ("pingpod-node-worker", "pingpod-node-cni", "pingpod-node-ecr")
    }
    assert managed == node_group  # the managed nodes' policies, nothing more


def test_controller_fits_the_system_group(prod: StackRun, lean: StackRun) -> None:
    cpu, memory = AUTOSCALING_REQUESTS["karpenter"]
    for run, replicas in ((prod, 2), (lean, 1)):
        values = api(run, "pingpod-karpenter")["values"]
        assert values["replicas"] == replicas
        controller = values["controller"]
        assert controller["resources"]["requests"] == {"cpu": f"{cpu}m", "memory": f"{memory}Mi"}
        assert controller["env"] == [{"name": "AWS_REGION", "value": REGION}]
        # The chart's own affinity keeps it off the nodes it launches.
        assert "affinity" not in values and "nodeSelector" not in values


def test_node_pool_arm64_t4g_with_a_cpu_limit(prod: StackRun, lean: StackRun) -> None:
    for run, bought in ((prod, ["spot", "on-demand"]), (lean, ["spot"])):
        pool = spec(run, NODE_POOL)
        requirements = {r["key"]: r for r in pool["template"]["spec"]["requirements"]}
        assert requirements["kubernetes.io/arch"]["values"] == ["arm64"]
        assert requirements["karpenter.sh/capacity-type"]["values"] == bought
        types = requirements["node.kubernetes.io/instance-type"]["values"]
        assert types == list(SESSION_INSTANCE_TYPES) and all(t.startswith("t4g.") for t in types)
        assert all(r["operator"] == "In" for r in requirements.values())
        assert pool["limits"] == {"cpu": str(DEFAULTS["sessionNodesMaxCpu"])}
        disruption = pool["disruption"]
        assert disruption["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
        assert disruption["budgets"] == [{"nodes": "1"}]
        assert pool["template"]["spec"]["taints"] == [SESSION_TAINT]
        assert pool["template"]["spec"]["nodeClassRef"] == {
            "group": "karpenter.k8s.aws",
            "kind": "EC2NodeClass",
            "name": to_api(run.one(NODE_CLASS).inputs)["metadata"]["name"],
        }


def test_node_pool_limit_from_config() -> None:
    run = run_stack("prod", {"sessionNodesMaxCpu": 10})
    assert spec(run, NODE_POOL)["limits"] == {"cpu": "10"}


def test_node_class_by_profile(prod: StackRun, lean: StackRun) -> None:
    for run, subnets, public in (
        (prod, ["subnet-priv-a", "subnet-priv-b"], False),
        (lean, ["subnet-pub-a", "subnet-pub-b"], True),
    ):
        node_class = spec(run, NODE_CLASS)
        assert node_class["role"] == "pingpod-session-node-role-1234567"
        assert node_class["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
        assert node_class["subnetSelectorTerms"] == [{"id": s} for s in subnets]
        assert node_class["securityGroupSelectorTerms"] == [{"id": CLUSTER_SG}]
        assert node_class["associatePublicIPAddress"] is public
        assert node_class["kubelet"] == {"maxPods": 110}
        metadata = node_class["metadataOptions"]
        assert (metadata["httpTokens"], metadata["httpPutResponseHopLimit"]) == ("required", 1)
        (root,) = node_class["blockDeviceMappings"]
        assert root["ebs"]["encrypted"] is True
        assert root["ebs"]["volumeSize"] == f"{DEFAULTS['nodeDiskSizeGib']}Gi"


def test_session_nodes_after_the_controller_and_before_their_identity(prod: StackRun) -> None:
    node_class, pool = prod.one(NODE_CLASS), prod.one(NODE_POOL)
    release = prod.named("pingpod-karpenter")
    # Deleted first on destroy, while the controller can still drain their nodes.
    assert pool.depends_on(node_class) and pool.depends_on(release)
    assert node_class.depends_on(release)
    assert node_class.depends_on(prod.named("pingpod-session-node-access"))
    assert node_class.depends_on(prod.named("pingpod-session-node-role"), "spec")
    for r in (node_class, pool):
        assert r.provider and "pingpod-k8s" in r.provider


def test_metrics_server_chart(prod: StackRun) -> None:
    release: Recorded = prod.named("pingpod-metrics-server")
    args = to_api(release.inputs)
    assert args["chart"] == "metrics-server"
    assert args["repositoryOpts"] == {"repo": METRICS_CHART_REPO}
    assert args["version"] == DEFAULTS["metricsServerChartVersion"]
    assert args["namespace"] == "kube-system"
    assert args["values"] == to_api(metrics_values())
    cpu, memory = AUTOSCALING_REQUESTS["metrics-server"]
    assert args["values"]["resources"]["requests"] == {"cpu": f"{cpu}m", "memory": f"{memory}Mi"}
    assert release.depends_on(prod.one("eks:index:ManagedNodeGroup"))


def test_component_on_its_own_sets_its_outputs() -> None:
    captured: dict[str, Karpenter] = {}

    def program() -> None:
        captured["karpenter"] = Karpenter(
            "k",
            KarpenterArgs(
                cluster_name="c",
                subnet_ids=["subnet-a"],
                security_group_id="sg-1",
                public_nodes=False,
                disk_size_gib=20,
                settings=AutoscalingSettings(
                    karpenter_chart_version="1.15.2",
                    metrics_server_chart_version="3.13.1",
                    session_nodes_max_cpu=2,
                    session_capacity_types=("spot",),
                    controller_replicas=1,
                ),
                k8s_provider=k8s.Provider("test-k8s", kubeconfig="{}"),
            ),
        )

    run = run_function(program)
    karpenter = captured["karpenter"]
    for attr in ("node_pool", "interruption_queue", "node_role_name"):
        assert isinstance(getattr(karpenter, attr), pulumi.Output), attr
    assert to_api(run.one(NODE_POOL).inputs)["spec"]["limits"] == {"cpu": "2"}
    assert all(
        r.name.startswith("k-")
        for r in run.resources
        if r.parent_type == "pingpod:karpenter:Karpenter"
    )
