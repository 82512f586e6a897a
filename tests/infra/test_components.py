"""Components on their own, for paths the two stacks do not take."""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.cluster import Cluster, ClusterArgs
from infra.config import load_config
from infra.edge import Edge, EdgeArgs
from infra.identity import CREATOR_TAG, principal
from infra.settings import AwsSettings
from tests.infra.harness import ACCOUNT, TODAY, run_function


class _Keys:
    """The keys mode 'aws' requires, and nothing else."""

    def get(self, key: str) -> str | None:
        return {"mode": "aws", "domain": "demo.example.org", "hostedZoneId": "Z123"}.get(key)


def aws_settings(**changes: Any) -> AwsSettings:
    """What a stack that sets only the keys mode 'aws' requires gets, with ``changes``."""
    aws = load_config(_Keys(), today=TODAY, warn=lambda _: None).aws
    assert aws is not None
    return dataclasses.replace(aws, **changes)


def _edge(ip_address_type: str) -> None:
    provider = k8s.Provider("test-k8s", kubeconfig="{}")
    Edge(
        "edge",
        EdgeArgs(
            vpc_id="vpc-1",
            public_subnet_ids=["subnet-a", "subnet-b"],
            node_security_group_id="sg-nodes",
            domain="demo.example.org",
            hosted_zone_id="Z123",
            cluster_name="c",
            k8s_provider=provider,
            lbc_chart_version="1.17.1",
            ip_address_type="dualstack" if ip_address_type == "dualstack" else "ipv4",
        ),
    )


@pytest.mark.parametrize(
    ("ip_address_type", "records"), [("ipv4", ["A"]), ("dualstack", ["A", "AAAA"])]
)
def test_aaaa_record_follows_the_alb_address_type(ip_address_type: str, records: list[str]) -> None:
    run = run_function(lambda: _edge(ip_address_type))
    aliases = [r for r in run.of_type("aws:route53/record:Record") if r.inputs.get("aliases")]
    assert sorted(r.inputs["type"] for r in aliases) == records
    assert run.one("aws:lb/loadBalancer:LoadBalancer").inputs["ipAddressType"] == ip_address_type
    v6 = [
        r
        for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs.get("cidrIpv6")
    ]
    assert len(v6) == (2 if ip_address_type == "dualstack" else 0)


def test_cluster_rejects_x86_instance_types() -> None:
    def program() -> None:
        Cluster(
            "c",
            ClusterArgs(
                cluster_name="c",
                vpc_id="vpc-1",
                public_subnet_ids=["a"],
                private_subnet_ids=["b"],
                settings=aws_settings(node_instance_types=("t4g.medium", "m6i.large")),
            ),
        )

    with pytest.raises(ValueError, match=r"'m6i\.large' is not a Graviton instance type"):
        run_function(program)


def test_cluster_admin_access_entries() -> None:
    arns = ("arn:aws:iam::123456789012:role/pingpod-deploy", "arn:aws:iam::123456789012:user/Ann")

    def program() -> None:
        Cluster(
            "c",
            ClusterArgs(
                cluster_name="c",
                vpc_id="vpc-1",
                public_subnet_ids=["a"],
                private_subnet_ids=["b"],
                settings=aws_settings(cluster_admins=arns),
            ),
        )

    run = run_function(program)
    cluster = run.one("eks:index:Cluster").inputs
    entries = cluster["accessEntries"]
    assert set(entries) == {"pingpod-deploy", "ann"}
    for arn, entry in zip(arns, (entries["pingpod-deploy"], entries["ann"]), strict=True):
        assert entry["principalArn"] == arn
        policy = entry["accessPolicies"]["cluster-admin"]
        assert policy["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
        assert policy["accessScope"] == {"type": "cluster"}
    # No creator known: nothing left out, no tag.
    assert "clusterTags" not in cluster


def test_cluster_leaves_out_its_creator_and_tags_the_cluster() -> None:
    creator = principal(f"arn:aws:sts::{ACCOUNT}:assumed-role/pingpod-deploy/run-7")
    arns = (
        # The same role, listed with its path: still the creator.
        f"arn:aws:iam::{ACCOUNT}:role/ci/pingpod-deploy",
        f"arn:aws:iam::{ACCOUNT}:role/pingpod-preview",
    )

    def program() -> None:
        Cluster(
            "c",
            ClusterArgs(
                cluster_name="c",
                vpc_id="vpc-1",
                public_subnet_ids=["a"],
                private_subnet_ids=["b"],
                settings=aws_settings(cluster_admins=arns),
                creator=creator,
            ),
        )

    cluster = run_function(program).one("eks:index:Cluster").inputs
    assert [e["principalArn"] for e in cluster["accessEntries"].values()] == [arns[1]]
    assert cluster["clusterTags"] == {CREATOR_TAG: f"arn:aws:iam::{ACCOUNT}:role/pingpod-deploy"}


def test_outputs_are_set_on_components() -> None:
    captured: dict[str, object] = {}

    def program() -> None:
        cluster = Cluster(
            "c",
            ClusterArgs(
                cluster_name="c",
                vpc_id="vpc-1",
                public_subnet_ids=["a"],
                private_subnet_ids=["b"],
                settings=aws_settings(),
            ),
        )
        captured["cluster"] = cluster

    run_function(program)
    cluster = captured["cluster"]
    assert isinstance(cluster, Cluster)
    for attr in ("cluster_name", "kubeconfig", "node_security_group_id"):
        assert isinstance(getattr(cluster, attr), pulumi.Output), attr
