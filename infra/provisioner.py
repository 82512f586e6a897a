"""The provisioner's Deployment: its pod, container, environment, probes and volumes.

The provisioner is the one pod of the app that talks to the Kubernetes API (it
creates the echo pods from the template ``infra.app`` publishes) and the one
the load balancer sends visitors to; its probes and drain delay decide how a
replica leaves the load balancer, and ``provisioner_env`` is every setting it
reads (a test checks each name against ``Settings.from_env``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from infra.app_scope import Scope
from infra.hpa import REPLICAS_ANNOTATION, replicas_options, replicas_owner
from infra.rbac import POOL_MEMBERS, SERVICE_ACCOUNT_NAME
from infra.settings import AppSettings
from infra.workload import (
    APP_UID,
    PART_OF,
    PROVISIONER_CPU_LIMIT_M,
    PROVISIONER_CPU_REQUEST_M,
    PROVISIONER_HEALTH_PATH,
    PROVISIONER_LABELS,
    PROVISIONER_MEMORY_LIMIT_MI,
    PROVISIONER_MEMORY_REQUEST_MI,
    PROVISIONER_METRICS_PORT,
    PROVISIONER_METRICS_PORT_NAME,
    PROVISIONER_NAME,
    PROVISIONER_PORT,
    PROVISIONER_PORT_NAME,
    PROVISIONER_READY_PATH,
    PROVISIONER_SELECTOR,
    TEMPLATE_CONFIGMAP,
    TEMPLATE_DIR,
    TEMPLATE_FILE,
    restricted_container_security,
    restricted_pod_security,
)

# The provisioner pod's volumes: the echo template (read-only) and a small /tmp.
TEMPLATE_VOLUME: Final = "echo-template"
TMP_VOLUME: Final = "tmp"
# On the provisioner's pods: a new echo template rolls them (they read it at start).
TEMPLATE_HASH_ANNOTATION: Final = "pingpod.dev/echo-template-sha256"
# On the Deployment: Pulumi's server-side apply takes the fields it declares even
# when another field manager wrote them last. That matters for spec.replicas when
# autoscaling is switched off: the HPA's manager still owns the count, and a plain
# apply of the fixed count would fail with a conflict instead of setting it.
PATCH_FORCE_ANNOTATION: Final = "pulumi.com/patchForce"

# The readiness probe: a replica that fails /ready this many times, this often,
# leaves the Service's endpoints, and the load balancer controller deregisters it.
READY_PERIOD_SECONDS = 5
READY_FAILURES = 2
# "Kill my gateway": how long a draining replica keeps its sockets after /ready
# fails, so the ALB has stopped sending it anything new (probe, then the
# controller's deregistration, a few seconds).
GATEWAY_DRAIN_DELAY = READY_PERIOD_SECONDS * READY_FAILURES + 5


def pulumi_shaped(value: Any) -> Any:
    """API-shaped data (camelCase keys, as in ``infra.workload``) with the snake_case
    keys of Pulumi's argument types, at every level."""
    if isinstance(value, Mapping):
        return {
            re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): pulumi_shaped(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [pulumi_shaped(v) for v in value]
    return value


def provisioner_env(settings: AppSettings) -> list[k8s.core.v1.EnvVarArgs]:
    """The provisioner's environment: its settings, its identity, the template path."""

    def field_ref(path: str) -> k8s.core.v1.EnvVarSourceArgs:
        return k8s.core.v1.EnvVarSourceArgs(
            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path=path)
        )

    plain = {
        "BACKEND": "kubernetes",
        "HOST": "0.0.0.0",
        "PORT": str(PROVISIONER_PORT),
        "METRICS_PORT": str(PROVISIONER_METRICS_PORT),
        "POOL_SIZE": str(settings.pool_size),
        "POOL_MEMBERS": POOL_MEMBERS,  # what the Role grants for (infra/rbac.py)
        "MAX_SESSIONS": str(settings.max_sessions),
        "SESSION_IDLE_TIMEOUT": str(settings.session_idle_timeout),
        "SESSION_MAX_LIFETIME": str(settings.session_max_lifetime),
        "ALLOWED_ORIGINS": ",".join(settings.allowed_origins),
        # Only the ALB (or a port-forward) reaches the pods: trust its
        # X-Forwarded-For so per-IP limits see the visitor's address.
        "FORWARDED_ALLOW_IPS": "*",
        "ECHO_POD_TEMPLATE": f"{TEMPLATE_DIR}/{TEMPLATE_FILE}",
        # "Kill my gateway" needs another replica to carry the sessions meanwhile:
        # the provisioner counts its live peers itself (a roster of Leases).
        "ALLOW_GATEWAY_KILL": "true" if settings.allow_gateway_kill else "false",
        "DRAIN_DELAY": str(GATEWAY_DRAIN_DELAY),
    }
    return [
        k8s.core.v1.EnvVarArgs(name="NAMESPACE", value_from=field_ref("metadata.namespace")),
        # The Lease holder identity.
        k8s.core.v1.EnvVarArgs(name="POD_NAME", value_from=field_ref("metadata.name")),
        *(k8s.core.v1.EnvVarArgs(name=k, value=v) for k, v in plain.items()),
    ]


