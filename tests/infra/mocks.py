"""The mock engine's answers: plausible outputs for what the program declares and calls.

``StackMocks`` records every resource registration (``Recorded``) and answers
AWS, EKS, the registry and Helm with plausible values (ids, ARNs, subnet ids, a
kubeconfig, an image digest, a queue URL). ``tests/infra/harness.py`` runs the
program against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

ACCOUNT = "123456789012"
REGION = "eu-west-1"
# Who runs the program: CI's deploy role, as sts:GetCallerIdentity names it.
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pingpod-deploy"
CALLER_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/pingpod-deploy/pingpod-deploy-1234"


@dataclass(frozen=True)
class Recorded:
    """One resource registration as the engine would see it."""

    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    provider: str | None
    parent_type: str | None = None
    # URNs this resource waits for: all of them, and per input property.
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Input properties the engine keeps at their old values (``ignore_changes``).
    ignore_changes: tuple[str, ...] = ()

    @property
    def urn_suffix(self) -> str:
        return f"{self.type}::{self.name}"

    def depends_on(self, other: Recorded, prop: str | None = None) -> bool:
        """Whether this resource (or one of its inputs) waits for ``other``."""
        urns = self.property_dependencies.get(prop, ()) if prop else self.dependencies
        return any(
            u.endswith(f"${other.urn_suffix}") or u.endswith(f"::{other.urn_suffix}") for u in urns
        )


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class StackMocks(pulumi.runtime.Mocks):
    """Plausible outputs for the resources and functions this program uses.

    ``caller_arn`` is the identity the program runs as; ``clusters`` are the EKS
    clusters that already exist in the region, by name, with their tags.
    """

    def __init__(
        self,
        stack: str,
        *,
        caller_arn: str = CALLER_ARN,
        clusters: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.stack = stack
        self.caller_arn = caller_arn
        self.clusters = dict(clusters or {})
        self.resources: list[Recorded] = []
        self.calls: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        self.resources.append(
            Recorded(
                type=args.typ,
                name=args.name,
                inputs=inputs,
                custom=bool(args.custom),
                provider=args.provider,
            )
        )
        rid = f"{args.name}-id"
        # Custom resources echo their inputs as outputs, as most providers do;
        # components (awsx, pulumi-eks) have outputs of their own, typed
        # differently from their inputs.
        state: dict[str, Any] = {**inputs} if args.custom else {}
        typ = args.typ
        if typ == "awsx:ec2:Vpc":
            state |= {
                "vpcId": "vpc-0123456789abcdef0",
                "publicSubnetIds": ["subnet-pub-a", "subnet-pub-b"],
                "privateSubnetIds": ["subnet-priv-a", "subnet-priv-b"],
                "isolatedSubnetIds": [],
            }
        elif typ == "eks:index:Cluster":
            state |= self._eks_cluster(args.name)
        elif typ.startswith("aws:"):
            service = typ.split(":")[1].split("/")[0]
            physical = inputs.get("name") or f"{args.name}-1234567"
            state |= {"arn": _arn(service, f"{args.name}/{physical}"), "name": physical}
            state |= self._aws_extras(typ, args.name, inputs)
        elif typ == "docker-build:index:Image":
            tags = inputs.get("tags") or [f"example/{args.name}:latest"]
            repo = str(tags[0]).rsplit(":", 1)[0]
            digest = _digest(args.name)
            # docker-build's ref: the first pushed tag, pinned to the digest.
            state |= {"digest": digest, "ref": f"{repo}:latest@{digest}"}
        elif typ == "kubernetes:helm.sh/v3:Release":
            state |= {"status": {"status": "deployed", "version": 1}}
        return rid, state

    def _eks_cluster(self, name: str) -> dict[str, Any]:
        endpoint = f"https://{name.upper()}.gr7.{REGION}.eks.amazonaws.com"
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubernetes", "cluster": {"server": endpoint}}],
            "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
            "current-context": "aws",
            "users": [{"name": "aws", "user": {"exec": {"command": "aws"}}}],
        }
        return {
            "kubeconfig": kubeconfig,
            "kubeconfigJson": json.dumps(kubeconfig),
            "clusterSecurityGroupId": "sg-0eksclustersg0000",
        }

    def _aws_extras(self, typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        if typ == "aws:ecr/repository:Repository":
            registry = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
            return {
                "repositoryUrl": f"{registry}/{inputs.get('name', name)}",
                "registryId": ACCOUNT,
            }
        if typ == "aws:lb/loadBalancer:LoadBalancer":
            return {"dnsName": f"{name}-123.{REGION}.elb.amazonaws.com", "zoneId": "Z32O12XQLNTSW2"}
        if typ == "aws:acm/certificate:Certificate":
            domain = inputs["domainName"]
            return {
                "domainValidationOptions": [
                    {
                        "domainName": domain,
                        "resourceRecordName": f"_abc123.{domain}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": "_xyz789.acm-validations.aws.",
                    }
                ]
            }
        if typ == "aws:acm/certificateValidation:CertificateValidation":
            return {"certificateArn": inputs["certificateArn"]}
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"latestVersion": 1}
        if typ == "aws:ec2/securityGroup:SecurityGroup":
            return {"id": f"sg-{name}"}
        if typ == "aws:sqs/queue:Queue":
            return {"url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}-1234567"}
        return {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        self.calls.append(args.token)
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {
                "userName": "AWS",
                "password": "mock-ecr-password",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
                "authorizationToken": "bW9jaw==",
                "expiresAt": "2030-01-01T00:00:00Z",
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": REGION, "name": REGION, "id": REGION}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": self.caller_arn, "userId": "AROAEXAMPLE"}, []
        if args.token == "aws:eks/getClusters:getClusters":
            return {"id": REGION, "names": sorted(self.clusters)}, []
        if args.token == "aws:eks/getCluster:getCluster":
            name = args.args["name"]
            return {"id": name, "name": name, "tags": dict(self.clusters[name])}, []
        return {}, []
