"""The ``local`` stack under the real engine, on the test control plane.

The steps share one stack and run in file order: preview, up, no-change preview
and refresh, the deployed app used by a real provisioner, the provisioner scaled
as its HorizontalPodAutoscaler would and an in-place update that keeps that
count, autoscaling switched off (a fixed count again), and destroy. Bad config
runs on a stack of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import NotFoundError
from pulumi import automation as auto

from infra.rbac import SERVICE_ACCOUNT_NAME
from infra.workload import PROVISIONER_NAME, TEMPLATE_FILE
from scripts.controlplane import ControlPlane
from scripts.engine import KUBERNETES_PROVIDER
from scripts.engine.stack import Engine
from scripts.servers import free_port, launch, stop
from tests.support.polling import wait_for

from .workspace import Events, kubernetes_objects, resources

# Settings only the tests need, on top of the committed Pulumi.local.yaml.
NAMESPACE = "pingpod-engine"
TEST_CONFIG = {
    "pingpod:namespace": NAMESPACE,
    # kwok's nodes are arm64, so the echo pods' nodeSelector is satisfiable.
    "pingpod:echoArm64Only": "true",
}
# What the local stack declares, by type (the App component and its children).
EXPECTED_TYPES = {
    "pulumi:pulumi:Stack",
    "pulumi:providers:kubernetes",
    "pingpod:app:App",
    "kubernetes:core/v1:Namespace",
    "kubernetes:core/v1:ServiceAccount",
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:core/v1:ResourceQuota",
    "kubernetes:policy/v1:PodDisruptionBudget",
    "kubernetes:core/v1:Service",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "kubernetes:apps/v1:Deployment",
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
}
# The replica count the tests give the provisioner, as its HPA would: within
# Pulumi.local.yaml's 1 to 2, so the HPA controller (without metrics here) keeps it.
SCALED_REPLICAS = 2
CLUSTER_SCOPED = (
    ("v1", "Namespace"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
)
REPLACING = {auto.OpType.REPLACE, auto.OpType.CREATE_REPLACEMENT, auto.OpType.DELETE_REPLACED}


@pytest.fixture(scope="module")
def stack(engine: Engine, control_plane: ControlPlane) -> Iterator[auto.Stack]:
    stack = engine.stack("main")
    context = yaml.safe_load(control_plane.kubeconfig.read_text())["current-context"]
    stack.set_all_config(
        {
            key: auto.ConfigValue(value)
            for key, value in {**TEST_CONFIG, "pingpod:kubeContext": context}.items()
        }
    )
    yield stack
    # A failed step must not leave the app behind for the next test module.
    if resources(stack):
        stack.destroy(continue_on_error=True)


@pytest.fixture(scope="module")
def kube(control_plane: ControlPlane) -> Iterator[dynamic.DynamicClient]:
    with control_plane.api_client() as api:
        yield dynamic.DynamicClient(api)


def fetch(kube: dynamic.DynamicClient, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The live object named like ``obj``, or None when the API server has no such object."""
    meta = obj["metadata"]
    res = kube.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        return res.get(name=meta["name"], namespace=meta.get("namespace")).to_dict()
    except NotFoundError:
        return None


def test_sdk_asks_for_the_provider_built_here() -> None:
    assert version("pulumi_kubernetes") == KUBERNETES_PROVIDER.version.removeprefix("v")


def test_preview_plans_the_app(stack: auto.Stack) -> None:
    events = Events()
    result = stack.preview(on_event=events)
    # No warning at all: in particular none about the provider's version or origin.
    assert events.warnings() == []
    assert events.types(auto.OpType.CREATE) == EXPECTED_TYPES
    assert result.change_summary.get(auto.OpType.CREATE, 0) == len(events.steps())