def provisioner_deployment(
    scope: Scope,
    settings: AppSettings,
    image: pulumi.Input[str],
    template_json: pulumi.Output[str],
    depends_on: Sequence[pulumi.Resource],
) -> k8s.apps.v1.Deployment:
    """The provisioner: rolled one surge pod at a time, never below the replica count.

    Created with ``provisioner_replicas``; with autoscaling on, the count is the
    HorizontalPodAutoscaler's from then on (``infra.hpa.replicas_options``).
    """
    return k8s.apps.v1.Deployment(
        f"{scope.prefix}-provisioner",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=PROVISIONER_NAME,
            namespace=scope.namespace,
            labels={**PART_OF, **PROVISIONER_LABELS},
            annotations={
                PATCH_FORCE_ANNOTATION: "true",
                REPLICAS_ANNOTATION: replicas_owner(settings),
            },
        ),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=settings.provisioner_replicas,
            revision_history_limit=3,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                    max_unavailable=0, max_surge=1
                ),
            ),
            template=_provisioner_pod(settings, image, template_json),
        ),
        opts=pulumi.ResourceOptions.merge(scope.opts(*depends_on), replicas_options(settings)),
    )


def _provisioner_pod(
    settings: AppSettings, image: pulumi.Input[str], template_json: pulumi.Output[str]
) -> k8s.core.v1.PodTemplateSpecArgs:
    # A new echo template (say, a new echo image) rolls the provisioner,
    # which reads the template at start.
    template_hash = template_json.apply(lambda t: hashlib.sha256(t.encode()).hexdigest()[:16])

    def spread(key: str) -> k8s.core.v1.TopologySpreadConstraintArgs:
        # ScheduleAnyway: a one-node or one-zone cluster still runs every replica.
        return k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROVISIONER_SELECTOR),
        )

    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(
            labels=dict(PROVISIONER_LABELS),
            annotations={TEMPLATE_HASH_ANNOTATION: template_hash},
        ),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=SERVICE_ACCOUNT_NAME,
            # The one pod here that talks to the Kubernetes API.
            automount_service_account_token=True,
            enable_service_links=False,
            termination_grace_period_seconds=40,
            security_context=k8s.core.v1.PodSecurityContextArgs(
                **pulumi_shaped({**restricted_pod_security(), "fsGroup": APP_UID})
            ),
            topology_spread_constraints=[
                spread("kubernetes.io/hostname"),
                spread("topology.kubernetes.io/zone"),
            ],
            # The stack's nodeSelector alone (echoArm64Only is the echo pods'); none when empty.
            node_selector=dict(settings.node_selector) or None,
            containers=[_provisioner_container(settings, image)],
            volumes=_provisioner_volumes(),
        ),
    )


def _provisioner_container(
    settings: AppSettings, image: pulumi.Input[str]
) -> k8s.core.v1.ContainerArgs:
    return k8s.core.v1.ContainerArgs(
        name=PROVISIONER_NAME,
        image=image,
        image_pull_policy="IfNotPresent",
        ports=[
            k8s.core.v1.ContainerPortArgs(
                name=PROVISIONER_PORT_NAME, container_port=PROVISIONER_PORT, protocol="TCP"
            ),
            # Scraped from the monitoring namespace only (infra/policies.py).
            k8s.core.v1.ContainerPortArgs(
                name=PROVISIONER_METRICS_PORT_NAME,
                container_port=PROVISIONER_METRICS_PORT,
                protocol="TCP",
            ),
        ],
        env=provisioner_env(settings),
        liveness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(
                path=PROVISIONER_HEALTH_PATH, port=PROVISIONER_PORT_NAME
            ),
            initial_delay_seconds=5,
            period_seconds=10,
            timeout_seconds=2,
            failure_threshold=3,
        ),
        readiness_probe=k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(
                path=PROVISIONER_READY_PATH, port=PROVISIONER_PORT_NAME
            ),
            period_seconds=READY_PERIOD_SECONDS,
            timeout_seconds=2,
            failure_threshold=READY_FAILURES,
        ),
        # Let the ALB stop sending new connections before the server stops.
        lifecycle=k8s.core.v1.LifecycleArgs(
            pre_stop=k8s.core.v1.LifecycleHandlerArgs(sleep=k8s.core.v1.SleepActionArgs(seconds=10))
        ),
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests={
                "cpu": f"{PROVISIONER_CPU_REQUEST_M}m",
                "memory": f"{PROVISIONER_MEMORY_REQUEST_MI}Mi",
            },
            limits={
                "cpu": f"{PROVISIONER_CPU_LIMIT_M}m",
                "memory": f"{PROVISIONER_MEMORY_LIMIT_MI}Mi",
            },
        ),
        security_context=k8s.core.v1.SecurityContextArgs(
            **pulumi_shaped(restricted_container_security())
        ),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(
                name=TEMPLATE_VOLUME, mount_path=TEMPLATE_DIR, read_only=True
            ),
            k8s.core.v1.VolumeMountArgs(name=TMP_VOLUME, mount_path="/tmp"),  # noqa: S108 (emptyDir)
        ],
    )


def _provisioner_volumes() -> list[k8s.core.v1.VolumeArgs]:
    return [
        k8s.core.v1.VolumeArgs(
            name=TEMPLATE_VOLUME,
            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=TEMPLATE_CONFIGMAP),
        ),
        k8s.core.v1.VolumeArgs(
            name=TMP_VOLUME,
            empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="16Mi"),
        ),
    ]
