"""The autoscaling switch under mocks: the provisioner's HPA, echo pods on session nodes, off."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config_reader import ConfigError
from infra.hpa import REPLICAS_ANNOTATION, SCALE_DOWN_WINDOW_SECONDS, SCALE_OUT_CPU_M
from infra.provisioner import PATCH_FORCE_ANNOTATION
from infra.session_nodes import SESSION_TAINT
from tests.infra.harness import StackMocks, StackRun, run_program, run_stack, stack_config
from tests.infra.render import app_objects, echo_replicaset, echo_template, to_api

HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# What autoscaling adds on AWS, by type, beside the HPA.
AWS_ONLY = {
    "pingpod:karpenter:Karpenter",
    "pingpod:metrics_server:MetricsServer",
    "kubernetes:karpenter.sh/v1:NodePool",
    "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
    "aws:sqs/queue:Queue",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:eks/accessEntry:AccessEntry",
}


@pytest.fixture(scope="module")
def fixed() -> StackRun:
    return run_stack("prod", {"autoscaling": False})


def session_tolerations(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in pod_spec.get("tolerations", []) if t["key"] == SESSION_TAINT["key"]]


def hpa_spec(run: StackRun) -> dict[str, Any]:
    return to_api(run.one(HPA).inputs)["spec"]


def test_hpa_bounds_from_config(stack_run: StackRun) -> None:
    spec = hpa_spec(stack_run)
    replicas = 2 if stack_run.stack == "prod" else 1  # each stack file's provisionerReplicas
    most = 4 if stack_run.stack == "prod" else 2  # the default; Pulumi.local.yaml's
    assert (spec["minReplicas"], spec["maxReplicas"]) == (replicas, most)
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "provisioner",
    }
    (metric,) = spec["metrics"]
    assert metric == {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "AverageValue", "averageValue": f"{SCALE_OUT_CPU_M}m"},
        },
    }
    scale_down = spec["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] == SCALE_DOWN_WINDOW_SECONDS
    assert scale_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
    deployment = stack_run.one(DEPLOYMENT)
    assert stack_run.one(HPA).depends_on(deployment)
    # Created with the minimum; then the count is the HPA's.
    assert to_api(deployment.inputs)["spec"]["replicas"] == replicas


def test_hpa_follows_the_keys() -> None:
    run = run_stack("prod", {"provisionerReplicas": 3, "provisionerMaxReplicas": 7})
    spec = hpa_spec(run)
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 7)
    deployment = to_api(run.one(DEPLOYMENT).inputs)
    assert deployment["spec"]["replicas"] == 3
    # The quota leaves room for the most, and a surge pod.
    quota = next(o for o in app_objects(run) if o["kind"] == "ResourceQuota")
    assert int(quota["spec"]["hard"]["pods"]) == 100 + 4 + 10 + 7 + 1


def test_gateway_kill_with_the_minimum_of_two() -> None:
    run = run_stack("prod", {"allowGatewayKill": True, "provisionerReplicas": 2})
    assert hpa_spec(run)["minReplicas"] == 2


def test_pulumi_leaves_the_replica_count_to_the_hpa(stack_run: StackRun, fixed: StackRun) -> None:
    deployment = stack_run.one(DEPLOYMENT)
    assert deployment.ignore_changes == ("spec.replicas",)
    annotations = to_api(deployment.inputs)["metadata"]["annotations"]
    assert annotations == {
        PATCH_FORCE_ANNOTATION: "true",
        REPLICAS_ANNOTATION: "horizontal-pod-autoscaler",
    }
    # Off: the count is the program's, applied whoever wrote it last, and the
    # switch is an update of the Deployment (its annotation changes).
    deployment = fixed.one(DEPLOYMENT)
    assert deployment.ignore_changes == ()
    annotations = to_api(deployment.inputs)["metadata"]["annotations"]
    assert annotations == {PATCH_FORCE_ANNOTATION: "true", REPLICAS_ANNOTATION: "pulumi"}


def test_echo_pods_and_only_they_tolerate_session_nodes(prod: StackRun) -> None:
    objects = app_objects(prod)
    template = echo_template(objects)["spec"]
    taint = SESSION_TAINT
    (toleration,) = [t for t in template["tolerations"] if t["key"] == taint["key"]]
    assert toleration == {
        "key": taint["key"],
        "operator": "Equal",
        "value": taint["value"],
        "effect": taint["effect"],
    }
    # Their arch matches the NodePool's; nothing pins them to it (they may use
    # the system group's room too).
    assert template["nodeSelector"] == {"kubernetes.io/arch": "arm64"}
    assert "affinity" not in template
    member = echo_replicaset(objects)["spec"]["template"]["spec"]
    assert member["tolerations"] == template["tolerations"]
    # No other pod of the app may go there.
    provisioner = next(o for o in objects if o["kind"] == "Deployment")
    assert "tolerations" not in provisioner["spec"]["template"]["spec"]


def test_local_scales_the_provisioner_and_nothing_else(local: StackRun) -> None:
    types = {r.type for r in local.resources}
    assert HPA in types
    assert not types & AWS_ONLY
    assert not session_tolerations(echo_template(app_objects(local))["spec"])


def test_autoscaling_off_is_fixed(fixed: StackRun, prod: StackRun) -> None:
    types = {r.type for r in fixed.resources}
    assert not types & (AWS_ONLY | {HPA})
    assert {r.type for r in prod.resources} >= AWS_ONLY
    assert not fixed.of_type("kubernetes:helm.sh/v3:Release")[1:]  # the LBC's alone
    assert "sessionNodePool" not in fixed.outputs
    assert prod.outputs["sessionNodePool"] == "sessions"
    assert to_api(fixed.one(DEPLOYMENT).inputs)["spec"]["replicas"] == 2
    assert not session_tolerations(echo_template(app_objects(fixed))["spec"])
    local_fixed = run_stack("local", {"autoscaling": False})
    assert not local_fixed.of_type(HPA)


@pytest.mark.parametrize(
    ("stack", "overrides", "message"),
    [
        (
            "prod",
            {"allowGatewayKill": True, "provisionerReplicas": 1, "autoscaling": False},
            "pingpod:provisionerReplicas: expected at least 2 while allowGatewayKill is true "
            "('Kill my gateway' restarts the replica holding the visitor's WebSocket, and "
            "another must take it), got 1",
        ),
        (
            "local",
            {"provisionerReplicas": 3},
            "pingpod:provisionerMaxReplicas: expected at least provisionerReplicas (3)",
        ),
        (
            "prod",
            {"profile": "lean", "monitoring": True},
            "pingpod:monitoring: Prometheus and Grafana do not fit on 1 x t4g.small beside the "
            "pods that must run there",
        ),
    ],
)
def test_keys_that_do_not_go_together(stack: str, overrides: dict[str, Any], message: str) -> None:
    mocks = StackMocks(stack)
    with pytest.raises(ConfigError) as caught:
        run_program(stack, stack_config(stack, overrides), mocks=mocks)
    assert message in str(caught.value)
    assert mocks.resources == []


def test_lean_monitoring_fits_without_session_nodes() -> None:
    run = run_stack("prod", {"profile": "lean", "monitoring": True, "autoscaling": False})
    assert run.of_type("pingpod:monitoring:Monitoring")