def test_up_creates_every_object(stack: auto.Stack, kube: dynamic.DynamicClient) -> None:
    result = stack.up(on_event=Events())
    assert result.summary.result == "succeeded"
    objects = kubernetes_objects(stack)
    missing = [o["metadata"]["name"] for o in objects if fetch(kube, o) is None]
    assert missing == []
    print(f"engine: the local stack holds {len(resources(stack))} resources")

    deployment = next(o for o in objects if o["kind"] == "Deployment")
    live = fetch(kube, deployment)
    assert live is not None
    spec, status = live["spec"], live["status"]
    assert status["observedGeneration"] >= live["metadata"]["generation"]
    assert status.get("updatedReplicas") == spec["replicas"]
    assert status.get("readyReplicas") == spec["replicas"]


def test_no_changes_and_no_drift(stack: auto.Stack) -> None:
    stack.preview(expect_no_changes=True)
    stack.refresh(expect_no_changes=True)


@pytest.fixture
def deployed_provisioner(
    stack: auto.Stack, control_plane: ControlPlane, tmp_path: Path
) -> Iterator[str]:
    """The real provisioner, outside the cluster, configured as the stack deployed it:
    the Deployment's environment, the published echo pod template, and a token of
    the deployed ServiceAccount. Yields its base URL."""
    objects = kubernetes_objects(stack)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    template = next(o for o in objects if o["kind"] == "ConfigMap")
    namespace = deployment["metadata"]["namespace"]

    container = deployment["spec"]["template"]["spec"]["containers"][0]
    fields = {"metadata.namespace": namespace, "metadata.name": f"{PROVISIONER_NAME}-outside"}
    env = {
        var["name"]: var["value"]
        if "value" in var
        else fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
        for var in container["env"]
    }
    template_file = tmp_path / TEMPLATE_FILE
    template_file.write_text(template["data"][TEMPLATE_FILE])
    token = control_plane.service_account_token(namespace, SERVICE_ACCOUNT_NAME)

    echo_port = free_port()
    echo = launch("services.echo", port=echo_port, log=tmp_path / "echo.log")
    port = free_port()
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        KUBECONFIG=str(control_plane.kubeconfig_for_token(token, namespace)),
        ECHO_POD_TEMPLATE=str(template_file),
        # kwok's pods have no network: the data path goes to a real local echo server.
        ECHO_URL_TEMPLATE=f"ws://127.0.0.1:{echo_port}/ws",
        LEASE_DURATION="3",
    )
    proc = launch(
        "services.provisioner",
        port=port,
        log=tmp_path / "provisioner.log",
        env=env,
        ready_path="/ready",
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        stop(echo)


def test_deployed_app_serves_a_session(deployed_provisioner: str) -> None:
    with httpx.Client(base_url=deployed_provisioner, timeout=10) as http:
        wait_for("a warm pod", lambda: http.get("/pool").json()["warm"] >= 1, timeout=30)
        claim = http.post("/session")
        assert claim.status_code == 201, claim.text
        session = claim.json()
        sid, first_pod = session["session_id"], session["pod"]["name"]

        killed = http.delete(f"/session/{sid}/pod")
        assert killed.status_code == 202, killed.text

        def replacement_ready() -> dict[str, Any] | None:
            pod = http.get(f"/session/{sid}").json()["pod"]
            return pod if pod and pod["name"] != first_pod and pod["ready"] else None

        replacement = wait_for("the replacement pod Ready", replacement_ready, timeout=30)
        assert replacement["name"] != first_pod

        assert http.delete(f"/session/{sid}").status_code == 204
        assert http.get(f"/session/{sid}").status_code == 404


def live_deployment(stack: auto.Stack, kube: dynamic.DynamicClient) -> dict[str, Any]:
    deployment = next(o for o in kubernetes_objects(stack) if o["kind"] == "Deployment")
    live = fetch(kube, deployment)
    assert live is not None
    return live


def test_the_hpa_owns_the_replica_count(
    stack: auto.Stack, kube: dynamic.DynamicClient, control_plane: ControlPlane
) -> None:
    hpa = next(o for o in kubernetes_objects(stack) if o["kind"] == "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, SCALED_REPLICAS)
    live = live_deployment(stack, kube)
    assert live["spec"]["replicas"] == 1
    # Scale through the scale subresource, as the HPA controller does.
    with control_plane.api_client() as api:
        client.AppsV1Api(api).patch_namespaced_deployment_scale(
            live["metadata"]["name"], NAMESPACE, {"spec": {"replicas": SCALED_REPLICAS}}
        )
    assert live_deployment(stack, kube)["spec"]["replicas"] == SCALED_REPLICAS
    # Not a change to the program: its count is ignored while the HPA is on.
    stack.preview(expect_no_changes=True)


def test_pool_size_updates_in_place(stack: auto.Stack, kube: dynamic.DynamicClient) -> None:
    stack.set_config("pingpod:poolSize", auto.ConfigValue("3"))
    events = Events()
    stack.up(on_event=events)
    ops = events.ops()
    assert not {urn: op for urn, op in ops.items() if op in REPLACING}
    updated = events.types(auto.OpType.UPDATE)
    assert "kubernetes:apps/v1:Deployment" in updated

    live = live_deployment(stack, kube)
    env = {
        v["name"]: v.get("value") for v in live["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["POOL_SIZE"] == "3"
    # The update applied everything but the count the HPA's stand-in set.
    assert live["spec"]["replicas"] == SCALED_REPLICAS


def test_autoscaling_off_fixes_the_replica_count(
    stack: auto.Stack, kube: dynamic.DynamicClient
) -> None:
    stack.set_config("pingpod:autoscaling", auto.ConfigValue("false"))
    events = Events()
    stack.up(on_event=events)
    assert events.types(auto.OpType.DELETE) == {"kubernetes:autoscaling/v2:HorizontalPodAutoscaler"}
    assert "kubernetes:apps/v1:Deployment" in events.types(auto.OpType.UPDATE)
    # Pulumi.local.yaml's provisionerReplicas, taken over from the other field manager.
    live = live_deployment(stack, kube)
    assert live["spec"]["replicas"] == 1
    assert not [o for o in kubernetes_objects(stack) if o["kind"] == "HorizontalPodAutoscaler"]
    stack.preview(expect_no_changes=True)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", "configuration key 'poolSize' must be of type 'integer'"),
        ("51", "pingpod:poolSize: expected an integer from 0 to 50, got 51"),
    ],
)
def test_bad_config_fails_and_creates_nothing(
    engine: Engine, api_admin: client.CoreV1Api, value: str, message: str
) -> None:
    stack = engine.stack(f"bad-{value}")
    stack.set_all_config(
        {
            "pingpod:namespace": auto.ConfigValue("pingpod-bad"),
            "pingpod:poolSize": auto.ConfigValue(value),
        }
    )
    with pytest.raises(auto.errors.CommandError) as preview:
        stack.preview()
    assert message in str(preview.value)
    with pytest.raises(auto.errors.CommandError) as up:
        stack.up()
    assert message in str(up.value)
    assert not [r for r in resources(stack) if r["type"].startswith("kubernetes:")]
    with pytest.raises(ApiException) as missing:
        api_admin.read_namespace("pingpod-bad")
    assert missing.value.status == 404


@pytest.fixture
def api_admin(control_plane: ControlPlane) -> Iterator[client.CoreV1Api]:
    with control_plane.api_client() as api:
        yield client.CoreV1Api(api)


def test_destroy_leaves_nothing(
    stack: auto.Stack, kube: dynamic.DynamicClient, api_admin: client.CoreV1Api
) -> None:
    objects = kubernetes_objects(stack)
    assert objects
    stack.destroy()
    assert resources(stack) == []

    def namespace_gone() -> bool:
        try:
            api_admin.read_namespace(NAMESPACE)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(f"namespace {NAMESPACE} to go", namespace_gone, timeout=60)
    left = [f"{o['kind']}/{o['metadata']['name']}" for o in objects if fetch(kube, o) is not None]
    assert left == []
    # Nothing cluster-scoped of the app's is left either (its namespace was the only one).
    for api_version, kind in CLUSTER_SCOPED:
        found = kube.resources.get(api_version=api_version, kind=kind).get(
            label_selector="app.kubernetes.io/part-of=pingpod"
        )
        assert [item.metadata.name for item in found.items] == []
