"""The public edge: ALB, TLS certificate, DNS, and the AWS Load Balancer Controller."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.keys import default_integer
from infra.lbc_policy import LBC_POLICY, POD_IDENTITY_TRUST
from infra.workload import PROVISIONER_HEALTH_PATH, PROVISIONER_PORT

# TLS 1.3 with TLS 1.2 fallback (forward-secret AEAD ciphers only).
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
LBC_CHART_REPO = "https://aws.github.io/eks-charts"
LBC_NAMESPACE = "kube-system"
LBC_SERVICE_ACCOUNT = "aws-load-balancer-controller"


@dataclass
class EdgeArgs:
    vpc_id: pulumi.Input[str]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    # The security group of the nodes, and so of the pods (VPC CNI without
    # per-pod security groups): the ALB may reach it on the provisioner port.
    node_security_group_id: pulumi.Input[str]
    domain: str
    hosted_zone_id: str
    cluster_name: pulumi.Input[str]
    k8s_provider: k8s.Provider
    lbc_chart_version: str
    # The ALB keeps an idle connection this long. The browser pings every
    # second while the page is open, so a live session is never idle; the
    # timeout only decides how long a connection from a tab that went away
    # silently (laptop lid, lost network) lingers. 600 s sits far above the
    # ping interval and above the once-a-minute timer budget that browsers give
    # hidden tabs, and the provisioner's own session idle timeout and maximum
    # lifetime end sessions long before it matters for cost. Unset: the
    # albIdleTimeout key's default (infra.keys, as in Pulumi.yaml).
    idle_timeout: int = default_integer("albIdleTimeout")
    # "dualstack" needs IPv6 subnets, which awsx.ec2.Vpc does not create
    # (pulumi/pulumi-awsx#1049); the AAAA record follows this setting.
    ip_address_type: Literal["ipv4", "dualstack"] = "ipv4"
    # The controller's pods need nodes and the Pod Identity agent to start.
    lbc_depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class Edge(pulumi.ComponentResource):
    """Internet-facing ALB for ``https://<domain>``, in front of the provisioner pods.

    The ALB, listeners, target group and certificate are Pulumi resources; the
    AWS Load Balancer Controller only keeps the target group's members equal to
    the provisioner pod IPs (a TargetGroupBinding, declared by the App). It runs
    with an IAM role granted through EKS Pod Identity.
    """

    url: pulumi.Output[str]
    alb_dns_name: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    lb_controller: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pingpod:edge:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        dualstack = args.ip_address_type == "dualstack"

        alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            description="pingpod ALB: HTTP/HTTPS from the internet, provisioner port to the pods",
            vpc_id=args.vpc_id,
            opts=child,
        )
        cidrs: list[tuple[str, str]] = [("v4", "0.0.0.0/0")]
        if dualstack:
            cidrs.append(("v6", "::/0"))
        for port in (80, 443):
            for family, cidr in cidrs:
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-alb-in-{port}-{family}",
                    security_group_id=alb_sg.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=cidr if family == "v4" else None,
                    cidr_ipv6=cidr if family == "v6" else None,
                    description=f"Public {'HTTPS' if port == 443 else 'HTTP (redirected)'}",
                    opts=child,
                )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-out-pods",
            security_group_id=alb_sg.id,
            ip_protocol="tcp",
            from_port=PROVISIONER_PORT,
            to_port=PROVISIONER_PORT,
            referenced_security_group_id=args.node_security_group_id,
            description="Traffic and health checks to the provisioner pods",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-pods-in-alb",
            security_group_id=args.node_security_group_id,
            ip_protocol="tcp",
            from_port=PROVISIONER_PORT,
            to_port=PROVISIONER_PORT,
            referenced_security_group_id=alb_sg.id,
            description="pingpod ALB to the provisioner pods",
            opts=child,
        )

        alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            ip_address_type=args.ip_address_type,
            security_groups=[alb_sg.id],
            subnets=args.public_subnet_ids,
            idle_timeout=args.idle_timeout,
            drop_invalid_header_fields=True,
            enable_http2=True,
            opts=child,
        )
        target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=PROVISIONER_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            # A replaced provisioner pod keeps its WebSockets this long.
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=PROVISIONER_HEALTH_PATH,
                port="traffic-port",
                protocol="HTTP",
                matcher="200",
                interval=10,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            opts=child,
        )

        certificate = aws.acm.Certificate(
            f"{name}-cert",
            domain_name=args.domain,
            validation_method="DNS",
            opts=child,
        )
        # One domain, so one validation record: indexing the output keeps the
        # resource count known at preview time (no resources inside apply).
        option = certificate.domain_validation_options[0]
        validation_record = aws.route53.Record(
            f"{name}-cert-validation",
            zone_id=args.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-cert-validated",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[validation_record.fqdn],
            opts=child,
        )

        aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            # The validation's ARN, not the certificate's: the listener waits
            # until ACM has issued it.
            certificate_arn=validation.certificate_arn,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)
            ],
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        protocol="HTTPS", port="443", status_code="HTTP_301"
                    ),
                )
            ],
            opts=child,
        )

        record_types = ["A", "AAAA"] if dualstack else ["A"]
        for record_type in record_types:
            aws.route53.Record(
                f"{name}-{record_type.lower()}",
                zone_id=args.hosted_zone_id,
                name=args.domain,
                type=record_type,
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=alb.dns_name, zone_id=alb.zone_id, evaluate_target_health=True
                    )
                ],
                opts=child,
            )

        self.lb_controller = self._lb_controller(name, args)

        self.url = pulumi.Output.from_input(f"https://{args.domain}")
        self.alb_dns_name = alb.dns_name
        self.target_group_arn = target_group.arn
        self.register_outputs(
            {
                "url": self.url,
                "alb_dns_name": self.alb_dns_name,
                "target_group_arn": self.target_group_arn,
            }
        )

    def _lb_controller(self, name: str, args: EdgeArgs) -> k8s.helm.v3.Release:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-lbc-role",
            assume_role_policy=json.dumps(POD_IDENTITY_TRUST),
            description="AWS Load Balancer Controller (EKS Pod Identity)",
            opts=child,
        )
        policy = aws.iam.Policy(
            f"{name}-lbc-policy",
            policy=json.dumps(LBC_POLICY),
            description="AWS Load Balancer Controller, as documented upstream",
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-lbc-policy", role=role.name, policy_arn=policy.arn, opts=child
        )
        association = aws.eks.PodIdentityAssociation(
            f"{name}-lbc-identity",
            cluster_name=args.cluster_name,
            namespace=LBC_NAMESPACE,
            service_account=LBC_SERVICE_ACCOUNT,
            role_arn=role.arn,
            opts=child,
        )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))
        return k8s.helm.v3.Release(
            f"{name}-lbc",
            name="aws-load-balancer-controller",
            chart="aws-load-balancer-controller",
            version=args.lbc_chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=LBC_CHART_REPO),
            namespace=LBC_NAMESPACE,
            values={
                "clusterName": args.cluster_name,
                # Given explicitly: the nodes' IMDS hop limit of 1 keeps pods
                # from looking them up.
                "region": region.region,
                "vpcId": args.vpc_id,
                "serviceAccount": {"create": True, "name": LBC_SERVICE_ACCOUNT},
                # No Service of type LoadBalancer here: skip the webhook that
                # would otherwise sit in the path of every Service write.
                "enableServiceMutatorWebhook": False,
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
            },
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.k8s_provider,
                # Destroy order: the controller goes before the nodes it runs on
                # and the identity it runs with.
                depends_on=[*args.lbc_depends_on, association, attachment],
            ),
        )
