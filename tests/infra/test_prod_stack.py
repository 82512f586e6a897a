"""The prod (AWS) program under mocks: what a reviewer of the infrastructure checks."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from infra.identity import CREATOR_TAG
from infra.keys import DEFAULTS, GRAVITON_INSTANCE_TYPE
from infra.lbc_policy import LBC_POLICY
from infra.profiles import SYSTEM_INSTANCE_TYPE
from tests.infra.harness import DEPLOY_ROLE, REPO, StackRun, run_stack
from tests.infra.render import to_api

PROD = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())["config"]
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"


def inputs(run: StackRun, type_: str) -> dict[str, Any]:
    return to_api(run.one(type_).inputs)


def test_components_and_parents(prod: StackRun) -> None:
    components = {r.type for r in prod.resources if r.type.startswith("pingpod:")}
    assert components == {
        "pingpod:network:Network",
        "pingpod:cluster:Cluster",
        "pingpod:registry:Registry",
        "pingpod:edge:Edge",
        "pingpod:app:App",
        # autoscaling: true, the default
        "pingpod:karpenter:Karpenter",
        "pingpod:metrics_server:MetricsServer",
    }
    for r in prod.resources:
        if r.type.startswith("pingpod:"):
            assert r.parent_type == "pulumi:pulumi:Stack", r.type
        else:
            # Every child sits under one of our components, named after it.
            assert r.parent_type in components, (r.type, r.name, r.parent_type)
            assert r.name.startswith("pingpod-"), r.name


def test_network_two_zones_one_nat_and_lb_subnet_tags(prod: StackRun) -> None:
    vpc = inputs(prod, "awsx:ec2:Vpc")
    assert vpc["numberOfAvailabilityZones"] == 2
    assert vpc["natGateways"] == {"strategy": "Single"}
    specs = {s["type"]: s for s in vpc["subnetSpecs"]}
    assert set(specs) == {"Public", "Private"}
    assert specs["Public"]["tags"] == {"kubernetes.io/role/elb": "1"}
    assert specs["Private"]["tags"] == {"kubernetes.io/role/internal-elb": "1"}


def test_cluster_api_auth_no_default_node_group(prod: StackRun) -> None:
    cluster = inputs(prod, "eks:index:Cluster")
    assert cluster["version"] == DEFAULTS["kubernetesVersion"] == "1.36"
    assert cluster["authenticationMode"] == "API"
    assert cluster["skipDefaultNodeGroup"] is True
    # Only pulumi-eks's default node group reads it, and there is none.
    assert "nodeAssociatePublicIpAddress" not in cluster
    assert cluster["name"] == "pingpod-prod"
    # The mocks' caller (CI's deploy role) creates the cluster: EKS makes it admin.
    assert cluster["clusterTags"] == {CREATOR_TAG: DEPLOY_ROLE}
    cni = cluster["vpcCniOptions"]
    assert cni["enablePrefixDelegation"] is True
    assert cni["enableNetworkPolicy"] is True


def test_node_group_arm64_graviton_private_subnets(prod: StackRun) -> None:
    group = inputs(prod, "eks:index:ManagedNodeGroup")
    assert group["amiType"] == "AL2023_ARM_64_STANDARD"
    # Autoscaling is on: the node group is the standard profile's system group.
    assert group["instanceTypes"] == [SYSTEM_INSTANCE_TYPE]
    for instance_type in group["instanceTypes"]:
        assert GRAVITON_INSTANCE_TYPE.match(instance_type), instance_type
    assert group["subnetIds"] == ["subnet-priv-a", "subnet-priv-b"]
    assert group["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 2}
    assert group["launchTemplate"]["id"] == "pingpod-node-lt-id"


def test_fixed_node_group_follows_the_node_keys() -> None:
    group = inputs(run_stack("prod", {"autoscaling": False}), "eks:index:ManagedNodeGroup")
    assert group["instanceTypes"] == PROD["pingpod:nodeInstanceTypes"]
    assert group["scalingConfig"] == {
        "minSize": PROD["pingpod:nodeMinSize"],
        "desiredSize": PROD["pingpod:nodeDesiredSize"],
        "maxSize": PROD["pingpod:nodeMaxSize"],
    }


def test_launch_template_imdsv2_and_no_max_pods(prod: StackRun) -> None:
    template = inputs(prod, "aws:ec2/launchTemplate:LaunchTemplate")
    metadata = template["metadataOptions"]
    assert metadata["httpTokens"] == "required"
    assert metadata["httpEndpoint"] == "enabled"
    assert metadata["httpPutResponseHopLimit"] in (1, 2)
    root = template["blockDeviceMappings"][0]["ebs"]
    assert root["encrypted"] == "true"
    # EKS writes the kubelet's maxPods itself on managed nodes with its AMI,
    # and its value wins: no user data pretends otherwise.
    assert "userData" not in template
    assert "imageId" not in template  # EKS's AMI, so EKS's bootstrap
    assert "pingpod:nodeMaxPods" not in PROD


def test_pod_identity_agent_addon(prod: StackRun) -> None:
    addon = inputs(prod, "aws:eks/addon:Addon")
    assert addon["addonName"] == "eks-pod-identity-agent"
    assert addon["clusterName"] == "pingpod-prod"


def test_images_arm64_pushed_with_registry_cache(prod: StackRun) -> None:
    images = prod.of_type("docker-build:index:Image")
    assert sorted(i.name for i in images) == ["pingpod-echo-image", "pingpod-provisioner-image"]
    for image in images:
        raw = image.inputs
        args = to_api(raw)
        assert args["platforms"] == ["linux/arm64"]
        assert args["push"] is True
        # Built on `pulumi up` only: a preview build would export its cache to
        # ECR, which a read-only preview role cannot do.
        assert args["buildOnPreview"] is False
        assert args["context"] == {"location": "."}
        assert (REPO / args["dockerfile"]["location"]).is_file()
        assert args["tags"][0].endswith(":latest")
        cache_to = args["cacheTo"][0]["registry"]
        assert cache_to["imageManifest"] is True
        assert cache_to["ociMediaTypes"] is True
        assert args["cacheFrom"][0]["registry"]["ref"] == cache_to["ref"]
        # The ECR token reaches the engine as a secret.
        assert raw["registries"][SIG_KEY] == SECRET_SIG
        assert args["registries"][0]["username"] == "AWS"


def test_repositories_scan_on_push_and_lifecycle(prod: StackRun) -> None:
    repos = prod.of_type("aws:ecr/repository:Repository")
    assert len(repos) == 2
    for repo in repos:
        args = to_api(repo.inputs)
        assert args["imageScanningConfiguration"] == {"scanOnPush": True}
        assert args["forceDelete"] is True
    policies = prod.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert len(policies) == 2
    rules = json.loads(policies[0].inputs["policy"])["rules"]
    assert rules[-1]["selection"]["tagStatus"] == "any"  # "any" must come last


def test_workloads_use_digest_pinned_images(prod: StackRun) -> None:
    for key in ("echoImage", "provisionerImage"):
        assert re.search(r"@sha256:[0-9a-f]{64}$", prod.outputs[key]), prod.outputs[key]
    deployment = inputs(prod, "kubernetes:apps/v1:Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == prod.outputs["provisionerImage"]


def test_https_listener_uses_validated_certificate(prod: StackRun) -> None:
    https = prod.named("pingpod-https")
    validation = prod.one("aws:acm/certificateValidation:CertificateValidation")
    args = to_api(https.inputs)
    assert args["port"] == 443
    assert args["protocol"] == "HTTPS"
    assert args["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    # The listener's certificate comes from the validation, so it waits for issuance.
    assert https.depends_on(validation, "certificateArn")
    assert [a["type"] for a in args["defaultActions"]] == ["forward"]
    assert https.depends_on(prod.one("aws:lb/targetGroup:TargetGroup"), "defaultActions")


def test_certificate_dns_validated_in_the_zone(prod: StackRun) -> None:
    cert = inputs(prod, "aws:acm/certificate:Certificate")
    assert cert["domainName"] == PROD["pingpod:domain"]
    assert cert["validationMethod"] == "DNS"
    record = to_api(prod.named("pingpod-cert-validation").inputs)
    assert record["zoneId"] == PROD["pingpod:hostedZoneId"]
    assert record["type"] == "CNAME"
    assert record["name"] == f"_abc123.{PROD['pingpod:domain']}."
    validation = prod.one("aws:acm/certificateValidation:CertificateValidation")
    assert validation.depends_on(prod.named("pingpod-cert-validation"), "validationRecordFqdns")


def test_http_listener_redirects_to_https(prod: StackRun) -> None:
    args = to_api(prod.named("pingpod-http").inputs)
    assert args["port"] == 80
    assert args["defaultActions"] == [
        {
            "type": "redirect",
            "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"},
        }
    ]


def test_alb_public_and_target_group_for_pod_ips(prod: StackRun) -> None:
    alb = inputs(prod, "aws:lb/loadBalancer:LoadBalancer")
    assert alb["internal"] is False
    assert alb["loadBalancerType"] == "application"
    assert alb["subnets"] == ["subnet-pub-a", "subnet-pub-b"]
    assert alb["idleTimeout"] == PROD["pingpod:albIdleTimeout"]
    assert alb["dropInvalidHeaderFields"] is True
    tg = inputs(prod, "aws:lb/targetGroup:TargetGroup")
    assert (tg["targetType"], tg["port"], tg["protocol"]) == ("ip", 8000, "HTTP")
    assert tg["healthCheck"]["path"] == "/health"


def test_only_the_alb_reaches_the_pods(prod: StackRun) -> None:
    ingress = to_api(prod.named("pingpod-pods-in-alb").inputs)
    assert ingress["securityGroupId"] == "sg-0eksclustersg0000"
    assert (ingress["fromPort"], ingress["toPort"]) == (8000, 8000)
    assert "cidrIpv4" not in ingress
    public = [
        to_api(r.inputs)
        for r in prod.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs.get("cidrIpv4") == "0.0.0.0/0"
    ]
    assert sorted(r["fromPort"] for r in public) == [80, 443]


def test_alias_records_point_at_the_alb(prod: StackRun) -> None:
    alb = prod.one("aws:lb/loadBalancer:LoadBalancer")
    aliases = [r for r in prod.of_type("aws:route53/record:Record") if r.inputs.get("aliases")]
    assert [to_api(r.inputs)["type"] for r in aliases] == ["A"]  # ipv4 ALB: no AAAA
    record = to_api(aliases[0].inputs)
    assert record["name"] == PROD["pingpod:domain"]
    assert record["zoneId"] == PROD["pingpod:hostedZoneId"]
    assert record["aliases"][0]["name"] == "pingpod-alb-123.eu-west-1.elb.amazonaws.com"
    assert record["aliases"][0]["zoneId"] == "Z32O12XQLNTSW2"
    assert aliases[0].depends_on(alb)


def test_load_balancer_controller_with_pod_identity(prod: StackRun) -> None:
    release = prod.named("pingpod-lbc")
    args = to_api(release.inputs)
    assert args["chart"] == "aws-load-balancer-controller"
    assert args["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["version"])
    values = args["values"]
    assert values["clusterName"] == "pingpod-prod"
    assert values["region"] == "eu-west-1"
    assert values["vpcId"] == "vpc-0123456789abcdef0"
    association = to_api(prod.named("pingpod-lbc-identity").inputs)
    assert association["namespace"] == args["namespace"] == "kube-system"
    assert association["serviceAccount"] == values["serviceAccount"]["name"]
    policy = json.loads(prod.named("pingpod-lbc-policy").inputs["policy"])
    assert policy == LBC_POLICY
    trust = json.loads(prod.named("pingpod-lbc-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    # The controller is removed before the nodes and the identity it runs on.
    assert release.depends_on(prod.one("eks:index:ManagedNodeGroup"))
    assert release.depends_on(prod.one("aws:eks/addon:Addon"))
    assert release.depends_on(prod.named("pingpod-lbc-identity"))


def test_target_group_binding_after_controller(prod: StackRun) -> None:
    binding = prod.one("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    assert binding.depends_on(prod.named("pingpod-lbc"))
    assert binding.depends_on(prod.one("aws:lb/targetGroup:TargetGroup"), "spec")
    spec = to_api(binding.inputs)["spec"]
    assert spec["targetType"] == "ip"
    assert spec["serviceRef"] == {"name": "provisioner", "port": 8000}


def test_app_waits_for_the_nodes(prod: StackRun) -> None:
    nodes = prod.one("eks:index:ManagedNodeGroup")
    namespace = prod.one("kubernetes:core/v1:Namespace")
    # Created after the nodes (so the rollout wait has nodes to schedule on)
    # and deleted before them (so its pods can terminate).
    assert namespace.depends_on(nodes)
    for r in prod.kubernetes():
        if r is not namespace and r.parent_type == "pingpod:app:App":
            assert r.depends_on(namespace, "metadata"), r.name


def test_kubernetes_objects_use_the_cluster_provider(prod: StackRun) -> None:
    for r in prod.kubernetes():
        assert r.provider and "pulumi:providers:kubernetes::pingpod-k8s" in r.provider, r.name
    provider = prod.one("pulumi:providers:kubernetes")
    assert provider.depends_on(prod.one("eks:index:Cluster"), "kubeconfig")


def test_outputs_and_secrets(prod: StackRun) -> None:
    assert set(prod.outputs) >= {
        "url",
        "kubeconfig",
        "clusterName",
        "echoImage",
        "provisionerImage",
    }
    assert prod.outputs["url"] == f"https://{PROD['pingpod:domain']}"
    assert prod.outputs["clusterName"] == "pingpod-prod"
    assert prod.secret_outputs == {"kubeconfig"}
    assert json.loads(prod.outputs["kubeconfig"])["kind"] == "Config"
