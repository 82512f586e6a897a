"""pingpod: config -> components -> exports.

``mode: aws`` (the ``prod`` stack) builds everything: VPC, EKS, ECR images, ALB
with TLS and DNS, and the app. ``mode: app`` (the ``local`` stack) deploys only
the app onto the current kubeconfig context, with images named in config.

Everything that can stop the program (config, the AWS CLI, who creates the
cluster) is settled before the first resource is declared.
"""

from __future__ import annotations

import pulumi

from infra.app import App, AppArgs
from infra.cluster import Cluster, ClusterArgs
from infra.config import load_config
from infra.edge import Edge, EdgeArgs
from infra.host import current_host, require_aws_cli, require_aws_cli_version
from infra.identity import cluster_creator
from infra.karpenter import Karpenter, KarpenterArgs
from infra.metrics_server import MetricsServer, MetricsServerArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.network import Network, NetworkArgs
from infra.registry import Registry, RegistryArgs


def main() -> None:
    host = current_host()
    config = load_config(today=host.today())

    if config.local is not None:
        app = App(
            "pingpod",
            AppArgs(
                settings=config.app,
                echo_image=config.local.echo_image,
                provisioner_image=config.local.provisioner_image,
                kube_context=config.local.kube_context,
            ),
        )
        pulumi.export("namespace", app.namespace)
        # The Service is ClusterIP: reach it through a port-forward.
        pulumi.export("url", "http://localhost:8000")
        pulumi.export(
            "portForward",
            app.namespace.apply(
                lambda ns: f"kubectl -n {ns} port-forward svc/provisioner 8000:8000"
            ),
        )
        pulumi.export("echoImage", config.local.echo_image)
        pulumi.export("provisionerImage", config.local.provisioner_image)
        return

    aws_cfg = config.aws
    if aws_cfg is None:  # load_config guarantees one of the two
        raise pulumi.RunError("mode 'aws' without AWS settings")
    require_aws_cli_version(host.version(require_aws_cli(host.which)))
    cluster_name = f"{pulumi.get_project()}-{pulumi.get_stack()}"
    creator = cluster_creator(cluster_name)

    network = Network(
        "pingpod", NetworkArgs(cidr_block=aws_cfg.vpc_cidr, nat_gateway=aws_cfg.nat_gateway)
    )
    cluster = Cluster(
        "pingpod",
        ClusterArgs(
            cluster_name=cluster_name,
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            private_subnet_ids=network.private_subnet_ids,
            settings=aws_cfg,
            creator=creator,
        ),
    )
    registry = Registry("pingpod", RegistryArgs())
    edge = Edge(
        "pingpod",
        EdgeArgs(
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            node_security_group_id=cluster.node_security_group_id,
            domain=aws_cfg.domain,
            hosted_zone_id=aws_cfg.hosted_zone_id,
            cluster_name=cluster.cluster_name,
            k8s_provider=cluster.provider,
            lbc_chart_version=aws_cfg.lbc_chart_version,
            idle_timeout=aws_cfg.alb_idle_timeout,
            lbc_depends_on=[cluster.node_group, cluster.pod_identity_agent],
        ),
    )
    app = App(
        "pingpod",
        AppArgs(
            settings=config.app,
            echo_image=registry.refs["echo"],
            provisioner_image=registry.refs["provisioner"],
            provider=cluster.provider,
            target_group_arn=edge.target_group_arn,
            binding_depends_on=[edge.lb_controller],
            depends_on=[cluster.node_group],
        ),
    )

    if config.autoscaling is not None:
        # The HorizontalPodAutoscaler's figures, and session nodes for the echo pods
        # that the system group has no room for.
        MetricsServer(
            "pingpod",
            MetricsServerArgs(
                chart_version=config.autoscaling.metrics_server_chart_version,
                provider=cluster.provider,
                depends_on=[cluster.node_group],
            ),
        )
        karpenter = Karpenter(
            "pingpod",
            KarpenterArgs(
                cluster_name=cluster.cluster_name,
                subnet_ids=network.public_subnet_ids
                if aws_cfg.public_nodes
                else network.private_subnet_ids,
                security_group_id=cluster.node_security_group_id,
                public_nodes=aws_cfg.public_nodes,
                disk_size_gib=aws_cfg.node_disk_size_gib,
                settings=config.autoscaling,
                k8s_provider=cluster.provider,
                depends_on=[cluster.node_group, cluster.pod_identity_agent],
            ),
        )
        pulumi.export("sessionNodePool", karpenter.node_pool)

    if config.monitoring.enabled:
        monitoring = Monitoring(
            "pingpod",
            MonitoringArgs(
                chart_version=config.monitoring.chart_version,
                app_namespace=app.namespace,
                provider=cluster.provider,
                depends_on=[cluster.node_group],
            ),
        )
        pulumi.export("grafanaPortForward", monitoring.grafana_port_forward)
        pulumi.export("grafanaPassword", monitoring.grafana_password_command)

    pulumi.export("url", edge.url)
    pulumi.export("albDnsName", edge.alb_dns_name)
    pulumi.export("clusterName", cluster.cluster_name)
    pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
    pulumi.export("namespace", app.namespace)
    pulumi.export("echoImage", registry.refs["echo"])
    pulumi.export("provisionerImage", registry.refs["provisioner"])


main()
