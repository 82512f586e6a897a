"""The AWS Load Balancer Controller's IAM policy keeps upstream's boundaries."""

from __future__ import annotations

from typing import Any

from infra.lbc_policy import LBC_POLICY, POD_IDENTITY_TRUST

TAG = "elbv2.k8s.aws/cluster"


def statements_with(action: str) -> list[dict[str, Any]]:
    return [s for s in LBC_POLICY["Statement"] if action in s["Action"]]


def test_only_allows_and_no_service_wildcards() -> None:
    for statement in LBC_POLICY["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            service, name = action.split(":")
            assert "*" not in name and service != "*", action


def test_creation_requires_the_cluster_tag() -> None:
    for action in (
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:CreateTargetGroup",
    ):
        (statement,) = statements_with(action)
        assert statement["Condition"]["Null"] == {f"aws:RequestTag/{TAG}": "false"}


def test_destruction_only_of_tagged_resources() -> None:
    for action in (
        "elasticloadbalancing:DeleteLoadBalancer",
        "elasticloadbalancing:DeleteTargetGroup",
        "ec2:DeleteSecurityGroup",
    ):
        for statement in statements_with(action):
            assert statement["Condition"]["Null"][f"aws:ResourceTag/{TAG}"] == "false", action


def test_target_registration_scoped_to_target_groups() -> None:
    (statement,) = statements_with("elasticloadbalancing:RegisterTargets")
    assert statement["Resource"] == "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*"


def test_service_linked_role_only_for_elb() -> None:
    (statement,) = statements_with("iam:CreateServiceLinkedRole")
    assert statement["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}
    }


def test_pod_identity_trust() -> None:
    (statement,) = POD_IDENTITY_TRUST["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
